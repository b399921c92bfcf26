// store.js holds what the wall screen knows of its province: the latest
// state of every live entity (id "<layer>/<entityId>" → GeoJSON Feature) and
// the latest roll-up of every unit, layer and window. It applies the frames
// of /v1/live and remembers which layers changed since the last redraw, so
// the screen redraws only those (see batcher.js).

/**
 * @typedef {object} Rollup one roll-up as the aggregator publishes it (docs/rollups.md)
 * @property {string} unit
 * @property {string} layer
 * @property {string} window
 * @property {string} windowStart
 * @property {string} [windowEnd]
 * @property {number} [observations]
 * @property {number} [stale]
 * @property {number} [aqiMax]
 * @property {number} [worstBand]
 * @property {number} [stationsReporting]
 * @property {number} [stationsKnown]
 * @property {Record<string, number>} [stationsByBand]
 * @property {Record<string, number>} [stationsByAlarm]
 * @property {number} [meanSpeed]
 * @property {number} [congestedShare]
 * @property {number} [segmentsReporting]
 * @property {number} [segmentsKnown]
 * @property {number} [congestedSegmentShare]
 * @property {number} [alarmMax]
 * @property {number} [levelMax]
 * @property {number} [opened]
 * @property {number} [overdue]
 * @property {boolean} [hubStale] at a national hub: the province's hub sent nothing for too long
 */

/**
 * @typedef {object} Feature a live entity (docs/api.md, Live view)
 * @property {string} id
 * @property {any} geometry
 * @property {Record<string, any>} properties
 */

/**
 * snapshotFeatures is the Features of a snapshot frame: its entities, or,
 * in the compact form the wall asks for (snapshot=compact, docs/api.md),
 * each row of each shape rebuilt from the shape's member paths, its values
 * shared by every row ("same", by path index) and the row's own, in path
 * order. A shared value that is an object or array is copied per Feature,
 * so that no two Features share one.
 * @param {any} msg
 * @returns {any[]}
 */
export function snapshotFeatures(msg) {
  if (Array.isArray(msg?.entities)) return msg.entities;
  /** @type {any[]} */
  const out = [];
  for (const s of Array.isArray(msg?.shapes) ? msg.shapes : []) {
    const paths = Array.isArray(s?.paths) ? s.paths : [];
    const same = s?.same ?? {};
    // Where each path's value is: -1 in same, else its index in a row.
    const at = [];
    let k = 0;
    for (let i = 0; i < paths.length; i++) at.push(Object.hasOwn(same, i) ? -1 : k++);
    for (const row of Array.isArray(s?.rows) ? s.rows : []) {
      /** @type {Record<string, any>} */
      const f = {};
      for (let i = 0; i < paths.length; i++) {
        const p = paths[i];
        let o = f;
        for (let j = 0; j < p.length - 1; j++) {
          // (a member that is not an object here was named twice: the later wins, as in JSON.parse)
          if (!Object.hasOwn(o, p[j]) || o[p[j]] === null || typeof o[p[j]] !== 'object') put(o, p[j], {});
          o = o[p[j]];
        }
        const v = at[i] < 0 ? same[i] : row[at[i]];
        put(o, p[p.length - 1], at[i] < 0 && v !== null && typeof v === 'object' ? structuredClone(v) : v);
      }
      out.push(f);
    }
  }
  return out;
}

/**
 * put sets o's own member k, as JSON.parse would (a member named __proto__
 * is a member, not the prototype).
 * @param {Record<string, any>} o @param {string} k @param {any} v
 */
function put(o, k, v) {
  if (k === '__proto__') Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
  else o[k] = v;
}

/** rollupKey is the store's key of a roll-up: unit/layer/window. */
export function rollupKey(/** @type {string} */ unit, /** @type {string} */ layer, /** @type {string} */ window) {
  return `${unit}/${layer}/${window}`;
}

export class LiveStore {
  constructor() {
    /** @type {Map<string, Feature>} */
    this.entities = new Map();
    /** @type {Map<string, Rollup>} */
    this.rollups = new Map();
    /** layers whose entities changed since the last take(); "rollups" for roll-ups, "units" for the map */
    /** @type {Set<string>} */
    this.dirty = new Set();
    this.snapshots = 0;
    /** state frames older than the entity held, dropped */
    this.outdated = 0;
    /** @type {Date | null} */
    this.lastUpdate = null;
  }

