// layers.js owns the MapLibre map: one GeoJSON source per live layer, made
// once at load and updated in place with setData (layers are never
// re-created); ward fills coloured by feature-state from the roll-ups, so
// re-colouring the province touches no geometry. No basemap and no glyphs:
// the wall works without internet (labels are HTML markers).
import { AQI_BANDS } from './aqi_bands.js';
import { SEVERITY_COLORS } from './alerts.js';
import { WATER_ALARM_COLORS } from './kpi.js';

/** @typedef {import('./store.js').Feature} Feature */
/** @typedef {import('maplibre-gl').GeoJSONSource} GeoJSONSource */

const NO_VALUE_COLOR = '#8a94a6';
const STALE_COLOR = '#5b6478';
/** The fill of a ward whose roll-up says nothing. */
export const WARD_NO_DATA = '#1c2a4a';

// Raw PM2.5 by the VN_AQI bands' colours, each from the NowCast at which its band starts.
const PM25_COLOR = ['step', ['get', 'pm25'], AQI_BANDS[0].color, ...AQI_BANDS.slice(1).flatMap((b) => [b.pm25From, b.color])];
// A station with a VN_AQI is drawn in its band's colour (properties.aqi.color); without one, by PM2.5.
const AIR_COLOR = ['case', ['get', 'stale'], STALE_COLOR, ['has', 'aqiColor'], ['get', 'aqiColor'], ['has', 'pm25'], PM25_COLOR, NO_VALUE_COLOR];
const WATER_COLOR = ['case', ['get', 'stale'], STALE_COLOR, ['match', ['get', 'alarm'], 1, WATER_ALARM_COLORS[1], 2, WATER_ALARM_COLORS[2], 3, WATER_ALARM_COLORS[3], WATER_ALARM_COLORS[0]]];
const SPEED_COLOR = ['case', ['get', 'stale'], STALE_COLOR, ['has', 'speed'], ['step', ['get', 'speed'], '#ff2d2d', 15, '#ff9f1a', 30, '#2ee06b'], NO_VALUE_COLOR];
const SEVERITY_COLOR = ['match', ['get', 'sev'], ...Object.entries(SEVERITY_COLORS).flat(), SEVERITY_COLORS.Unknown];

/** The sources the app fills, in drawing order of their layers. */
export const SOURCES = ['wards', 'province', 'alerts', 'traffic', 'water', 'weather', 'air'];

/**
 * Sources of points drawn as circles only. A circle is drawn by the tile its
 * point falls in, whole, across the tile's edges (MapLibre's circle bucket
 * skips the points of a tile's buffer), so these sources are tiled without a
 * buffer: the worker clips and lays out each point once, not in its
 * neighbours too (the default buffer is a quarter of a tile on each side).
 */
export const POINT_SOURCES = ['water', 'weather', 'air'];

/** Layers a click looks at, first wins. */
export const CLICK_LAYERS = ['air-circles', 'water-circles', 'weather-circles', 'traffic-points', 'traffic-lines', 'alert-points', 'alert-fill', 'wards-fill'];

const EMPTY = /** @type {any} */ ({ type: 'FeatureCollection', features: [] });

/**
 * createMap makes the map in container with style (mapStyle), or throws (no
 * WebGL). The style comes whole with the map, not added source by source
 * and layer by layer at load, and is not validated in the page: each
 * addSource and addLayer was a style update and a validation against the
 * style specification on the main thread while the first frame waits (the
 * unit tests validate mapStyle instead).
 * @param {string} container
 * @param {boolean} controls whether to show the zoom buttons (not in kiosk mode)
 * @param {any} style
 * @returns {MapLibreMap}
 */
export function createMap(container, controls, style) {
  const map = new maplibregl.Map({
    container,
    style,
    validateStyle: false,
    center: [105.85, 21.03],
    zoom: 9,
    attributionControl: false,
    dragRotate: false,
    pitchWithRotate: false,
    fadeDuration: 0,
  });
  map.touchZoomRotate.disableRotation();
  if (controls) map.addControl(new maplibregl.NavigationControl({ showCompass: false }), 'top-left');
  map.on('error', (e) => console.warn('map error', e?.error ?? e));
  for (const id of CLICK_LAYERS) {
    map.on('mouseenter', id, () => { map.getCanvas().style.cursor = 'pointer'; });
    map.on('mouseleave', id, () => { map.getCanvas().style.cursor = ''; });
  }
  return map;
}

