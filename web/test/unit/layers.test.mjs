// Unit tests of the map's symbol sizes (web/app/layers.js): they follow the
// screen (1080p wall, 2160p wall, desk monitor) when the layers are made and
// when the screen's size changes, on a recording fake of the map.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateStyleMin } from '@maplibre/maplibre-gl-style-spec';
import { mapStyle, resizeSymbols, sizePaint, symbolScale } from '../../app/layers.js';
import { reportStyle } from '../../app/reports.js';

test('the symbol scale follows the root font size: 1 at 1920, 2 at 3840, 0.7 on a desk', () => {
  assert.equal(symbolScale(20), 1);
  assert.equal(symbolScale(40), 2);
  assert.equal(symbolScale(14), 0.7);
  assert.equal(symbolScale(NaN), 1);
  assert.equal(symbolScale(0), 1);
});

/** every number inside a paint value (interpolation stops included, zoom levels excluded). */
function sizes(value) {
  if (typeof value === 'number') return [value];
  if (!Array.isArray(value)) return [];
  if (value[0] === 'interpolate') return value.slice(3).filter((_, i) => i % 2 === 1);
  return value.flatMap(sizes);
}

test('every size doubles on a 4K wall and shrinks on a desk', () => {
  const one = sizePaint(1);
  const two = sizePaint(2);
  const desk = sizePaint(0.7);
  assert.ok(one.length >= 10);
  for (let i = 0; i < one.length; i++) {
    const [id, prop] = one[i];
    const a = sizes(one[i][2]);
    assert.ok(a.length > 0, `${id} ${prop} has sizes`);
    assert.deepEqual(sizes(two[i][2]), a.map((v) => Math.round(v * 2 * 10) / 10), `${id} ${prop} at 2×`);
    assert.deepEqual(sizes(desk[i][2]), a.map((v) => Math.round(v * 0.7 * 10) / 10), `${id} ${prop} at 0.7×`);
  }
  const zoom = one.find(([id, p]) => id === 'air-circles' && p === 'circle-radius')[2];
  assert.deepEqual(zoom.slice(0, 3), ['interpolate', ['linear'], ['zoom']], 'stations grow with the zoom');
  assert.deepEqual(zoom.slice(3).filter((_, i) => i % 2 === 0), [9, 14], 'zoom levels are not scaled');
});

// fakeMap holds the layers of style (default mapStyle(1)) as MapLibre would after loading it.
function fakeMap(style = mapStyle(1)) {
  const layers = new Map(style.layers.map((l) => [l.id, structuredClone(l)]));
  const set = [];
  return {
    layers, set,
    getLayer(id) { return layers.get(id); },
    setPaintProperty(id, prop, value) { set.push([id, prop, value]); layers.get(id).paint[prop] = value; },
  };
}

test('the layers are made with the sizes of the screen and resized in place', () => {
  const style = mapStyle(1);
  for (const [id, prop, value] of sizePaint(1)) assert.deepEqual(style.layers.find((l) => l.id === id).paint[prop], value, `${id} ${prop}`);
  const map = fakeMap(style);
  const count = map.layers.size;
  resizeSymbols(map, 2);
  assert.equal(map.layers.size, count, 'no layer re-created');
  assert.equal(map.set.length, sizePaint(2).length);
  for (const [id, prop, value] of sizePaint(2)) assert.deepEqual(map.layers.get(id).paint[prop], value, `${id} ${prop} at 4K`);
  assert.equal(map.layers.get('air-circles').paint['circle-radius'][4], 16);
  assert.deepEqual(mapStyle(2).layers.find((l) => l.id === 'air-circles').paint['circle-radius'][4], 16, 'made at 4K');
});

