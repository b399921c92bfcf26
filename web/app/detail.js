// detail.js is the HTML of the detail shown on a click: an entity's latest
// values (and its VN_AQI or alarm level), or a unit's roll-ups of the hour.
import { t, lang, label, valueUnits } from './i18n.js';
import { esc } from './dom.js';
import { fmtNumber, fmtPercent, fmtTime, fmtTimeLeft } from './format.js';
import { alertInfo, alertTitle, expiresAt, severityOf } from './alerts.js';
import { bandColor, KPI_WINDOW, unitColor, WATER_ALARM_COLORS } from './kpi.js';
import { isNumber } from './layers.js';

/** @typedef {import('./store.js').Feature} Feature */
/** @typedef {import('./store.js').LiveStore} LiveStore */

// Values in a fixed, meaningful order; anything else (e.g. flattened
// "other" entries) follows in the order it came.
const VALUE_ORDER = [
  'pm25', 'pm10', 'pm1', 'no2', 'o3', 'co', 'so2', 'nh3', 'no', 'nox', 'temperature', 'relativeHumidity',
  'windSpeed', 'windDirection', 'precipitation', 'atmosphericPressure',
  'waterLevel', 'alarmLevel1', 'alarmLevel2', 'alarmLevel3', 'flow', 'pH', 'conductivity', 'turbidity', 'O2',
  'averageVehicleSpeed', 'intensity', 'occupancy', 'congested',
  'averageVehicleLength', 'averageHeadwayTime', 'laneId', 'laneDirection',
];
// FIWARE gives these as fractions 0..1; the screen shows percent.
const FRACTIONS = new Set(['occupancy', 'relativeHumidity']);

/** @param {Record<string, unknown>} v */
function valueRows(v) {
  const L = lang();
  const rank = (/** @type {string} */ k) => { const i = VALUE_ORDER.indexOf(k); return i < 0 ? VALUE_ORDER.length : i; };
  const rows = [];
  for (const k of Object.keys(v).sort((a, b) => rank(a) - rank(b))) {
    const val = v[k];
    if (val === null || val === undefined || typeof val === 'object') continue;
    let shown;
    if (typeof val === 'boolean') shown = t(val ? 'yes' : 'no');
    else if (isNumber(val)) shown = fmtNumber(FRACTIONS.has(k) && val <= 1 ? val * 100 : val, L);
    else if (k === 'laneDirection') shown = label('lane', val);
    else shown = String(val);
    const unit = k === 'intensity' ? t('unit.intensity') : valueUnits[k] ?? '';
    rows.push(`<tr><td>${esc(label('value', k))}</td><td class="v">${esc(shown)}${unit ? ` ${esc(unit)}` : ''}</td></tr>`);
  }
  return rows.join('');
}

/** stationLine is the VN_AQI of an air station (or why there is none), or the alarm level of a water station. @param {Record<string, any>} p */
function stationLine(p) {
  const L = lang();
  if (p.layer === 'air' && p.aqi) {
    const a = p.aqi;
    if (isNumber(a.hourly)) {
      const band = L === 'en' ? a.bandEn : a.bandVi;
      const daily = isNumber(a.daily) ? ` · ${esc(t('aqi.daily'))} ${esc(fmtNumber(a.daily, L))}` : '';
      const dom = a.dominant ? ` · ${esc(t('aqi.dominant'))} ${esc(label('value', a.dominant))}` : '';
      return `<div class="aqi"><i class="sw circle" style="background:${esc(a.color)}"></i>VN_AQI <b>${esc(fmtNumber(a.hourly, L))}</b> — ${esc(band ?? '')}${dom}${daily}</div>`;
    }
    return `<div class="aqi none">VN_AQI: ${esc(t('aqi.none'))}${a.reason ? ` <span class="reason">(${esc(a.reason)})</span>` : ''}</div>`;
  }
  if (p.layer === 'water') {
    const alarm = Number.isInteger(p.waterAlarm) ? p.waterAlarm : 0;
    return `<div class="aqi"><i class="sw circle" style="background:${WATER_ALARM_COLORS[alarm] ?? WATER_ALARM_COLORS[0]}"></i>${esc(t(`water.alarm${alarm}`))}</div>`;
  }
  return '';
}

/**
 * unitRollups is the table of a unit's roll-ups of the hour, per layer.
 * @param {LiveStore} store
 * @param {string} code
 */