  /**
   * apply takes one parsed frame; it returns whether the store changed.
   * @param {any} msg
   * @returns {boolean}
   */
  apply(msg) {
    switch (msg?.type) {
      case 'snapshot': {
        // A snapshot replaces everything: entities gone while we were away
        // vanish, and one we held is not kept twice.
        for (const f of this.entities.values()) this.dirty.add(f.properties?.layer);
        this.entities.clear();
        for (const f of snapshotFeatures(msg)) {
          if (f?.id) {
            this.entities.set(f.id, f);
            this.dirty.add(f.properties?.layer);
          }
        }
        this.snapshots++;
        this.touch();
        return true;
      }
      case 'state': {
        const f = msg.entity;
        if (!f?.id) return false;
        const old = this.entities.get(f.id);
        if (old && isOlder(f, old)) {
          this.outdated++;
          return false;
        }
        this.entities.set(f.id, f);
        this.dirty.add(f.properties?.layer);
        this.touch();
        return true;
      }
      case 'remove': {
        // The entity left this screen's bbox; an id we never had is ignored.
        const f = this.entities.get(msg.id);
        if (!f) return false;
        this.entities.delete(msg.id);
        this.dirty.add(f.properties?.layer);
        this.touch();
        return true;
      }
      case 'rollups': {
        this.rollups.clear();
        for (const r of Array.isArray(msg.rollups) ? msg.rollups : []) this.putRollup(r);
        this.dirty.add('rollups');
        return true;
      }
      case 'rollup':
        if (this.putRollup(msg.rollup)) {
          this.dirty.add('rollups');
          return true;
        }
        return false;
      default:
        return false;
    }
  }

  /**
   * putRollup keeps r unless the store holds a later window of its key.
   * @param {Rollup} r
   * @returns {boolean}
   */
  putRollup(r) {
    if (!r?.unit || !r.layer || !r.window) return false;
    const key = rollupKey(r.unit, r.layer, r.window);
    const old = this.rollups.get(key);
    if (old && Date.parse(r.windowStart) < Date.parse(old.windowStart)) return false;
    this.rollups.set(key, r);
    return true;
  }

  /**
   * rollup is the latest roll-up of unit, layer and window, or undefined;
   * with now (ms), only one whose window holds now: the roll-up of a window
   * that has ended (nothing came since) is not the present and is not shown as such.
   * @param {string} unit @param {string} layer @param {string} window
   * @param {number} [now]
   * @returns {Rollup | undefined}
   */
  rollup(unit, layer, window, now) {
    const r = this.rollups.get(rollupKey(unit, layer, window));
    if (r && now !== undefined && !(Date.parse(r.windowEnd ?? '') > now)) return undefined;
    return r;
  }

  /**
   * byLayer lists the entities of each layer.
   * @returns {Record<string, Feature[]>}
   */
  byLayer() {
    /** @type {Record<string, Feature[]>} */
    const out = {};
    for (const f of this.entities.values()) {
      const l = f.properties?.layer ?? '';
      (out[l] ??= []).push(f);
    }
    return out;
  }

  /** take returns the dirty set and starts a new one. */
  take() {
    const d = this.dirty;
    this.dirty = new Set();
    return d;
  }

  touch() {
    this.lastUpdate = new Date();
  }
}

/**
 * isOlder reports whether Feature a is an older state than b (by updatedAt,
 * then by observation time); equal or unknown times are not older.
 * @param {Feature} a @param {Feature} b
 */
export function isOlder(a, b) {
  const ta = Date.parse(a.properties?.updatedAt ?? '');
  const tb = Date.parse(b.properties?.updatedAt ?? '');
  if (!Number.isNaN(ta) && !Number.isNaN(tb) && ta !== tb) return ta < tb;
  const oa = Date.parse(a.properties?.observation?.time ?? '');
  const ob = Date.parse(b.properties?.observation?.time ?? '');
  return !Number.isNaN(oa) && !Number.isNaN(ob) && oa < ob;
}
