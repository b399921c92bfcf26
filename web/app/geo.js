// geo.js: small geometry helpers over GeoJSON (RFC 7946: lon, lat).

/** @typedef {[number, number, number, number]} BBox minLon, minLat, maxLon, maxLat */

/**
 * UNITS_SIMPLIFY is the tolerance (degrees, ~55 m) the wall asks /v1/units to
 * simplify boundaries by: under a pixel at the zoom that fits a province on
 * a 4K wall (Hà Nội: 3 MB of boundaries become 0.2 MB). Zoomed in further
 * than DETAIL_ZOOM levels past that fit, the screen fetches them whole.
 */
export const UNITS_SIMPLIFY = 0.0005;
/** DETAIL_ZOOM is how far past the fitting zoom the simplified boundaries still hold. */
export const DETAIL_ZOOM = 1.5;

/**
 * needsDetail tells whether the map at zoom, fitted at fitZoom, needs the
 * whole boundaries.
 * @param {number} zoom
 * @param {number | null} fitZoom
 */
export function needsDetail(zoom, fitZoom) {
  return fitZoom !== null && Number.isFinite(zoom) && zoom > fitZoom + DETAIL_ZOOM;
}

/**
 * flatGeometries splits GeometryCollections so every layer sees simple geometries.
 * @param {any} g
 * @param {any[]} [out]
 * @returns {any[]}
 */
export function flatGeometries(g, out = []) {
  if (!g) return out;
  if (g.type === 'GeometryCollection') {
    for (const c of g.geometries ?? []) flatGeometries(c, out);
  } else if (g.type && g.coordinates) {
    out.push(g);
  }
  return out;
}

/** @param {number[]} bb @param {any} coords */
function extend(bb, coords) {
  if (typeof coords[0] === 'number') {
    bb[0] = Math.min(bb[0], coords[0]);
    bb[1] = Math.min(bb[1], coords[1]);
    bb[2] = Math.max(bb[2], coords[0]);
    bb[3] = Math.max(bb[3], coords[1]);
    return;
  }
  for (const c of coords) extend(bb, c);
}

/**
 * bboxOf is the box around geometries, or null when they have no position.
 * @param {any[]} geometries
 * @returns {BBox | null}
 */
export function bboxOf(geometries) {
  const bb = [Infinity, Infinity, -Infinity, -Infinity];
  for (const g of geometries) for (const s of flatGeometries(g)) extend(bb, s.coordinates);
  return Number.isFinite(bb[0]) ? /** @type {BBox} */ (bb) : null;
}

/**
 * anchorOf is a representative coordinate of a geometry: a point itself, the
 * middle vertex of a line, the first vertex of a polygon.
 * @param {any} g
 * @returns {[number, number] | null}
 */
export function anchorOf(g) {
  const s = flatGeometries(g)[0];
  if (!s) return null;
  switch (s.type) {
    case 'Point': return s.coordinates;
    case 'LineString': return s.coordinates[Math.floor(s.coordinates.length / 2)];
    case 'MultiPoint': return s.coordinates[0];
    case 'MultiLineString': return s.coordinates[0][Math.floor(s.coordinates[0].length / 2)];
    case 'Polygon': return s.coordinates[0][0];
    case 'MultiPolygon': return s.coordinates[0][0][0];
    default: return null;
  }
}

/**
 * labelPoint is where a unit's name goes: the vertex mean of the outer ring
 * of its largest polygon (inside for the compact shapes of wards).
 * @param {any} g
 * @returns {[number, number] | null}
 */
export function labelPoint(g) {
  /** @type {number[][] | null} */
  let best = null;
  let bestArea = -1;
  for (const s of flatGeometries(g)) {
    const polys = s.type === 'Polygon' ? [s.coordinates] : s.type === 'MultiPolygon' ? s.coordinates : [];
    for (const p of polys) {
      const ring = p[0];
      let a = 0;
      for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) a += (ring[j][0] + ring[i][0]) * (ring[j][1] - ring[i][1]);
      if (Math.abs(a) > bestArea) {
        bestArea = Math.abs(a);
        best = ring;
      }
    }
  }
  if (!best || best.length === 0) return anchorOf(g);
  let x = 0;
  let y = 0;
  const n = best.length > 1 ? best.length - 1 : 1; // the closing vertex repeats the first
  for (let i = 0; i < n; i++) {
    x += best[i][0];
    y += best[i][1];
  }
  return [x / n, y / n];
}