/**
 * symbolScale is the size of the map's symbols relative to a 1920-pixel-wide
 * wall: the page's root font size (style.css: 100vw / 96, 14 to 48 px) over
 * 20 px, so 1 at 1920, 2 at 3840, 0.7 on a small desk monitor.
 * @param {number} rootFontPx
 */
export function symbolScale(rootFontPx) {
  return Number.isFinite(rootFontPx) && rootFontPx > 0 ? Math.round((rootFontPx / 20) * 100) / 100 : 1;
}

/**
 * sizePaint lists the paint properties of the layers that carry a size
 * (radii, widths), at scale: [layer, property, value]. mapStyle draws with
 * them and resizeSymbols sets them again when the screen's size changes.
 * @param {number} scale
 * @returns {[string, string, any][]}
 */
export function sizePaint(scale) {
  const k = (/** @type {number} */ v) => Math.round(v * scale * 10) / 10;
  const zoomed = (/** @type {number} */ at9, /** @type {number} */ at14) => ['interpolate', ['linear'], ['zoom'], 9, k(at9), 14, k(at14)];
  return [
    ['wards-line', 'line-width', k(1)],
    ['province-line', 'line-width', k(3)],
    ['alert-line', 'line-width', k(3)],
    ['traffic-lines', 'line-width', zoomed(4, 10)],
    ['traffic-points', 'circle-radius', k(6)],
    ['traffic-points', 'circle-stroke-width', k(2)],
    ['alert-points', 'circle-radius', k(16)],
    ['alert-points', 'circle-stroke-width', k(3)],
    ['water-circles', 'circle-radius', zoomed(7, 12)],
    ['water-circles', 'circle-stroke-width', ['match', ['get', 'alarm'], 0, k(1.5), k(3)]],
    ['weather-circles', 'circle-radius', zoomed(4, 7)],
    ['weather-circles', 'circle-stroke-width', k(2)],
    ['air-circles', 'circle-radius', zoomed(8, 14)],
    // A stale station is ringed in grey and drawn hollow-ish: never shown as fresh.
    ['air-circles', 'circle-stroke-width', ['case', ['get', 'stale'], k(3), k(2)]],
  ];
}

/**
 * mapStyle is the map's whole style: every source (empty) and layer, with
 * the sizes of sizePaint(scale), and extra's sources and layers (the
 * reports') on top. No background layer: the canvas is transparent over
 * #map's own background (style.css, the same colour), which spares the
 * CPU-drawn WebGL a full-screen pass per frame. No paint transitions: a
 * wall's colours snap to the data, and MapLibre would otherwise repaint for
 * 300 ms after every change of the style (a layer shown), each frame drawn
 * on the CPU here. The layers start hidden: a hidden layer's source loads
 * no tiles, so the map paints nothing until setSource gives a source its
 * first features (no frames of an empty map while the page waits for the
 * boundaries and the snapshot).
 * @param {number} [scale]
 * @param {{sources: Record<string, any>, layers: any[]}} [extra]
 */
