// format.js formats numbers, times and durations for the wall screen: the
// locale follows the screen's language (vi-VN: 1.234,5), times are always
// shown in Asia/Ho_Chi_Minh whatever the browser's zone. Pure functions over
// Intl, so node --test checks them as the browser runs them.

/** The time zone every time on the screen is shown in (UTC+7, no DST). */
export const TZ = 'Asia/Ho_Chi_Minh';

/** @typedef {'vi' | 'en'} Lang */

/**
 * localeOf is the BCP 47 tag used to format numbers and times in lang.
 * @param {Lang} lang
 * @returns {string}
 */
export function localeOf(lang) {
  return lang === 'en' ? 'en-GB' : 'vi-VN';
}

/** @type {Map<string, Intl.NumberFormat>} */
const numberFormats = new Map();

/**
 * fmtNumber formats v with at most digits fraction digits (default 1):
 * 1234.56 is "1.234,6" in Vietnamese and "1,234.6" in English.
 * @param {number} v
 * @param {Lang} lang
 * @param {number} [digits]
 * @returns {string}
 */
export function fmtNumber(v, lang, digits = 1) {
  if (typeof v !== 'number' || !Number.isFinite(v)) return '—';
  const key = `${lang}/${digits}`;
  let f = numberFormats.get(key);
  if (!f) {
    f = new Intl.NumberFormat(localeOf(lang), { maximumFractionDigits: digits });
    numberFormats.set(key, f);
  }
  return f.format(v);
}

/**
 * fmtPercent formats a share 0..1 as a whole percent ("42 %" in Vietnamese).
 * @param {number} share
 * @param {Lang} lang
 * @returns {string}
 */
export function fmtPercent(share, lang) {
  if (typeof share !== 'number' || !Number.isFinite(share)) return '—';
  return new Intl.NumberFormat(localeOf(lang), { style: 'percent', maximumFractionDigits: 0 }).format(share);
}

/**
 * fmtTime formats a time in Asia/Ho_Chi_Minh: "HH:mm:ss", with the date
 * ("dd/mm/yyyy" in Vietnamese) when withDate. A value that is no time is
 * returned as text, never as "Invalid Date".
 * @param {Date | string | number | null | undefined} t
 * @param {Lang} lang
 * @param {boolean} [withDate]
 * @returns {string}
 */
export function fmtTime(t, lang, withDate = false) {
  const d = t instanceof Date ? t : new Date(t ?? NaN);
  if (Number.isNaN(d.getTime())) return t == null ? '—' : String(t);
  const key = `${lang}/${withDate}`;
  let f = timeFormats.get(key);
  if (!f) {
    /** @type {Intl.DateTimeFormatOptions} */
    const opts = { timeZone: TZ, hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false };
    if (withDate) Object.assign(opts, { day: '2-digit', month: '2-digit', year: 'numeric' });
    f = new Intl.DateTimeFormat(localeOf(lang), opts);
    timeFormats.set(key, f);
  }
  return f.format(d);
}

/** @type {Map<string, Intl.DateTimeFormat>} */
const timeFormats = new Map();

/**
 * fmtTimeLeft says how long until a time, for an alert's expiry: "còn 1 giờ
 * 5 phút" / "1 h 5 min left"; "đã hết hạn" / "expired" when past.
 * @param {number} ms milliseconds left (negative when past)
 * @param {Lang} lang
 * @returns {string}
 */
export function fmtTimeLeft(ms, lang) {
  if (!Number.isFinite(ms)) return '—';
  if (ms <= 0) return lang === 'en' ? 'expired' : 'đã hết hạn';
  const min = Math.ceil(ms / 60000);
  const h = Math.floor(min / 60);
  const m = min % 60;
  if (lang === 'en') {
    return `${h > 0 ? `${h} h ` : ''}${h > 0 && m === 0 ? '' : `${m} min `}left`;
  }
  return `còn ${h > 0 ? `${fmtNumber(h, lang, 0)} giờ` : ''}${h > 0 && m > 0 ? ' ' : ''}${h > 0 && m === 0 ? '' : `${m} phút`}`;
}
