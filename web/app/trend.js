// trend.js is the trend of the last hours on the KPI tiles (air: worst
// VN_AQI, traffic: mean speed, water: highest level) of the province: one
// GET /v1/history of the province per tile (never one per unit) when the
// screen starts, then kept current from the province's live 1m roll-ups,
// bucket by bucket, with a bounded number of points. The series logic is
// pure (tested in test/unit); TrendChart draws one with uPlot.
import { TZ } from './format.js';
import { TREND_WINDOW } from './early.js';

/** How far back the tiles' trends go. */
export const TREND_HOURS = 6;
/** The most points a trend holds (5-minute buckets over 6 hours). */
export const TREND_POINTS = 72;

/**
 * What each tile's trend charts: the history value and statistic of a unit
 * (docs/openapi.yaml, /v1/history: roll-ups keep aqi max, speed mean, level
 * max), the live roll-up field that gives the same figure, and how minutes
 * of one bucket combine.
 * @type {Record<string, {value: string, stat: string, field: 'aqiMax' | 'meanSpeed' | 'levelMax', combine: 'max' | 'mean', unit: string}>}
 */
export const TRENDS = {
  air: { value: 'aqi', stat: 'max', field: 'aqiMax', combine: 'max', unit: 'VN_AQI' },
  traffic: { value: 'speed', stat: 'mean', field: 'meanSpeed', combine: 'mean', unit: 'km/h' },
  water: { value: 'level', stat: 'max', field: 'levelMax', combine: 'max', unit: 'm' },
};

/** The bucket of a trend, ms. */
export const BUCKET_MS = (TREND_HOURS * 3600e3) / TREND_POINTS;

/**
 * trendQuery is the /v1/history query of unit's trend of layer at now: the
 * buckets end with the one holding now, so that live roll-ups fall in the
 * same buckets as the stored ones.
 * @param {string} unit
 * @param {string} layer
 * @param {number} now ms
 * @returns {string | null}
 */
export function trendQuery(unit, layer, now) {
  if (!TRENDS[layer]) return null;
  const to = Math.floor(now / BUCKET_MS) * BUCKET_MS + BUCKET_MS;
  const q = new URLSearchParams({
    unit,
    layer,
    from: new Date(to - TREND_HOURS * 3600e3).toISOString(),
    to: new Date(to).toISOString(),
    points: String(TREND_POINTS),
  });
  return `/v1/history?${q}`;
}

/**
 * TrendSeries is one trend: bucket starts (ms) and values, oldest first, at
 * most TREND_POINTS + 1 of them and none older than TREND_HOURS before the
 * newest. Stored buckets come from the history; a live minute updates its
 * bucket, combined with the bucket's other minutes (max, or the mean of the
 * minutes seen, the stored bucket counted as one).
 */
export class TrendSeries {
  /** @param {'max' | 'mean'} combine */
  constructor(combine) {
    this.combine = combine;
    /** @type {number[]} bucket starts, ms */
    this.xs = [];
    /** @type {(number | null)[]} */
    this.ys = [];
    /** the stored value of the newest buckets, before live minutes: bucket → value */
    /** @type {Map<number, number | null>} */
    this.stored = new Map();
    /** the live minutes of the newest buckets: bucket → (minute start → value) */
    /** @type {Map<number, Map<number, number>>} */
    this.minutes = new Map();
    /** whether the series changed since it was last drawn */
    this.changed = false;
    /** live minutes that changed the series (read by tests) */
    this.liveUpdates = 0;
  }

  /**
   * load replaces the series with a history answer (its items' t and
   * value.stat); live minutes already seen are kept on top.
   * @param {any} answer the JSON of /v1/history
   * @param {string} value
   * @param {string} stat
   */
  load(answer, value, stat) {
    this.xs = [];
    this.ys = [];
    this.stored.clear();
    for (const it of Array.isArray(answer?.items) ? answer.items : []) {
      const t = Date.parse(it?.t ?? '');
      if (Number.isNaN(t)) continue;
      const v = it?.[value]?.[stat];
      const b = Math.floor(t / BUCKET_MS) * BUCKET_MS;
      const y = typeof v === 'number' && Number.isFinite(v) ? v : null;
      this.stored.set(b, y);
      this.set(b, y);
    }
    for (const b of [...this.minutes.keys()]) this.recompute(b);
    this.trim();
    this.changed = true;
  }

  /**
   * live takes the value of the live roll-up of the minute starting at
   * minute (ms); a value that is not a number is ignored (nothing reported).
   * @param {number} minute
   * @param {unknown} value
   * @returns {boolean} whether the series changed
   */
  live(minute, value) {
    if (typeof value !== 'number' || !Number.isFinite(value) || !Number.isFinite(minute)) return false;
    const b = Math.floor(minute / BUCKET_MS) * BUCKET_MS;
    const newest = this.xs.length ? this.xs[this.xs.length - 1] : -Infinity;
    if (b < newest - TREND_HOURS * 3600e3) return false; // older than the chart
    let m = this.minutes.get(b);
    if (!m) this.minutes.set(b, (m = new Map()));
    if (m.get(minute) === value) return false;
    m.set(minute, value);
    this.recompute(b);
    // Only the newest buckets still take minutes: keep two.
    for (const k of this.minutes.keys()) if (k < b - BUCKET_MS) this.minutes.delete(k);
    this.trim();
    this.changed = true;
    this.liveUpdates++;
    return true;
  }