export function mapStyle(scale = 1, extra = { sources: {}, layers: [] }) {
  /** @type {Record<string, any>} */
  const sources = {};
  for (const id of SOURCES) {
    sources[id] = {
      type: 'geojson', data: EMPTY,
      ...(id === 'wards' ? { promoteId: 'code' } : {}),
      ...(POINT_SOURCES.includes(id) ? { buffer: 0 } : {}),
    };
  }
  /** @type {any[]} */
  const layers = [
    {
      id: 'wards-fill', type: 'fill', source: 'wards',
      // No fill-antialias outline: wards-line draws the borders.
      paint: { 'fill-color': ['coalesce', ['feature-state', 'fill'], WARD_NO_DATA], 'fill-opacity': 0.62, 'fill-antialias': false },
    },
    { id: 'wards-line', type: 'line', source: 'wards', paint: { 'line-color': '#7f93c8', 'line-opacity': 0.7 } },
    { id: 'province-line', type: 'line', source: 'province', paint: { 'line-color': '#b8c7ff' } },
    {
      id: 'alert-fill', type: 'fill', source: 'alerts',
      filter: ['match', ['geometry-type'], ['Polygon', 'MultiPolygon'], true, false],
      paint: { 'fill-color': SEVERITY_COLOR, 'fill-opacity': 0.3, 'fill-antialias': false }, // alert-line draws the outline
    },
    {
      id: 'alert-line', type: 'line', source: 'alerts',
      filter: ['match', ['geometry-type'], ['Polygon', 'MultiPolygon', 'LineString', 'MultiLineString'], true, false],
      paint: { 'line-color': SEVERITY_COLOR },
    },
    {
      id: 'traffic-lines', type: 'line', source: 'traffic',
      filter: ['match', ['geometry-type'], ['LineString', 'MultiLineString'], true, false],
      layout: { 'line-cap': 'round', 'line-join': 'round' },
      paint: { 'line-color': SPEED_COLOR },
    },
    {
      id: 'traffic-points', type: 'circle', source: 'traffic',
      filter: ['match', ['geometry-type'], ['Point', 'MultiPoint'], true, false],
      paint: { 'circle-color': SPEED_COLOR, 'circle-stroke-color': '#0b1220' },
    },
    {
      id: 'alert-points', type: 'circle', source: 'alerts',
      filter: ['match', ['geometry-type'], ['Point', 'MultiPoint'], true, false],
      paint: { 'circle-color': SEVERITY_COLOR, 'circle-opacity': 0.3, 'circle-stroke-color': SEVERITY_COLOR },
    },
    { id: 'water-circles', type: 'circle', source: 'water', paint: { 'circle-color': WATER_COLOR, 'circle-stroke-color': '#ffffff' } },
    {
      id: 'weather-circles', type: 'circle', source: 'weather',
      paint: { 'circle-color': ['case', ['get', 'stale'], STALE_COLOR, '#e6f0ff'], 'circle-stroke-color': '#2b6cb0' },
    },
    {
      id: 'air-circles', type: 'circle', source: 'air',
      paint: {
        'circle-color': AIR_COLOR,
        'circle-stroke-color': ['case', ['get', 'stale'], '#c9d3ea', '#0b1220'],
        'circle-opacity': ['case', ['get', 'stale'], 0.45, 1],
      },
    },
  ];
  const byId = new Map(layers.map((l) => [l.id, l]));
  for (const [id, prop, value] of sizePaint(scale)) byId.get(id).paint[prop] = value;
  return {
    version: 8,
    transition: { duration: 0, delay: 0 },
    sources: { ...sources, ...extra.sources },
    layers: [...layers.map((l) => ({ ...l, layout: { ...l.layout, visibility: 'none' } })), ...extra.layers],
  };
}

/**
 * resizeSymbols sets the sizes of sizePaint(scale) on the map's layers (a
 * window moved to a wall of another size, or resized).
 * @param {MapLibreMap} map
 * @param {number} scale
 */
export function resizeSymbols(map, scale) {
  for (const [id, prop, value] of sizePaint(scale)) if (map.getLayer(id)) map.setPaintProperty(id, prop, value);
}

/** How many features each source of a map holds (setSource). */
/** @type {WeakMap<object, Map<string, number>>} */
const held = new WeakMap();
/** The sources of a map whose layers wait for their data to be in the worker (setSource). */
/** @type {WeakMap<object, Set<string>>} */
const showing = new WeakMap();

/**
 * setSource replaces the features of a source in place. An empty source
 * given nothing again is left alone (no reload, no repaint), and the layers
 * of a source are shown only while it holds features (mapStyle, the
 * reports' layer), so that an empty source loads no tiles.
 *
 * A source given its first features shows its layers only once MapLibre's
 * worker holds them (the source's "content" event): a layer shown at once
 * would have its tiles requested, and parsed, from the data the worker is
 * still loading, then parsed again when that load ends (MapLibre reloads
 * every tile still loading when the content changes).
 * @param {MapLibreMap} map
 * @param {string} id
 * @param {any[]} features
 */
export function setSource(map, id, features) {
  const src = /** @type {GeoJSONSource | undefined} */ (map.getSource(id));
  if (!src) return;
  let counts = held.get(map);
  if (!counts) held.set(map, (counts = new Map()));
  const before = counts.get(id) ?? 0;
  if (before === 0 && features.length === 0) return;
  src.setData({ type: 'FeatureCollection', features });
  counts.set(id, features.length);
  if (features.length === 0) setVisibility(map, id, 'none');
  else if (before === 0) showWhenLoaded(map, id, src);
}