function unitRollups(store, code) {
  const L = lang();
  const rows = [];
  const air = store.rollup(code, 'air', KPI_WINDOW, Date.now());
  if (air && isNumber(air.aqiMax)) {
    const c = bandColor(air.worstBand);
    rows.push(`<tr><td>${esc(t('rollup.aqiMax'))}</td><td class="v">${c ? `<i class="sw circle" style="background:${esc(c)}"></i> ` : ''}${esc(fmtNumber(air.aqiMax, L, 0))}</td></tr>`);
    if (isNumber(/** @type {any} */ (air).aqiMean)) rows.push(`<tr><td>${esc(t('rollup.aqiMean'))}</td><td class="v">${esc(fmtNumber(/** @type {any} */ (air).aqiMean, L, 0))}</td></tr>`);
    rows.push(`<tr><td>${esc(t('rollup.stations'))}</td><td class="v">${esc(fmtNumber(air.stationsReporting ?? 0, L, 0))}/${esc(fmtNumber(air.stationsKnown ?? 0, L, 0))}</td></tr>`);
  }
  const tr = store.rollup(code, 'traffic', KPI_WINDOW, Date.now());
  if (tr && tr.segmentsReporting) {
    if (isNumber(tr.meanSpeed)) rows.push(`<tr><td>${esc(t('rollup.meanSpeed'))}</td><td class="v">${esc(fmtNumber(tr.meanSpeed, L))} km/h</td></tr>`);
    rows.push(`<tr><td>${esc(t('rollup.congested'))}</td><td class="v"><i class="sw circle" style="background:${esc(unitColor('traffic', tr) ?? '#8a94a6')}"></i> ${esc(fmtPercent(tr.congestedSegmentShare ?? 0, L))}</td></tr>`);
  }
  const w = store.rollup(code, 'water', KPI_WINDOW, Date.now());
  if (w && w.stationsReporting && isNumber(w.alarmMax)) {
    rows.push(`<tr><td>${esc(t('rollup.alarmMax'))}</td><td class="v">${esc(t(`water.alarm${w.alarmMax}`))}</td></tr>`);
    if (isNumber(w.levelMax)) rows.push(`<tr><td>${esc(t('rollup.levelMax'))}</td><td class="v">${esc(fmtNumber(w.levelMax, L, 2))} m</td></tr>`);
  }
  return `<div class="rollups"><h5>${esc(t('rollup.title'))}</h5>${rows.length ? `<table>${rows.join('')}</table>` : `<p class="nodata">${esc(t('rollup.none'))}</p>`}</div>`;
}

/**
 * detailHTML is the detail of a ward (kind "ward", key its code) or of a
 * live entity (kind "entity", key its id).
 * @param {'ward' | 'entity'} kind
 * @param {string} key
 * @param {LiveStore} store
 * @param {(code: string) => string} unitName
 */
export function detailHTML(kind, key, store, unitName) {
  const L = lang();
  if (kind === 'ward') {
    return `<div class="popup"><h4>${esc(unitName(key))}</h4><div class="kind">${esc(t('popup.ward'))} · ${esc(t('popup.code'))} ${esc(key)}</div>${unitRollups(store, key)}</div>`;
  }
  const f = store.entities.get(key);
  if (!f) return `<div class="popup"><div class="kind">${esc(key)}</div></div>`;
  const p = f.properties ?? {};
  const unitLine = p.unit ? `<div class="kind">${esc(t('popup.unit'))}: ${esc(unitName(p.unit))}</div>` : '';
  if (p.layer === 'alert') {
    const a = p.alert ?? {};
    const info = alertInfo(a, L);
    const sev = severityOf(a);
    const exp = expiresAt(a);
    return `<div class="popup"><h4>${esc(alertTitle(f, L, (c) => label('event', c), unitName, (c) => label('capCat', c)))}</h4>
      <div class="kind">${esc(t('popup.alert'))} · ${esc(t(`severity.${sev}`))}</div>
      ${info.description ? `<div>${esc(info.description)}</div>` : ''}
      <div class="time">${esc(t('alerts.sent'))}: ${esc(fmtTime(a.sent, L, true))}${Number.isNaN(exp) ? '' : ` · ${esc(t('alerts.expires'))}: ${esc(fmtTime(exp, L, true))} (${esc(fmtTimeLeft(exp - Date.now(), L))})`}</div></div>`;
  }
  const kindLabel = /** @type {Record<string, string>} */ ({ air: t('popup.station'), traffic: t('popup.segment'), water: t('popup.water'), weather: t('popup.weather') })[p.layer] ?? p.layer;
  const time = p.observation?.time ?? p.updatedAt;
  return `<div class="popup"><h4>${esc(p.name || p.entityId || f.id)}</h4>
    <div class="kind">${esc(kindLabel)} · ${esc(p.entityId ?? '')}</div>${unitLine}${p.stale ? `<div class="stale-note">${esc(t('stale'))}</div>` : ''}${stationLine(p)}
    <table>${valueRows(p.observation?.values ?? {})}</table>
    <div class="time">${esc(t('popup.time'))}: ${esc(time ? fmtTime(time, L, true) : '—')}</div>
    ${p.unit ? unitRollups(store, p.unit) : ''}</div>`;
}
