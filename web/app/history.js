// history.js draws the history chart of the detail panel: the last 24 hours
// of an entity or a unit from GET /v1/history (docs/api.md, History), as a
// uPlot line (vendor/uPlot.iife.min.js, copied from npm by scripts/vendor.sh).
import { t, lang } from './i18n.js';
import { TZ, fmtNumber, fmtTime } from './format.js';

/** The value and statistic charted per layer, and its unit. */
export const CHART = /** @type {Record<string, {value: string, stat: string, unit: string, unitStat?: string}>} */ ({
  air: { value: 'pm25', stat: 'mean', unit: 'µg/m³' },
  traffic: { value: 'speed', stat: 'mean', unit: 'km/h' },
  water: { value: 'level', stat: 'max', unit: 'm' },
  weather: { value: 'temperature', stat: 'mean', unit: '°C' },
});

/** For a unit: VN_AQI from the roll-ups (PM2.5 is not rolled up). */
const UNIT_CHART = /** @type {Record<string, {value: string, stat: string, unit: string}>} */ ({
  ...CHART,
  air: { value: 'aqi', stat: 'max', unit: 'VN_AQI' },
});

/**
 * historyQuery is the query of /v1/history for an entity or a unit of layer
 * over the hours before now, or null when the layer has no history.
 * @param {{entity?: string, unit?: string}} who
 * @param {string} layer
 * @param {number} now ms
 * @param {number} [hours]
 * @param {number} [points]
 * @returns {string | null}
 */
export function historyQuery(who, layer, now, hours = 24, points = 144) {
  if (!CHART[layer]) return null;
  const q = new URLSearchParams();
  if (who.entity) q.set('entity', who.entity);
  else if (who.unit) q.set('unit', who.unit);
  else return null;
  q.set('layer', layer);
  q.set('from', new Date(now - hours * 3600e3).toISOString());
  q.set('to', new Date(now).toISOString());
  q.set('points', String(points));
  return `/v1/history?${q}`;
}

/**
 * chartOf picks what to chart for an entity (true) or a unit (false) of layer.
 * @param {string} layer
 * @param {boolean} entity
 */
export function chartOf(layer, entity) {
  return (entity ? CHART : UNIT_CHART)[layer];
}

/**
 * toSeries turns a history answer into uPlot's data: [seconds[], values[]],
 * a missing statistic as null (a gap in the line).
 * @param {any} answer the JSON of /v1/history
 * @param {string} value
 * @param {string} stat
 * @returns {[number[], (number | null)[]]}
 */
export function toSeries(answer, value, stat) {
  const xs = [];
  const ys = [];
  for (const it of Array.isArray(answer?.items) ? answer.items : []) {
    const ts = Date.parse(it?.t ?? '');
    if (Number.isNaN(ts)) continue;
    const v = it?.[value]?.[stat];
    xs.push(ts / 1000);
    ys.push(typeof v === 'number' && Number.isFinite(v) ? v : null);
  }
  return [xs, ys];
}

/**
 * drawHistory fetches and draws the chart into el; a missing library or a
 * failed request says so in el, never throws.
 * @param {HTMLElement} el
 * @param {{entity?: string, unit?: string}} who
 * @param {string} layer
 */
export async function drawHistory(el, who, layer) {
  const chart = chartOf(layer, Boolean(who.entity));
  const url = historyQuery(who, layer, Date.now());
  if (!chart || !url) {
    el.hidden = true;
    return;
  }
  el.hidden = false;
  el.dataset.state = 'loading';
  el.textContent = t('history.loading');
  if (typeof uPlot === 'undefined') {
    el.dataset.state = 'missing';
    el.textContent = t('history.noLibrary');
    return;
  }
  let answer;
  try {
    const res = await fetch(url, { headers: { Accept: 'application/json' } });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    answer = await res.json();
  } catch (err) {
    el.dataset.state = 'error';
    el.textContent = t('history.failed', { err: /** @type {Error} */ (err).message });
    return;
  }
  const data = toSeries(answer, chart.value, chart.stat);
  if (!data[1].some((v) => v !== null)) {
    el.dataset.state = 'empty';
    el.textContent = t('history.none');
    return;
  }
  el.textContent = '';
  const L = lang();
  const title = `${t(`history.${chart.value}`)} (${chart.unit}) · ${t('history.last24h')}`;
  const axis = { stroke: '#c9d3ea', grid: { stroke: '#26324f' }, ticks: { stroke: '#26324f' } };
  new uPlot({
    width: Math.max(260, el.clientWidth || 360),
    height: 160,
    title,
    legend: { show: false },
    cursor: { show: true, drag: { x: false, y: false } },
    tzDate: (/** @type {number} */ ts) => uPlot.tzDate(new Date(ts * 1000), TZ),
    scales: { x: { time: true } },
    axes: [
      { ...axis, values: (/** @type {unknown} */ _u, /** @type {number[]} */ ticks) => ticks.map((s) => fmtTime(s * 1000, L).slice(0, 5)) },
      { ...axis, values: (/** @type {unknown} */ _u, /** @type {number[]} */ ticks) => ticks.map((v) => fmtNumber(v, L)) },
    ],
    series: [{}, { stroke: '#4fb3ff', width: 2, fill: 'rgba(79,179,255,0.15)', spanGaps: false }],
  }, /** @type {any} */ (data), el);
  el.dataset.state = 'drawn';
  el.dataset.points = String(data[0].length);
}
