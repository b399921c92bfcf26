// kpi.js turns roll-ups and live entities into what the wall's tiles and
// unit colours show: worst VN_AQI and stations per band, congested segments
// and mean speed, water stations per alarm level, alerts per severity, open
// and overdue reports, stale sources. Pure: no DOM, no map.
import { AQI_BANDS } from './aqi_bands.js';
import { activeAlerts, severityOf, SEVERITIES } from './alerts.js';

/** The layers a unit can be coloured by, in the kiosk's rotation order. */
export const UNIT_LAYERS = /** @type {const} */ (['air', 'traffic', 'water']);

/** The roll-up window the tiles and unit colours read. */
export const KPI_WINDOW = '1h';

/** Colours of water alarm levels: below I, I, II, III. */
export const WATER_ALARM_COLORS = ['#3fa7ff', '#ffd21f', '#ff7e00', '#ff0000'];

/** The congestion scale: share of a unit's segments congested in the window, from. */
export const CONGESTION_SCALE = [
  { from: 0, color: '#2ee06b' },
  { from: 0.1, color: '#c6e81f' },
  { from: 0.25, color: '#ff9f1a' },
  { from: 0.5, color: '#ff2d2d' },
];

/**
 * bandColor is the colour of VN_AQI band 1..6, or null.
 * @param {number | undefined} band
 * @returns {string | null}
 */
export function bandColor(band) {
  return typeof band === 'number' && band >= 1 && band <= AQI_BANDS.length ? AQI_BANDS[band - 1].color : null;
}

/**
 * congestionColor is the colour of a congested share 0..1, or null.
 * @param {number | undefined} share
 */
export function congestionColor(share) {
  if (typeof share !== 'number' || !Number.isFinite(share)) return null;
  let c = CONGESTION_SCALE[0].color;
  for (const s of CONGESTION_SCALE) if (share >= s.from) c = s.color;
  return c;
}

/**
 * unitColor is the fill of a unit on the map for layer, from its roll-up;
 * null when the roll-up says nothing (no station reported).
 * @param {string} layer
 * @param {import('./store.js').Rollup | undefined} r
 * @returns {string | null}
 */
export function unitColor(layer, r) {
  if (!r) return null;
  // At a national hub, the roll-up of a province whose hub is down or cut off (docs/api.md).
  if (r.hubStale) return HUB_STALE_COLOR;
  switch (layer) {
    case 'air':
      return bandColor(r.worstBand);
    case 'traffic':
      if (!r.segmentsReporting) return null;
      return congestionColor(r.congestedSegmentShare ?? r.congestedShare);
    case 'water':
      if (!r.stationsReporting || typeof r.alarmMax !== 'number') return null;
      return WATER_ALARM_COLORS[Math.max(0, Math.min(3, r.alarmMax))];
    default:
      return null;
  }
}

/** HUB_STALE_COLOR fills a province whose hub is stale on the national wall: grey, never a band's colour. */
export const HUB_STALE_COLOR = '#5a5f6b';

/**
 * counts reads a roll-up's {"0": n, …} map as an array of length n.
 * @param {Record<string, number> | undefined} m
 * @param {number} len
 */
function counts(m, len) {
  return Array.from({ length: len }, (_, i) => (m && typeof m[String(i)] === 'number' ? m[String(i)] : 0));
}

/** Report statuses still open. */
const OPEN_REPORTS = new Set(['received', 'assigned', 'in_progress']);

/**
 * reportOverdue: flagged by the hub, or past its deadline while open.
 * @param {any} r properties.report
 * @param {number} now
 */
export function reportOverdue(r, now) {
  if (!r) return false;
  if (r.overdue) return true;
  const d = Date.parse(r.slaDeadline ?? '');
  return OPEN_REPORTS.has(r.status) && !Number.isNaN(d) && d < now;
}

/**
 * @typedef {object} Kpis
 * @property {{aqiMax: number | null, band: number | null, color: string | null, byBand: number[], reporting: number, known: number} | null} air
 * @property {{congested: number, reporting: number, known: number, meanSpeed: number | null} | null} traffic
 * @property {{byAlarm: number[], reporting: number, known: number} | null} water
 * @property {Record<string, number>} alerts per severity
 * @property {number} alertsTotal
 * @property {{open: number, overdue: number}} reports
 * @property {{sources: number, entities: number}} stale
 */

/**
 * provinceKpis computes the tiles of province from its roll-ups (window
 * KPI_WINDOW) and the live entities; a tile whose roll-up has not arrived is
 * null (shown as "no data", never as zero).
 * @param {import('./store.js').LiveStore} store
 * @param {string} province
 * @param {number} now ms
 * @returns {Kpis}
 */
