// alerts.js: which CAP alerts are in force, in what order the wall lists
// them (most severe first, then newest), and which info block it shows.

/** CAP severities, most severe first. */
export const SEVERITIES = /** @type {const} */ (['Extreme', 'Severe', 'Moderate', 'Minor', 'Unknown']);

/** @typedef {'Extreme' | 'Severe' | 'Moderate' | 'Minor' | 'Unknown'} Severity */

/** Fill colours of alert areas by severity (drawn translucent on the map). */
export const SEVERITY_COLORS = {
  Extreme: '#b5179e', Severe: '#ff3b3b', Moderate: '#ff9f1a', Minor: '#3fa7ff', Unknown: '#9aa7c2',
};

/**
 * alertInfo picks the info block in lang (CAP language "vi", "vi-VN", "en-US"…), else the first.
 * @param {any} alert properties.alert of a live Feature
 * @param {string} lang
 * @returns {Record<string, any>}
 */
export function alertInfo(alert, lang) {
  const infos = Array.isArray(alert?.info) ? alert.info : [];
  return infos.find((/** @type {any} */ i) => String(i?.language ?? '').toLowerCase().startsWith(lang)) ?? infos[0] ?? {};
}

/**
 * severityOf is the highest CAP severity of an alert's info blocks.
 * @param {any} alert
 * @returns {Severity}
 */
export function severityOf(alert) {
  let best = SEVERITIES.length - 1;
  for (const i of Array.isArray(alert?.info) ? alert.info : []) {
    const k = SEVERITIES.indexOf(i?.severity);
    if (k >= 0 && k < best) best = k;
  }
  return SEVERITIES[best];
}

/**
 * expiresAt is the latest expiry of an alert's info blocks (ms), or NaN.
 * @param {any} alert
 */
export function expiresAt(alert) {
  const xs = (Array.isArray(alert?.info) ? alert.info : []).map((/** @type {any} */ i) => Date.parse(i?.expires ?? '')).filter((/** @type {number} */ x) => !Number.isNaN(x));
  return xs.length ? Math.max(...xs) : NaN;
}

/**
 * sentAt is when the alert was sent (ms), else its observation or update time, else 0.
 * @param {import('./store.js').Feature} f
 */
export function sentAt(f) {
  const p = f.properties ?? {};
  return Date.parse(p.alert?.sent ?? p.observation?.time ?? p.updatedAt ?? '') || 0;
}

/**
 * isActiveAlert: state "active" (or not given), an Alert or Update (a CAP
 * Cancel, Ack or Error message is never an alert in force: a Cancel's effect
 * is the earlier alert's state "cancelled"), and not past every expiry.
 * @param {import('./store.js').Feature} f
 * @param {number} now ms
 */
export function isActiveAlert(f, now) {
  const a = f.properties?.alert;
  if (!a) return false;
  if (a.state && a.state !== 'active') return false;
  if (a.msgType && a.msgType !== 'Alert' && a.msgType !== 'Update') return false;
  const exp = expiresAt(a);
  return Number.isNaN(exp) || exp >= now;
}

/**
 * activeAlerts lists the alerts in force, most severe first, then newest.
 * @param {import('./store.js').Feature[]} alerts
 * @param {number} now
 */
export function activeAlerts(alerts, now) {
  return alerts.filter((f) => isActiveAlert(f, now)).sort((a, b) =>
    SEVERITIES.indexOf(severityOf(a.properties.alert)) - SEVERITIES.indexOf(severityOf(b.properties.alert)) || sentAt(b) - sentAt(a));
}

/** A word without spaces such as trafficJam: a code, not a sentence for people. */
const CODE = /^[a-z][A-Za-z0-9]*$/;

/**
 * isCode reports whether text is a machine code (camelCase, no spaces).
 * @param {unknown} text
 */
export function isCode(text) {
  return typeof text === 'string' && CODE.test(text);
}

/**
 * alertTitle is what the wall shows as an alert's headline in lang: the CAP
 * headline of the info block in lang; when that is a code (a FIWARE Alert's
 * subCategory such as trafficJam becomes headline and event), the code's
 * translation, or for a code it has none of the translation of the alert's
 * first CAP category, and the unit's name. Never a raw code.
 * @param {import('./store.js').Feature} f
 * @param {string} lang
 * @param {(code: string) => string} eventName translation of an event code (the code itself when unknown)
 * @param {(unit: string) => string} unitName
 * @param {(category: string) => string} [categoryName] translation of a CAP category
 */
export function alertTitle(f, lang, eventName, unitName, categoryName) {
  const a = f.properties?.alert ?? {};
  const info = alertInfo(a, lang);
  const h = info.headline || info.event || '';
  if (h && !isCode(h)) return h;
  let ev = h ? eventName(h) : '';
  if (ev === h) {
    const cat = Array.isArray(info.category) ? info.category[0] : '';
    ev = cat && categoryName ? categoryName(cat) : '';
  }
  const unit = f.properties?.unit ? unitName(f.properties.unit) : '';
  return [ev, unit].filter(Boolean).join(' – ') || String(f.properties?.name ?? a.identifier ?? '');
}

/**
 * mayAck says whether a signed-in principal (GET /v1/session) may
 * acknowledge alerts: an operator or an admin (the gateway checks the
 * scope). A viewer, or a server without access control, sees the
 * acknowledgements only.
 * @param {any} principal
 */
export function mayAck(principal) {
  return principal?.role === 'operator' || principal?.role === 'admin';
}

/**
 * ackOf is an alert's acknowledgement, or null while nobody acknowledged it.
 * @param {any} alert properties.alert of a live Feature
 * @returns {{by: string, at: string} | null}
 */
export function ackOf(alert) {
  return alert?.acked ? { by: String(alert.ackedBy ?? ''), at: String(alert.ackedAt ?? '') } : null;
}

/**
 * ackAlert asks the gateway to acknowledge alert id (properties.alert.id);
 * the acknowledgement comes back to every screen on the live view. It
 * resolves with the HTTP status (200 acknowledged already, 202 queued).
 * @param {string} id
 */
export async function ackAlert(id) {
  const res = await fetch(`/v1/alerts/${encodeURIComponent(id)}/ack`, { method: 'POST', credentials: 'same-origin' });
  if (!res.ok) throw new Error(`acknowledging alert ${id}: HTTP ${res.status}`);
  return res.status;
}