/**
 * showWhenLoaded shows the layers of source id once the worker holds its
 * latest data, if it still has features then; or once a load of it failed
 * (no content event comes then, and a source that keeps features is not
 * waited for again: its layers show what the map holds).
 * @param {MapLibreMap} map
 * @param {string} id
 * @param {GeoJSONSource} src
 */
function showWhenLoaded(map, id, src) {
  let waiting = showing.get(map);
  if (!waiting) showing.set(map, (waiting = new Set()));
  if (waiting.has(id)) return;
  waiting.add(id);
  const done = () => {
    map.off('sourcedata', onData);
    map.off('error', onError);
    waiting.delete(id);
    if ((held.get(map)?.get(id) ?? 0) > 0) setVisibility(map, id, 'visible');
  };
  /** @param {any} e */
  const onData = (e) => {
    // A content event of an earlier load, with a later one queued behind it: wait for that one.
    if (e.sourceId === id && e.sourceDataType === 'content' && src.loaded()) done();
  };
  /** @param {any} e */
  const onError = (e) => {
    if (e.sourceId === id) done();
  };
  map.on('sourcedata', onData);
  map.on('error', onError);
}

/**
 * setVisibility shows or hides every layer of source id.
 * @param {MapLibreMap} map
 * @param {string} id
 * @param {'visible' | 'none'} visibility
 */
function setVisibility(map, id, visibility) {
  for (const l of map.getLayersOrder()) {
    const layer = map.getLayer(l);
    if (layer?.source === id && map.getLayoutProperty(l, 'visibility') !== visibility) map.setLayoutProperty(l, 'visibility', visibility);
  }
}

/**
 * revealWhenShown keeps the map's container el marked map-empty, which hides
 * its canvas (style.css), until one of the map's layers is shown (a source
 * given its first features, setSource). Until then every frame the map draws
 * is of an empty map (the style's load, the fit to the province, a resize),
 * and each one composited is read back from the CPU-drawn WebGL while the
 * page's main thread waits, holding back the boundaries, the snapshot and
 * the start of MapLibre's worker. The frame that draws the first layer shown
 * is composited: the check runs on the style's update within it.
 * @param {MapLibreMap} map
 * @param {{classList: DOMTokenList}} el
 */
export function revealWhenShown(map, el) {
  const check = () => {
    let order;
    try {
      order = map.getLayersOrder();
    } catch {
      return; // the style is not in yet
    }
    if (!order.some((l) => map.getLayoutProperty(l, 'visibility') !== 'none')) return;
    el.classList.remove('map-empty');
    map.off('styledata', check);
  };
  map.on('styledata', check);
}

/**
 * setWardFills colours each ward by feature-state (null: no data); only
 * changed colours are set.
 * @param {MapLibreMap} map
 * @param {Map<string, string | null>} colors
 * @param {Map<string, string | null>} applied what was set before; updated
 */
export function setWardFills(map, colors, applied) {
  for (const [code, color] of colors) {
    if (applied.get(code) === color) continue;
    map.setFeatureState({ source: 'wards', id: code }, { fill: color });
    applied.set(code, color);
  }
}

/**
 * liveFeature is what a map source holds of a live entity: its geometry and
 * the few properties the layer's paint reads.
 * @param {Feature} f
 * @returns {any}
 */
export function liveFeature(f) {
  const p = f.properties ?? {};
  const v = p.observation?.values ?? {};
  /** @type {Record<string, unknown>} */
  const props = { fid: f.id, stale: p.stale === true };
  switch (p.layer) {
    case 'air':
      if (isNumber(v.pm25)) props.pm25 = v.pm25;
      if (isNumber(p.aqi?.hourly) && /^#[0-9a-fA-F]{6}$/.test(p.aqi.color ?? '')) props.aqiColor = p.aqi.color;
      break;
    case 'traffic':
      if (isNumber(v.averageVehicleSpeed)) props.speed = v.averageVehicleSpeed;
      break;
    case 'water':
      props.alarm = Number.isInteger(p.waterAlarm) && p.waterAlarm >= 0 && p.waterAlarm <= 3 ? p.waterAlarm : 0;
      break;
  }
  return { type: 'Feature', geometry: f.geometry, properties: props };
}

/** @param {unknown} v @returns {v is number} */
export function isNumber(v) {
  return typeof v === 'number' && Number.isFinite(v);
}