export function provinceKpis(store, province, now) {
  const air = store.rollup(province, 'air', KPI_WINDOW, now);
  const traffic = store.rollup(province, 'traffic', KPI_WINDOW, now);
  const water = store.rollup(province, 'water', KPI_WINDOW, now);
  const by = store.byLayer();
  /** @type {Record<string, number>} */
  const alerts = Object.fromEntries(SEVERITIES.map((s) => [s, 0]));
  const active = activeAlerts(by.alert ?? [], now);
  for (const f of active) alerts[severityOf(f.properties.alert)]++;
  let open = 0;
  let overdue = 0;
  for (const f of by.report ?? []) {
    const r = f.properties.report;
    if (!OPEN_REPORTS.has(r?.status)) continue;
    open++;
    if (reportOverdue(r, now)) overdue++;
  }
  let staleSources = 0;
  for (const l of ['air', 'traffic', 'water', 'weather']) {
    const r = store.rollup(province, l, KPI_WINDOW, now);
    if (typeof r?.stale === 'number') staleSources += r.stale;
  }
  let staleEntities = 0;
  for (const f of store.entities.values()) if (f.properties?.stale === true) staleEntities++;
  return {
    air: air ? {
      aqiMax: typeof air.aqiMax === 'number' ? air.aqiMax : null,
      band: typeof air.worstBand === 'number' && air.worstBand > 0 ? air.worstBand : null,
      color: bandColor(air.worstBand),
      byBand: counts(air.stationsByBand, 7),
      reporting: air.stationsReporting ?? 0,
      known: air.stationsKnown ?? 0,
    } : null,
    traffic: traffic ? {
      congested: Math.round((traffic.congestedSegmentShare ?? 0) * (traffic.segmentsReporting ?? 0)),
      reporting: traffic.segmentsReporting ?? 0,
      known: traffic.segmentsKnown ?? 0,
      meanSpeed: typeof traffic.meanSpeed === 'number' ? traffic.meanSpeed : null,
    } : null,
    water: water ? {
      byAlarm: counts(water.stationsByAlarm, 4),
      reporting: water.stationsReporting ?? 0,
      known: water.stationsKnown ?? 0,
    } : null,
    alerts,
    alertsTotal: active.length,
    reports: { open, overdue },
    stale: { sources: staleSources, entities: staleEntities },
  };
}

/**
 * unitColors maps each unit code to its fill for layer (null: no data).
 * @param {import('./store.js').LiveStore} store
 * @param {Iterable<string>} codes
 * @param {string} layer
 * @param {number} now ms
 * @returns {Map<string, string | null>}
 */
export function unitColors(store, codes, layer, now) {
  const out = new Map();
  for (const c of codes) out.set(c, unitColor(layer, store.rollup(c, layer, KPI_WINDOW, now)));
  return out;
}

/**
 * nextLayer is the layer after current in the kiosk's rotation.
 * @param {string} current
 */
export function nextLayer(current) {
  const i = UNIT_LAYERS.indexOf(/** @type {any} */ (current));
  return UNIT_LAYERS[(i + 1) % UNIT_LAYERS.length];
}

/**
 * @typedef {object} Watch a unit in trouble on a layer
 * @property {string} code
 * @property {number} score higher is worse
 * @property {string} color
 * @property {import('./store.js').Rollup} rollup
 */

/**
 * unitsToWatch lists the units in trouble on layer, worst first, at most
 * limit: VN_AQI band Kém (3) or worse, a quarter of the segments congested or
 * more, any alarm level.
 * @param {import('./store.js').LiveStore} store
 * @param {Iterable<string>} codes
 * @param {string} layer
 * @param {number} limit
 * @param {number} now ms
 * @returns {Watch[]}
 */
export function unitsToWatch(store, codes, layer, limit, now) {
  /** @type {Watch[]} */
  const out = [];
  for (const code of codes) {
    const r = store.rollup(code, layer, KPI_WINDOW, now);
    const color = unitColor(layer, r);
    if (!r || !color) continue;
    let score = 0;
    if (layer === 'air' && (r.worstBand ?? 0) >= 3) score = (r.worstBand ?? 0) * 1000 + (r.aqiMax ?? 0);
    if (layer === 'traffic' && (r.congestedSegmentShare ?? 0) >= 0.25) score = (r.congestedSegmentShare ?? 0) * 1000 + (r.segmentsReporting ?? 0);
    if (layer === 'water' && (r.alarmMax ?? 0) >= 1) score = (r.alarmMax ?? 0) * 1000 + (r.levelMax ?? 0);
    if (score > 0) out.push({ code, score, color, rollup: r });
  }
  out.sort((a, b) => b.score - a.score || a.code.localeCompare(b.code));
  return out.slice(0, limit);
}
