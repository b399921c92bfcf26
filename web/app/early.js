// early.js starts what the first frame waits on, the province's ward
// boundaries and the live view's snapshot, while the page is still loading
// MapLibre: index.html loads it as an async module, so it runs as soon as it
// arrives, not after the document and its scripts. app.js takes the answer
// (takeEarlyUnits) and the socket (takeEarlySocket) instead of asking again.
// Not with a one-time ?code= in the URL: the browser has no session cookie
// before app.js trades it.
import { UNITS_SIMPLIFY } from './geo.js';

/**
 * The live roll-up window the tiles' trends follow (trend.js; the history's
 * source over 5-minute buckets is rollup:1m too). Here, not in trend.js, so
 * that this module, which starts the first requests, waits for no other.
 */
export const TREND_WINDOW = '1m';

/** NATIONAL is the national unit: ?province=VN is the national wall, its provinces coloured by their own roll-ups. */
export const NATIONAL = 'VN';

/** NATIONAL_SIMPLIFY is the boundaries' simplification of the national wall, in degrees (~500 m: a country on one screen). */
export const NATIONAL_SIMPLIFY = 0.005;

/**
 * provinceOf is the page's province: ?province=NN, or VN for the national
 * wall; default 01.
 * @param {URLSearchParams} params
 */
export function provinceOf(params) {
  const p = params.get('province') ?? '';
  return /^\d{2}$/.test(p) || p === NATIONAL ? p : '01';
}

/**
 * unitsURL is the /v1/units query of province: simplified for the wall's
 * view, or whole.
 * @param {string} province
 * @param {boolean} [whole]
 */
export function unitsURL(province, whole = false) {
  const simplify = province === NATIONAL ? NATIONAL_SIMPLIFY : UNITS_SIMPLIFY;
  return `/v1/units?province=${encodeURIComponent(province)}${whole ? '' : `&simplify=${simplify}`}`;
}

/**
 * liveQuery is the query of the wall's /v1/live: its province's view
 * (with bbox, when given), or for the national wall the view of VN, which
 * at a national hub carries every province's own roll-ups (docs/api.md).
 * It asks batch=1: each send's updates in one frame, which LiveConnection
 * unpacks (a gateway that ignores it sends them one by one, also fine), and
 * snapshot=compact: the first frame with each member name once per shape
 * (a third of the bytes for thousands of stations), which the store
 * unpacks (snapshotFeatures; an older gateway's Features also do).
 * @param {string} province
 * @param {string | null} bbox
 * @param {string} rollups comma-separated windows
 */
export function liveQuery(province, bbox, rollups) {
  if (province === NATIONAL) return `unit=${NATIONAL}&rollups=${rollups}&batch=1`;
  const box = bbox ? `&bbox=${encodeURIComponent(bbox)}` : '';
  return `province=${encodeURIComponent(province)}${box}&rollups=${rollups}&batch=1&snapshot=compact`;
}

/**
 * liveURL is the wall's /v1/live address on the page's host: the province's
 * view (?bbox= on the page limits it to that box) with the province's 1m
 * roll-ups for the tiles' trends and the 1h ones for the ward fills.
 * @param {Location | URL} loc
 */
export function liveURL(loc) {
  const params = new URLSearchParams(loc.search);
  const proto = loc.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${proto}//${loc.host}/v1/live?${liveQuery(provinceOf(params), params.get('bbox'), `${TREND_WINDOW},1h`)}`;
}

export const UNITS_ACCEPT = { Accept: 'application/geo+json, application/json' };

/**
 * HeldSocket is a WebSocket opened before anyone listens to it: it keeps
 * its events (open, the snapshot's frames, a close) until taken, then hands
 * them, in order, to the on* handlers set by the taker, and later ones as
 * they come. LiveConnection uses it as it would a WebSocket.
 */
export class HeldSocket {
  /** @param {WebSocket} ws */
  constructor(ws) {
    this.ws = ws;
    /** @type {[string, Event][] | null} the events kept until taken; null once taken */
    this.held = [];
    /** @type {((ev: any) => void) | null} */
    this.onopen = null;
    /** @type {((ev: any) => void) | null} */
    this.onmessage = null;
    /** @type {((ev: any) => void) | null} */
    this.onclose = null;
    /** @type {((ev: any) => void) | null} */
    this.onerror = null;
    for (const kind of ['open', 'message', 'close', 'error']) {
      ws.addEventListener(kind, (ev) => {
        if (this.held) this.held.push([kind, ev]);
        else this.deliver(kind, ev);
      });
    }
  }

  /** @param {string} kind @param {Event} ev */
  deliver(kind, ev) {
    const h = /** @type {any} */ (this)[`on${kind}`];
    if (typeof h === 'function') h(ev);
  }

  /**
   * take hands the kept events over in a microtask: after the taker's
   * synchronous set-up of the handlers, before any later event (events come
   * in tasks).
   */
  take() {
    queueMicrotask(() => {
      const held = this.held ?? /** @type {[string, Event][]} */ ([]);
      this.held = null;
      for (const [kind, ev] of held) this.deliver(kind, ev);
    });
    return this;
  }

  /** @param {number} [code] @param {string} [reason] */
  close(code, reason) {
    this.ws.close(code, reason);
  }
}

/**
 * @typedef {object} EarlyUnits the early /v1/units answer
 * @property {Response} res
 * @property {any} body its JSON, read and parsed as soon as it came (undefined when not ok)
 */

/** @type {Promise<EarlyUnits | null> | null} */
let early = null;
/** @type {{url: string, socket: HeldSocket} | null} */
let earlySocket = null;
if (typeof location !== 'undefined') {
  const params = new URLSearchParams(location.search);
  if (!params.has('code')) {
    // The body is read and parsed here, as soon as it comes: while the page
    // still waits for MapLibre, not after app.js has started.
    early = fetch(unitsURL(provinceOf(params)), { headers: UNITS_ACCEPT })
      .then(async (res) => ({ res, body: res.ok ? await res.json() : undefined }))
      .catch(() => null);
    const url = liveURL(location);
    try {
      earlySocket = { url, socket: new HeldSocket(new WebSocket(url)) };
    } catch (err) {
      console.warn('opening live socket early', err);
    }
  }
}

/**
 * takeEarlySocket gives the live socket early.js opened, once, if it is of
 * url (else it is closed and null given): its events so far are handed to
 * the taker's handlers (HeldSocket.take).
 * @param {string} url
 * @returns {HeldSocket | null}
 */
export function takeEarlySocket(url) {
  const e = earlySocket;
  earlySocket = null;
  if (!e) return null;
  if (e.url !== url) {
    e.socket.close(1000);
    return null;
  }
  return e.socket.take();
}

/**
 * takeEarlyUnits gives the early answer once, its body parsed when it is ok
 * (null when there is none, or it or its body failed): a 401 or an error is
 * handled by the caller as for its own request.
 * @returns {Promise<EarlyUnits | null>}
 */
export async function takeEarlyUnits() {
  const p = early;
  early = null;
  return p ? p : null;
}
