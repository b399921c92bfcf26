// early.js starts the request the first frame waits on longest, the
// province's ward boundaries, while the page is still loading MapLibre:
// index.html loads it as an async module, so it runs as soon as it arrives,
// not after the document and its scripts. app.js takes the answer
// (takeEarlyUnits) instead of asking again. Not with a one-time ?code= in
// the URL: the browser has no session cookie before app.js trades it.
import { UNITS_SIMPLIFY } from './geo.js';

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
 * unpacks (a gateway that ignores it sends them one by one, also fine).
 * @param {string} province
 * @param {string | null} bbox
 * @param {string} rollups comma-separated windows
 */
export function liveQuery(province, bbox, rollups) {
  if (province === NATIONAL) return `unit=${NATIONAL}&rollups=${rollups}&batch=1`;
  const box = bbox ? `&bbox=${encodeURIComponent(bbox)}` : '';
  return `province=${encodeURIComponent(province)}${box}&rollups=${rollups}&batch=1`;
}

export const UNITS_ACCEPT = { Accept: 'application/geo+json, application/json' };

/** @type {Promise<Response | null> | null} */
let early = null;
if (typeof location !== 'undefined') {
  const params = new URLSearchParams(location.search);
  if (!params.has('code')) {
    early = fetch(unitsURL(provinceOf(params)), { headers: UNITS_ACCEPT }).catch(() => null);
  }
}

/**
 * takeEarlyUnits gives the early answer once (null when there is none, or it
 * failed): a 401 or an error is handled by the caller as for its own request.
 * @returns {Promise<Response | null>}
 */
export async function takeEarlyUnits() {
  const p = early;
  early = null;
  return p ? p : null;
}