  /** @param {number} b bucket start */
  recompute(b) {
    const vals = [...(this.minutes.get(b)?.values() ?? [])];
    const s = this.stored.get(b);
    if (typeof s === 'number') vals.push(s);
    if (!vals.length) return;
    const y = this.combine === 'max' ? Math.max(...vals) : vals.reduce((a, v) => a + v, 0) / vals.length;
    this.set(b, y);
  }

  /** set puts bucket b's value in order. @param {number} b @param {number | null} y */
  set(b, y) {
    let i = this.xs.length;
    while (i > 0 && this.xs[i - 1] > b) i--;
    if (i > 0 && this.xs[i - 1] === b) {
      this.ys[i - 1] = y;
      return;
    }
    this.xs.splice(i, 0, b);
    this.ys.splice(i, 0, y);
  }

  /** trim drops buckets older than TREND_HOURS before the newest, and beyond TREND_POINTS + 1. */
  trim() {
    if (!this.xs.length) return;
    const oldest = this.xs[this.xs.length - 1] - TREND_HOURS * 3600e3;
    let drop = 0;
    while (drop < this.xs.length && this.xs[drop] < oldest) drop++;
    drop = Math.max(drop, this.xs.length - (TREND_POINTS + 1));
    if (drop > 0) {
      for (const b of this.xs.slice(0, drop)) this.stored.delete(b);
      this.xs.splice(0, drop);
      this.ys.splice(0, drop);
    }
    for (const b of this.stored.keys()) if (b < oldest) this.stored.delete(b);
  }

  /** data is uPlot's [seconds[], values[]]. @returns {[number[], (number | null)[]]} */
  data() {
    return [this.xs.map((x) => x / 1000), [...this.ys]];
  }

  /** points counts the buckets with a value. */
  points() {
    return this.ys.filter((y) => y !== null).length;
  }

  /** last is the newest value, or null. */
  last() {
    for (let i = this.ys.length - 1; i >= 0; i--) if (this.ys[i] !== null) return this.ys[i];
    return null;
  }
}

/**
 * trendRollup tells which trend a live roll-up feeds: the layer when it is
 * the province's roll-up of TREND_WINDOW on a trended layer, else null.
 * @param {any} r
 * @param {string} province
 * @returns {string | null}
 */
export function trendRollup(r, province) {
  return r && r.window === TREND_WINDOW && r.unit === province && TRENDS[r.layer] ? r.layer : null;
}

/**
 * TrendChart draws one series as a small uPlot line (no axes; the tile says
 * what and how far back) into el, which it keeps: the tile's HTML is redrawn
 * often, the chart is moved into it, never re-created.
 */
export class TrendChart {
  /**
   * @param {TrendSeries} series
   * @param {string} color
   */
  constructor(series, color) {
    this.series = series;
    this.color = color;
    this.el = document.createElement('div');
    this.el.className = 'trend';
    this.el.dataset.state = 'loading';
    /** @type {any} */
    this.plot = null;
    /** how many times the chart's data was set (read by tests) */
    this.draws = 0;
  }

  /**
   * draw sets the series' data (or makes the chart) at width × height px.
   * @param {number} width
   * @param {number} height
   */
  draw(width, height) {
    if (typeof uPlot === 'undefined') {
      this.el.dataset.state = 'missing';
      return;
    }
    const data = /** @type {any} */ (this.series.data());
    this.el.dataset.points = String(this.series.points());
    this.el.dataset.state = this.series.points() ? 'drawn' : 'empty';
    if (!this.plot) {
      this.plot = new uPlot({
        width, height,
        legend: { show: false },
        cursor: { show: false },
        select: { show: false, left: 0, top: 0, width: 0, height: 0 },
        padding: [4, 2, 2, 2],
        tzDate: (/** @type {number} */ ts) => uPlot.tzDate(new Date(ts * 1000), TZ),
        scales: { x: { time: true } },
        axes: [{ show: false }, { show: false }],
        series: [{}, {
          stroke: this.color, width: 2, fill: `${this.color}26`, spanGaps: false,
          // A few points (a fresh server) are dots, not an invisible line.
          points: { show: (/** @type {any} */ u) => (u.data[0]?.length ?? 0) <= 12, size: 5, fill: this.color },
        }],
      }, data, this.el);
    } else {
      if (this.plot.width !== width || this.plot.height !== height) this.plot.setSize({ width, height });
      this.plot.setData(data);
    }
    this.draws++;
  }
}