test('the map\'s style is valid by the MapLibre style specification, at every scale, with the reports', () => {
  // The page does not validate it (createMap: validateStyle false), so this does.
  for (const scale of [0.7, 1, 2]) {
    const style = mapStyle(scale, reportStyle());
    assert.deepEqual(validateStyleMin(style).map((e) => e.message), [], `scale ${scale}`);
    assert.deepEqual(style.transition, { duration: 0, delay: 0 }, 'no paint transitions');
    assert.ok(style.layers.every((l) => l.layout?.visibility === 'none'), 'every layer starts hidden');
    assert.ok(style.layers.some((l) => l.id === 'report-points') && style.sources.reports, 'the reports on top');
  }
  const bad = mapStyle(1);
  bad.layers[0].paint['fill-opacity'] = 'opaque';
  assert.notDeepEqual(validateStyleMin(bad), [], 'the validator does see a wrong value');
});

test('the simplified boundaries hold until the map is zoomed in past the province fit', async () => {
  const { needsDetail, DETAIL_ZOOM, UNITS_SIMPLIFY } = await import('../../app/geo.js');
  assert.ok(UNITS_SIMPLIFY > 0 && UNITS_SIMPLIFY <= 0.1, 'within the gateway bound (maxSimplify 0.1°)');
  assert.equal(needsDetail(9.2, 9.2), false, 'at the fit');
  assert.equal(needsDetail(9.2 + DETAIL_ZOOM, 9.2), false);
  assert.equal(needsDetail(9.2 + DETAIL_ZOOM + 0.01, 9.2), true);
  assert.equal(needsDetail(14, null), false, 'not before the map was fitted');
  assert.equal(needsDetail(NaN, 9), false);
});

/**
 * sourceMap is a fake map for setSource: its sources record setData, and
 * loadEnds(id) plays MapLibre's worker finishing the source's pending load
 * (the map's "sourcedata" event of type "content").
 */
function sourceMap() {
  const map = fakeMap();
  const loads = [];
  const pending = new Map();
  const listeners = new Set();
  map.getSource = (id) => ({
    setData: (d) => { loads.push([id, d.features.length]); pending.set(id, (pending.get(id) ?? 0) + 1); },
    loaded: () => !pending.get(id),
  });
  map.getLayersOrder = () => [...map.layers.keys()];
  map.getLayoutProperty = (id, prop) => map.layers.get(id).layout?.[prop];
  map.setLayoutProperty = (id, prop, value) => { map.layers.get(id).layout = { ...map.layers.get(id).layout, [prop]: value }; };
  const errors = new Set();
  map.on = (type, fn) => { if (type === 'sourcedata') listeners.add(fn); else if (type === 'error') errors.add(fn); };
  map.off = (type, fn) => { listeners.delete(fn); errors.delete(fn); };
  map.loadEnds = (id) => {
    pending.set(id, Math.max(0, (pending.get(id) ?? 0) - 1));
    for (const fn of [...listeners]) fn({ sourceId: id, sourceDataType: 'content' });
  };
  // loadFails plays a load of the worker that failed: an error event, no content event.
  map.loadFails = (id) => {
    pending.set(id, Math.max(0, (pending.get(id) ?? 0) - 1));
    for (const fn of [...errors]) fn({ sourceId: id, error: new Error('worker') });
  };
  map.errors = errors;
  map.listeners = listeners;
  return { map, loads };
}

test('a source is loaded only when it has or had features, and its layers are shown only while it has some', async () => {
  const { setSource } = await import('../../app/layers.js');
  const { map, loads } = sourceMap();
  const visible = (id) => map.layers.get(id).layout?.visibility !== 'none';
  assert.equal([...map.layers.keys()].filter(visible).length, 0, 'every layer starts hidden');
  setSource(map, 'air', []);
  assert.deepEqual(loads, [], 'an empty source given nothing is not loaded again');
  setSource(map, 'air', [{ type: 'Feature' }, { type: 'Feature' }]);
  assert.deepEqual(loads, [['air', 2]]);
  map.loadEnds('air');
  assert.ok(visible('air-circles'), 'shown with its features');
  assert.ok(!visible('water-circles'), 'another source\'s layer stays hidden');
  setSource(map, 'traffic', [{ type: 'Feature' }]);
  map.loadEnds('traffic');
  assert.ok(visible('traffic-lines') && visible('traffic-points'), 'every layer of the source');
  setSource(map, 'air', []);
  assert.deepEqual(loads.at(-1), ['air', 0], 'emptied: loaded empty');
  assert.ok(!visible('air-circles'), 'hidden again');
  setSource(map, 'air', []);
  assert.equal(loads.length, 3, 'not loaded again while empty');
  assert.equal(map.listeners.size, 0, 'no listener left behind');
  assert.equal(map.errors.size, 0, 'no error listener left behind');
});

test('a source whose load failed still shows its layers', async () => {
  const { setSource } = await import('../../app/layers.js');
  const { map } = sourceMap();
  setSource(map, 'water', [{ type: 'Feature' }]);
  map.loadFails('water');
  assert.notEqual(map.layers.get('water-circles').layout?.visibility, 'none', 'shown after the failed load');
  assert.equal(map.listeners.size + map.errors.size, 0, 'no listener left behind');
});

test('a source given its first features shows its layers once the worker holds them, not before', async () => {
  // Shown before, MapLibre would ask its tiles from the load still under way,
  // then parse each of them a second time when that load ends.
  const { setSource } = await import('../../app/layers.js');
  const { map } = sourceMap();
  const visible = (id) => map.layers.get(id).layout?.visibility !== 'none';
  setSource(map, 'air', [{ type: 'Feature' }]);
  assert.ok(!visible('air-circles'), 'hidden while the worker loads the data');
  map.loadEnds('water');
  assert.ok(!visible('air-circles'), 'another source\'s load does not show it');
  setSource(map, 'air', [{ type: 'Feature' }, { type: 'Feature' }]);
  map.loadEnds('air');
  assert.ok(!visible('air-circles'), 'a later load still queued: still hidden');
  map.loadEnds('air');
  assert.ok(visible('air-circles'), 'shown once the latest data is in');
  assert.equal(map.listeners.size, 0, 'one listener, removed');
  // Emptied while its first load is under way: it stays hidden.
  setSource(map, 'water', [{ type: 'Feature' }]);
  setSource(map, 'water', []);
  map.loadEnds('water');
  map.loadEnds('water');
  assert.ok(!visible('water-circles'), 'emptied before its load ended');
  assert.equal(map.listeners.size, 0);
});

test('the map\'s canvas is hidden until a layer is shown, then shown for good', async () => {
  const { setSource, revealWhenShown } = await import('../../app/layers.js');
  const { map } = sourceMap();
  const styleListeners = new Set();
  const on = map.on;
  const off = map.off;
  map.on = (type, fn) => { if (type === 'styledata') styleListeners.add(fn); else on(type, fn); };
  map.off = (type, fn) => { if (type === 'styledata') styleListeners.delete(fn); else off(type, fn); };
  const styleUpdate = () => { for (const fn of [...styleListeners]) fn({ dataType: 'style' }); };
  const classes = new Set(['map-empty']);
  const el = { classList: /** @type {any} */ ({ remove: (c) => classes.delete(c) }) };
  revealWhenShown(map, el);
  styleUpdate();
  assert.ok(classes.has('map-empty'), 'hidden while every layer is');
  setSource(map, 'wards', [{ type: 'Feature' }]);
  styleUpdate();
  assert.ok(classes.has('map-empty'), 'hidden while the worker loads the first features');
  map.loadEnds('wards');
  styleUpdate();
  assert.ok(!classes.has('map-empty'), 'shown with the first layer shown');
  assert.equal(styleListeners.size, 0, 'and no longer watched');
  const early = { ...map, getLayersOrder: () => { throw new Error('style not loaded'); } };
  const c2 = new Set(['map-empty']);
  revealWhenShown(/** @type {any} */ (early), { classList: /** @type {any} */ ({ remove: (c) => c2.delete(c) }) });
  for (const fn of [...styleListeners]) fn({ dataType: 'style' });
  assert.ok(c2.has('map-empty'), 'a style not loaded yet shows nothing');
});
