// app.js puts the wall screen together: the live connection feeds the store,
// the store marks what changed, and the batcher redraws the map and panels at
// most once per animation frame (and ~4 times a second), however many frames
// arrive. URL parameters: province (default 01; VN: the national wall), bbox, layer (air, traffic,
// water: what colours the wards), kiosk=1 (no controls), rotate=N (seconds
// between layers; kiosk default 60).
import { liveURL, NATIONAL, provinceOf, takeEarlySocket, takeEarlyUnits, TREND_WINDOW, UNITS_ACCEPT, unitsURL } from './early.js';
import { t, lang, setLang, apply } from './i18n.js';
import { $ } from './dom.js';
import { LiveStore } from './store.js';
import { LiveConnection } from './connection.js';
import { FrameBatcher } from './batcher.js';
import { ackAlert, activeAlerts, mayAck } from './alerts.js';
import { nextLayer, provinceKpis, UNIT_LAYERS, unitColors, unitsToWatch } from './kpi.js';
import { CLICK_LAYERS, createMap, liveFeature, mapStyle, resizeSymbols, revealWhenShown, setSource, setWardFills, symbolScale } from './layers.js';
import { anchorOf, bboxOf, flatGeometries, labelPoint, needsDetail } from './geo.js';
import { renderAlerts, renderAQILegend, renderKpis, renderStatus, renderUnitLegend } from './panels.js';
import { detailHTML } from './detail.js';
import { drawHistory } from './history.js';
import { renderReports, reportStats, reportStyle, watchReports } from './reports.js';
import { signIn, showLogin } from './session.js';
import { ReplayClock } from './replayclock.js';
import { fmtNumber, fmtPercent, fmtTime } from './format.js';
import { TRENDS, TrendChart, TrendSeries, trendQuery, trendRollup } from './trend.js';

/** @typedef {import('./store.js').Feature} Feature */

performance.mark('iochub:app-start');
const params = new URLSearchParams(location.search);
// Without a one-time code the browser holds its session cookie already, or
// has none: the live view and the units need not wait for the sign-in.
const early = !params.has('code');
const signedIn = signIn();
const province = provinceOf(params);
/** the national wall (?province=VN): the provinces coloured by their own roll-ups, no live entities */
const national = province === NATIONAL;
const kiosk = params.get('kiosk') === '1';
const rotateSeconds = Math.max(0, Number(params.get('rotate') ?? (kiosk ? 60 : 0)) || 0);
/** @type {string} */
let layer = UNIT_LAYERS.includes(/** @type {any} */ (params.get('layer'))) ? /** @type {string} */ (params.get('layer')) : 'air';
const LIVE_LAYERS = ['air', 'traffic', 'alert', 'water', 'weather'];
const MAX_LABELS = 12; // ward names on the map: the units to watch
const MAX_WATCH = 6; // in the tile

// ---- state -------------------------------------------------------------------

const store = new LiveStore();
/** @type {Map<string, Record<string, any>>} */
const units = new Map(); // code → unit properties
/** @type {Feature[]} */
let wardFeatures = [];
/** @type {Feature | null} */
let provinceFeature = null;
/** @type {import('./geo.js').BBox | null} */
let unitsBBox = null;
/** @type {Map<string, [number, number] | null>} */
const labelPoints = new Map();

/** @type {import('./connection.js').ConnState} */
let connection = 'connecting';
let retryInSeconds = 0;

/** @type {MapLibreMap | null} */
let map = null;
/** @type {'loading' | 'ready' | 'missing' | 'error'} */
let mapState = 'loading';
/** the zoom at which the map shows the whole province (fitToUnits) */
/** @type {number | null} */
let fitZoom = null;
/** the ward boundaries held: simplified for the wall's view, or whole once zoomed in */
/** @type {'simplified' | 'loading' | 'full'} */
let unitsDetail = 'simplified';
let unitsRequests = 0;
/** the scale the map's symbols are drawn at (layers.js sizePaint) */
let symbols = 1;

/** applyScale draws the map's symbols at the screen's scale, if it changed and the map is ready. */
function applyScale() {
  const s = rootScale();
  if (mapState === 'ready' && map && s !== symbols) {
    symbols = s;
    resizeSymbols(map, s);
  }
}
/** @type {{popup: MapLibrePopup, kind: 'ward' | 'entity', key: string, live: HTMLElement} | null} */
let popup = null;
/** @type {Map<string, string | null>} */
const wardFills = new Map(); // what the map holds
/** the active alerts whose areas the map holds (the store's objects: a changed alert is a new one) */
/** @type {Feature[]} */
let alertAreas = [];
/** @type {Map<string, import('maplibre-gl').Marker>} */
const labels = new Map();
/** @type {import('./kpi.js').Watch[]} */
let lastWatch = [];

// What is on screen, counted at the last redraw (read by the debug hook).
const shown = { wards: 0, stations: 0, segments: 0, alerts: 0, alertItems: 0, water: 0, weather: 0, labels: 0 };
// Set by the first redraw that shows wards and a snapshot: time to the first useful frame.
/** @type {number | null} */
let firstUsefulMs = null;
/** @type {number | null} the redraw that handed them to the map */
let firstUsefulFlush = null;
/** whether redraw has asked the batcher for the first useful redraw at the next frame */
let soonAsked = false;
// Panels to redraw besides the store's dirty layers.
const extra = new Set(['status', 'kpis', 'units', 'fills', 'list', 'reports', 'legend']);

const batcher = new FrameBatcher(flush, { minIntervalMs: 250 });

/**
 * The acknowledge button of the alert list: for operator sessions (not in
 * kiosk mode, which has no controls). The acknowledgement itself comes back
 * on the live view, as on every other screen.
 * @type {import('./panels.js').AckView}
 */
const ack = {
  can: false,
  pending: new Set(),
  failed: new Set(),
  send(f) {
    const id = f.properties.alert?.id;
    if (!id || ack.pending.has(id)) return;
    ack.pending.add(id);
    ack.failed.delete(id);
    mark('list');
    ackAlert(id).catch((err) => {
      console.warn(err);
      ack.failed.add(id);
    }).finally(() => {
      ack.pending.delete(id);
      mark('list');
    });
  },
};

/** @param {...string} what */
function mark(...what) {
  for (const w of what) extra.add(w);
  redraw();
}

/**
 * redraw asks the batcher for a redraw: at the next animation frame when it
 * would be the first useful one (map ready, wards and a snapshot in), not
 * after an interval grown by the slow redraws of the empty map and wards.
 */
function redraw() {
  if (!soonAsked && mapState === 'ready' && wardFeatures.length > 0 && store.snapshots > 0) {
    // Once: a view with no station or segment never has its first useful
    // frame, and a redraw at every animation frame would follow.
    soonAsked = true;
    batcher.soon();
  } else batcher.schedule();
}

/** @param {string} code */
function unitName(code) {
  const u = units.get(code);
  if (!u) return code;
  return (lang() === 'en' ? u.nameEn || u.name : u.name || u.nameEn) || code;
}

// ---- the map -------------------------------------------------------------------

/** @param {string} message */
function showFatal(message) {
  const el = $('fatal');
  el.textContent = message;
  el.hidden = false;
}

function initMap() {
  if (typeof maplibregl === 'undefined') {
    mapState = 'missing';
    showFatal(t('fatal.noMap'));
    return;
  }
  try {
    symbols = rootScale();
    map = createMap('map', !kiosk, mapStyle(symbols, reportStyle()));
  } catch (err) {
    mapState = 'error';
    map = null;
    showFatal(t('fatal.noWebGL', { err: /** @type {Error} */ (err)?.message ?? String(err) }));
    return;
  }
  const m = map;
  // Ready once its style is (sources and layers made), not at 'load', which
  // also waits for the worker to have loaded every source empty: the wards
  // and the snapshot may be handed over meanwhile (the worker takes them
  // after those loads, in order).
  m.once('style.load', () => {
    performance.mark('iochub:map-load');
    mapState = 'ready';
    // The screen may have changed size since the style was made.
    applyScale();
    for (const l of LIVE_LAYERS) store.dirty.add(l);
    wardFills.clear();
    alertAreas = [];
    fitToUnits();
    mark('units', 'fills', 'reports');
  });
  revealWhenShown(m, $('map'));
  watchReports(m);
  m.on('click', onMapClick);
  // A screen whose size changes (a window moved to the wall) shows the whole
  // province again, with stations and segments sized for it, and the trends redrawn.
  let resizeTimer = 0;
  window.addEventListener('resize', () => {
    clearTimeout(resizeTimer);
    resizeTimer = window.setTimeout(() => {
      applyScale();
      fitToUnits();
      mark('kpis');
    }, 300);
  });
  m.on('moveend', () => declutterLabels(lastWatch));
  // Zoomed in past what the simplified boundaries hold: fetch them whole, once.
  m.on('zoomend', () => {
    // The national wall keeps its simplified provinces: a country's whole boundaries are too heavy for a screen.
    if (unitsDetail === 'simplified' && national === false && needsDetail(m.getZoom(), fitZoom)) loadUnitsDetail();
  });
}

/** rootScale is the map symbols' scale for the screen now (layers.js symbolScale). */
function rootScale() {
  return symbolScale(parseFloat(getComputedStyle(document.documentElement).fontSize));
}

function fitToUnits() {
  if (mapState !== 'ready' || !map || !unitsBBox) return;
  map.resize();
  map.fitBounds([[unitsBBox[0], unitsBBox[1]], [unitsBBox[2], unitsBBox[3]]], { padding: 30, animate: false });
  fitZoom = map.getZoom();
}

/** @param {any} e */
function onMapClick(e) {
  if (!map) return;
  const pad = 6;
  /** @type {[[number, number], [number, number]]} */
  const box = [[e.point.x - pad, e.point.y - pad], [e.point.x + pad, e.point.y + pad]];
  const m = map;
  const hits = m.queryRenderedFeatures(box, { layers: CLICK_LAYERS.filter((l) => m.getLayer(l)) });
  hits.sort((a, b) => CLICK_LAYERS.indexOf(a.layer.id) - CLICK_LAYERS.indexOf(b.layer.id));
  const hit = hits[0];
  if (!hit) return;
  const kind = hit.layer.id === 'wards-fill' ? 'ward' : 'entity';
  const key = String(kind === 'ward' ? hit.properties.code : hit.properties.fid);
  openDetail(kind, key, e.lngLat);
}

/**
 * openDetail shows the detail of a ward or entity at lngLat.
 * @param {'ward' | 'entity'} kind
 * @param {string} key
 * @param {[number, number] | import('maplibre-gl').LngLat} lngLat
 */
function openDetail(kind, key, lngLat) {
  if (!map) return;
  popup?.popup.remove();
  // The live part is redrawn with the screen; the chart is drawn once.
  const box = document.createElement('div');
  const live = document.createElement('div');
  live.className = 'detail-live';
  live.innerHTML = detailHTML(kind, key, store, unitName);
  const chart = document.createElement('div');
  chart.className = 'history-chart';
  box.append(live, chart);
  const p = new maplibregl.Popup({ maxWidth: '32rem' }).setLngLat(lngLat).setDOMContent(box).addTo(map);
  popup = { popup: p, kind, key, live };
  p.on('close', () => { if (popup?.popup === p) popup = null; });
  const f = kind === 'entity' ? store.entities.get(key) : undefined;
  if (kind === 'ward') drawHistory(chart, { unit: key }, layer);
  else if (f && f.properties.layer !== 'alert' && f.properties.layer !== 'report') drawHistory(chart, { entity: f.properties.entityId }, f.properties.layer);
  else chart.hidden = true;
}

/** @param {string} id */
function focusEntity(id) {
  const f = store.entities.get(id);
  if (!f || mapState !== 'ready' || !map) return;
  const bb = bboxOf([f.geometry]);
  if (!bb) return;
  map.fitBounds([[bb[0], bb[1]], [bb[2], bb[3]]], { padding: 120, maxZoom: 14, duration: 600 });
}

/**
 * setLabels shows the names of the units to watch as HTML labels (no glyph
 * server needed), and removes the others.
 * @param {import('./kpi.js').Watch[]} watch
 */
function setLabels(watch) {
  if (!map) return;
  const want = new Set(watch.slice(0, MAX_LABELS).map((w) => w.code));
  for (const [code, m] of labels) {
    if (!want.has(code)) {
      m.remove();
      labels.delete(code);
    }
  }
  for (const w of watch.slice(0, MAX_LABELS)) {
    let m = labels.get(w.code);
    const at = labelPoints.get(w.code);
    if (!at) continue;
    if (!m) {
      const el = document.createElement('div');
      el.className = 'ward-label';
      m = new maplibregl.Marker({ element: el }).setLngLat(at).addTo(map);
      labels.set(w.code, m);
    }
    const el = m.getElement();
    el.textContent = unitName(w.code);
    el.style.borderColor = w.color;
  }
  declutterLabels(watch);
}

/**
 * declutterLabels hides a label that would overlap one of a worse unit, so
 * that every name shown can be read.
 * @param {import('./kpi.js').Watch[]} watch worst first
 */
function declutterLabels(watch) {
  /** @type {DOMRect[]} */
  const placed = [];
  let visible = 0;
  for (const w of watch) {
    const el = labels.get(w.code)?.getElement();
    if (!el) continue;
    el.style.visibility = '';
    const r = el.getBoundingClientRect();
    const hit = placed.some((p) => r.left < p.right && r.right > p.left && r.top < p.bottom && r.bottom > p.top);
    if (hit) {
      el.style.visibility = 'hidden';
    } else {
      placed.push(r);
      visible++;
    }
  }
  shown.labels = visible;
}

// ---- redraw (batched) ------------------------------------------------------------

function flush() {
  const dirty = store.take();
  for (const e of extra) dirty.add(e);
  extra.clear();
  // While replaying, the screen's present is the replayed instant.
  const now = replayAt ?? Date.now();
  const by = store.byLayer();
  const active = activeAlerts(by.alert ?? [], now);
  shown.stations = by.air?.length ?? 0;
  shown.segments = by.traffic?.length ?? 0;
  shown.water = by.water?.length ?? 0;
  shown.weather = by.weather?.length ?? 0;
  shown.alerts = active.length;
  const codes = wardFeatures.map((f) => String(f.properties.code));
  const watch = unitsToWatch(store, codes, layer, Math.max(MAX_LABELS, MAX_WATCH), now);
  lastWatch = watch;

  if (mapState === 'ready' && map) {
    if (dirty.has('units')) {
      setSource(map, 'wards', wardFeatures.map((f) => ({ type: 'Feature', geometry: f.geometry, properties: { code: f.properties.code } })));
      setSource(map, 'province', provinceFeature ? [provinceFeature] : []);
      shown.wards = wardFeatures.length;
      wardFills.clear();
      dirty.add('fills');
    }
    for (const l of ['air', 'traffic', 'water', 'weather']) {
      if (dirty.has(l)) setSource(map, l, (by[l] ?? []).filter((f) => f.geometry).map(liveFeature));
    }
    // 'list' is marked for the list's own changes too (acknowledge buttons,
    // time left, the sign-in): the areas are handed over again only when the
    // active alerts did change, not reloaded and repainted for nothing.
    if ((dirty.has('alert') || dirty.has('list')) && !sameItems(active, alertAreas)) {
      alertAreas = active;
      const feats = [];
      for (const f of active) {
        const sev = severityOfFeature(f);
        for (const g of flatGeometries(f.geometry)) feats.push({ type: 'Feature', geometry: g, properties: { fid: f.id, sev } });
      }
      setSource(map, 'alerts', feats);
    }
    if (dirty.has('fills') || dirty.has('rollups')) {
      setWardFills(map, unitColors(store, codes, layer, now), wardFills);
      setLabels(watch);
    }
    if (popup) popup.live.innerHTML = detailHTML(popup.kind, popup.key, store, unitName);
  }
  if (dirty.has('alert') || dirty.has('list')) {
    shown.alertItems = renderAlerts(active, unitName, province, focusEntity, ack);
  }
  if (dirty.has('report') || dirty.has('reports')) {
    renderReports(store.entities, mapState === 'ready' ? map : null, focusEntity);
  }
  if (dirty.has('legend')) renderUnitLegend(layer, national);
  renderKpis(provinceKpis(store, province, now), watch.slice(0, MAX_WATCH).map((w) => ({
    code: w.code, name: unitName(w.code), color: w.color, value: watchValue(w),
  })));
  attachTrends();
  $('n-stations').textContent = fmtNumber(shown.stations, lang(), 0);
  $('n-segments').textContent = fmtNumber(shown.segments, lang(), 0);
  drawStatus();
  if (firstUsefulFlush === null && shown.wards > 0 && store.snapshots > 0 && (shown.stations > 0 || shown.segments > 0)) {
    firstUsefulFlush = performance.now();
    performance.mark('iochub:first-useful-flush');
    // The sources are parsed and tiled off the main thread: the frame is
    // useful once the map has painted them all (idle: nothing left to load or draw).
    const m = map;
    m?.once('idle', () => {
      firstUsefulMs = performance.now();
      performance.mark('iochub:first-useful-frame');
      runAfterFirstFrame();
    });
  }
}

// Work the first useful frame need not wait for (the trends' history
// requests, their JSON and charts) waits for it, or at most 10 s (no map, no
// wards, a slow first frame).
/** @type {(() => void)[] | null} */
let afterFirstFrame = [];
/** @param {() => void} fn */
function whenFirstFrame(fn) {
  if (afterFirstFrame === null) fn();
  else afterFirstFrame.push(fn);
}
function runAfterFirstFrame() {
  const fns = afterFirstFrame ?? [];
  afterFirstFrame = null;
  for (const fn of fns) fn();
}
setTimeout(runAfterFirstFrame, 10_000);

// drawAlertsSoon redraws the alert list within a few milliseconds of an
// alert's change (a new alert, an acknowledgement from another wall), not at
// the batched redraw, which waits longer while painting the map is slow; the
// map's alert areas follow at the batched redraw. A burst of changes is
// drawn once.
let alertsDue = false;
function drawAlertsSoon() {
  if (alertsDue) return;
  alertsDue = true;
  setTimeout(() => {
    alertsDue = false;
    if (clock.active) return;
    const active = activeAlerts(store.byLayer().alert ?? [], Date.now());
    shown.alerts = active.length;
    shown.alertItems = renderAlerts(active, unitName, province, focusEntity, ack);
  }, 0);
}

// drawStatus redraws the status bar; the connection state is drawn at once
// when it changes, never waiting for a batched redraw.
function drawStatus() {
  renderStatus({
    connection, retryInSeconds, lastUpdate: store.lastUpdate, layer,
    provinceName: units.has(province) ? unitName(province) : t('province', { code: province }),
  });
}

/**
 * sameItems reports whether a and b hold the same objects in the same order.
 * @param {unknown[]} a
 * @param {unknown[]} b
 */
function sameItems(a, b) {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** @param {Feature} f */
function severityOfFeature(f) {
  const infos = f.properties.alert?.info ?? [];
  for (const s of ['Extreme', 'Severe', 'Moderate', 'Minor']) if (infos.some((/** @type {any} */ i) => i.severity === s)) return s;
  return 'Unknown';
}

/** @param {import('./kpi.js').Watch} w */
function watchValue(w) {
  const r = w.rollup;
  const L = lang();
  if (layer === 'air') return `VN_AQI ${fmtNumber(r.aqiMax ?? NaN, L, 0)}`;
  if (layer === 'traffic') return fmtPercent(r.congestedSegmentShare ?? NaN, L);
  return t(`water.alarm${r.alarmMax ?? 0}`);
}

// ---- data: units ---------------------------------------------------------------

async function loadUnits() {
  let delay = 1000;
  for (;;) {
    try {
      unitsRequests++;
      // The first try takes the request early.js started while the page
      // loaded, if it succeeded (a 401 then was before signIn: ask again).
      const early = await takeEarlyUnits();
      let res = early?.res;
      let fc = early?.body;
      if (!res?.ok) {
        await signedIn;
        res = await fetch(unitsURL(province), { headers: UNITS_ACCEPT });
        fc = undefined;
      }
      if (res.status === 401) {
        await showLogin(t('login.again'));
        continue;
      }
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      performance.mark('iochub:units-response');
      if (fc === undefined) fc = await res.json();
      performance.mark('iochub:units-parsed');
      if (!Array.isArray(fc?.features)) throw new Error('not a GeoJSON FeatureCollection');
      setUnits(fc.features);
      if (mapState !== 'missing' && mapState !== 'error') $('fatal').hidden = true;
      return;
    } catch (err) {
      console.warn('loading units', err);
      if (mapState !== 'missing' && mapState !== 'error') showFatal(t('fatal.units', { err: /** @type {Error} */ (err).message }));
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 10000);
    }
  }
}

// loadUnitsDetail replaces the simplified boundaries with the whole ones
// (the map zoomed in); a failure leaves the simplified ones, tried again at
// the next zoom.
async function loadUnitsDetail() {
  unitsDetail = 'loading';
  try {
    unitsRequests++;
    const res = await fetch(unitsURL(province, true), { headers: UNITS_ACCEPT });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const fc = await res.json();
    if (!Array.isArray(fc?.features)) throw new Error('not a GeoJSON FeatureCollection');
    setUnits(fc.features, false);
    unitsDetail = 'full';
  } catch (err) {
    console.warn('loading whole boundaries', err);
    unitsDetail = 'simplified';
  }
}

/**
 * @param {Feature[]} features
 * @param {boolean} [refit] show the whole province (not when only the boundaries' detail changes)
 */
function setUnits(features, refit = true) {
  units.clear();
  labelPoints.clear();
  wardFeatures = [];
  provinceFeature = null;
  for (const f of features) {
    const p = f.properties ?? {};
    const code = p.code ?? f.id;
    units.set(code, p);
    // On the national wall the provinces are the units coloured; VN has the outline (if any).
    if (code === province || (p.level === 'province' && !national)) provinceFeature = f;
    else if (f.geometry) {
      wardFeatures.push(f);
      labelPoints.set(code, labelPoint(f.geometry));
    }
  }
  unitsBBox = bboxOf((provinceFeature ? [provinceFeature] : wardFeatures).map((f) => f.geometry))
    ?? bboxOf(wardFeatures.map((f) => f.geometry));
  if (mapState !== 'ready') shown.wards = 0;
  if (refit) fitToUnits();
  mark('units', 'fills', 'list', 'status');
}

// ---- trends on the tiles -------------------------------------------------------------
// One GET /v1/history of the province per tile (air, traffic, water) when the
// screen starts (and again on a fresh snapshot once a minute has passed, so a
// gap while offline or replaying is filled from the store), then the
// province's live 1m roll-ups update the newest bucket. The charts are made
// once and moved into the tiles' HTML after each redraw.

const TREND_COLORS = /** @type {Record<string, string>} */ ({ air: '#ffb020', traffic: '#4fb3ff', water: '#3fd0ff' });
const trends = new Map(Object.entries(TRENDS).map(([l, c]) => {
  const series = new TrendSeries(c.combine);
  return [l, { series, chart: new TrendChart(series, TREND_COLORS[l]) }];
}));
let trendsLoadedAt = -Infinity;
let trendRequests = 0;

// loadTrends fetches every trend's history; the caller sets trendsLoadedAt
// when it asks (the call may wait for the first useful frame).
async function loadTrends() {
  await Promise.all([...trends].map(async ([l, { series, chart }]) => {
    const url = trendQuery(province, l, Date.now());
    if (!url) return;
    trendRequests++;
    try {
      const res = await fetch(url, { headers: { Accept: 'application/json' } });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      series.load(await res.json(), TRENDS[l].value, TRENDS[l].stat);
      chart.el.title = '';
    } catch (err) {
      console.warn('trend', l, err);
      chart.el.dataset.state = 'error';
      chart.el.title = `${t('trend.failed')}: ${/** @type {Error} */ (err).message}`;
    }
  }));
  mark('kpis');
}

/** @param {any} r a live roll-up of TREND_WINDOW */
function feedTrend(r) {
  const l = trendRollup(r, province);
  if (l && trends.get(l)?.series.live(Date.parse(r.windowStart), r[TRENDS[l].field])) mark('kpis');
}

// attachTrends moves each chart into its tile's slot and draws it when its
// series or its size changed.
function attachTrends() {
  const rem = parseFloat(getComputedStyle(document.documentElement).fontSize) || 20;
  for (const [l, { series, chart }] of trends) {
    const slot = document.querySelector(`#kpis .trend-slot[data-trend="${l}"]`);
    if (!slot) continue;
    // The slot has the chart's width: read it before the swap (no second layout).
    const width = Math.max(60, Math.round(/** @type {HTMLElement} */ (slot).clientWidth));
    slot.replaceWith(chart.el);
    const height = Math.round(rem * 1.9);
    if (series.changed || !chart.plot || chart.plot.width !== width || chart.plot.height !== height) {
      series.changed = false;
      chart.draw(width, height);
    }
  }
}

// ---- data: live ---------------------------------------------------------------

/** signedOut reports whether the gateway says nobody is signed in. */
async function signedOut() {
  try {
    return (await fetch('/v1/session')).status === 401;
  } catch {
    return false;
  }
}

const live = new LiveConnection({
  url: liveURL(location),
  // The first socket is the one early.js opened while the page loaded (its
  // snapshot may be in already); later ones are opened here.
  open: (url) => /** @type {WebSocket} */ (/** @type {unknown} */ (takeEarlySocket(url))) ?? new WebSocket(url),
  onFrame: (msg) => {
    // While replaying, live frames are held back: the store shows the past.
    // Going live re-subscribes, and the fresh snapshot replaces the past.
    if (clock.active) {
      heldFrames++;
      return;
    }
    // The 1m roll-ups feed the tiles' trends only; the store keeps the others.
    if (msg?.type === 'rollup' && msg.rollup?.window === TREND_WINDOW) {
      feedTrend(msg.rollup);
      return;
    }
    if (msg?.type === 'rollups' && Array.isArray(msg.rollups)) {
      for (const r of msg.rollups) if (r?.window === TREND_WINDOW) feedTrend(r);
      msg = { ...msg, rollups: msg.rollups.filter((/** @type {any} */ r) => r?.window !== TREND_WINDOW) };
    }
    if (!store.apply(msg)) return;
    if (msg.type === 'state' && msg.entity?.properties?.layer === 'alert') drawAlertsSoon();
    if (msg.type === 'snapshot') {
      if (store.snapshots === 1) performance.mark('iochub:first-snapshot');
      live.snapshotTaken();
      if (Date.now() - trendsLoadedAt > 60_000) {
        trendsLoadedAt = Date.now();
        whenFirstFrame(loadTrends);
      }
    }
    redraw();
  },
  onState: (state, retryMs) => {
    connection = state;
    retryInSeconds = Math.ceil(retryMs / 1000);
    drawStatus();
  },
  beforeRetry: async (code, wasOnline) => {
    // A socket opened before the sign-in was done (an early start) waits for it.
    await signedIn;
    // 4003: the identity was revoked. A refused upgrade (401) only shows as
    // 1006 here, so after a failed open ask the gateway who is signed in.
    if (code === 4003 || (!wasOnline && code === 1006 && await signedOut())) {
      await showLogin(t('login.again'));
      live.backoff.reset();
    }
  },
});

// ---- replay ------------------------------------------------------------------------
// The replay bar: a slider over the last 24 hours and 1×/4×/8×. While
// replaying, the store holds /v1/replay answers (fetched at most once a
// second), never live frames, and the badge says so; "Live" re-subscribes.

const clock = new ReplayClock();
/** the replayed instant (ms) the store shows, or null when live */
/** @type {number | null} */
let replayAt = null;
let heldFrames = 0;
let replayFetches = 0;
let replayFetching = false;
/** @type {ReturnType<typeof setInterval> | 0} */
let replayTimer = 0;

/** @param {number} at */
async function fetchReplay(at) {
  if (replayFetching) return;
  replayFetching = true;
  try {
    const res = await fetch(`/v1/replay?province=${encodeURIComponent(province)}&at=${encodeURIComponent(new Date(at).toISOString())}`);
    if (res.status === 401) {
      await showLogin(t('login.again'));
      return;
    }
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const doc = await res.json();
    if (!clock.active) return; // back to live meanwhile
    replayFetches++;
    store.apply({ type: 'snapshot', entities: doc.entities ?? [] });
    store.apply({ type: 'rollups', rollups: doc.rollups ?? [] });
    replayAt = at;
    mark('list', 'fills', 'reports');
  } catch (err) {
    console.warn('replay', err);
  } finally {
    replayFetching = false;
  }
}

function drawReplay() {
  const on = clock.active;
  const at = clock.time(Date.now());
  $('replay').classList.toggle('replaying', on);
  $('replay-badge').hidden = !on;
  $('replay-time').textContent = at === null ? t('replay.now') : fmtTime(at, lang(), true);
  const slider = /** @type {HTMLInputElement} */ ($('replay-slider'));
  if (at !== null && document.activeElement !== slider) slider.value = String(Math.round((at - Date.now()) / 60000));
  if (at === null) slider.value = '0';
  const pause = $('replay-pause');
  const paused = on && clock.paused;
  pause.textContent = paused ? '▶' : '❚❚';
  pause.title = t(paused ? 'replay.play' : 'replay.pause');
  pause.setAttribute('aria-pressed', String(paused));
  pause.classList.toggle('on', paused);
  for (const b of document.querySelectorAll('#replay button[data-speed]')) {
    b.classList.toggle('on', on && Number(/** @type {HTMLElement} */ (b).dataset.speed) === clock.speed);
  }
}

function replayTick() {
  const { at, ended, fetch } = clock.tick(Date.now());
  if (ended) {
    goLive();
    return;
  }
  if (at !== null && fetch) fetchReplay(at);
  drawReplay();
}

/** @param {number} at the instant to replay from (ms) */
function startReplay(at) {
  clock.start(at, Date.now());
  if (!replayTimer) replayTimer = setInterval(replayTick, 250);
  replayTick();
}

function goLive() {
  clock.stop();
  replayAt = null;
  if (replayTimer) clearInterval(replayTimer);
  replayTimer = 0;
  drawReplay();
  // A fresh subscription: its snapshot replaces the replayed state.
  live.stop();
  live.start();
  mark('list', 'fills', 'reports', 'status');
}

{
  const slider = /** @type {HTMLInputElement} */ ($('replay-slider'));
  slider.addEventListener('change', () => {
    const minutes = Number(slider.value);
    if (minutes >= 0) {
      if (clock.active) goLive();
      return;
    }
    const at = Date.now() + minutes * 60000;
    if (!clock.active) {
      startReplay(at);
      return;
    }
    // Moved while replaying (paused or not): the replay goes on from there, a pause is kept.
    clock.seek(at, Date.now());
    replayTick();
    slider.blur();
  });
  // Pause holds the replayed instant (the slider still moves it); play goes on
  // at the chosen speed. Pausing the live screen holds the present as a replay.
  $('replay-pause').addEventListener('click', () => {
    const now = Date.now();
    if (!clock.active) {
      startReplay(now - 1000);
      clock.pause(now);
    } else {
      clock.toggle(now);
    }
    replayTick();
  });
  for (const b of document.querySelectorAll('#replay button[data-speed]')) {
    b.addEventListener('click', () => {
      const speed = Number(/** @type {HTMLElement} */ (b).dataset.speed) || 1;
      if (!clock.active) {
        clock.speed = speed;
        startReplay(Date.now() - 3600 * 1000);
        return;
      }
      clock.setSpeed(speed, Date.now());
      drawReplay();
    });
  }
  $('replay-live').addEventListener('click', () => { if (clock.active) goLive(); });
  drawReplay();
}

// ---- layer choice and kiosk -------------------------------------------------------

/** @param {string} l */
function setLayer(l) {
  layer = l;
  wardFills.clear();
  mark('fills', 'legend', 'status');
}

if (kiosk) document.body.classList.add('kiosk');
// The national wall has no replay: /v1/replay is a province's (its past states).
if (national) $('replay').style.display = 'none';
for (const b of document.querySelectorAll('#layers button')) {
  b.addEventListener('click', () => {
    setLayer(/** @type {HTMLElement} */ (b).dataset.layer ?? 'air');
    batcher.flushNow();
  });
}
if (rotateSeconds > 0) setInterval(() => setLayer(nextLayer(layer)), rotateSeconds * 1000);

// ---- debug hook (read-only, for tests and curious operators) -------------------------

/** @param {string} id */
function screenPoint(id) {
  const f = store.entities.get(id);
  if (!f || mapState !== 'ready' || !map) return null;
  const c = anchorOf(f.geometry);
  if (!c) return null;
  const p = map.project(c);
  const r = map.getContainer().getBoundingClientRect();
  return { x: r.left + p.x, y: r.top + p.y };
}

/** @param {number[]} xs @param {number} q */
function quantile(xs, q) {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

globalThis.iochub = Object.freeze({
  stats: () => ({
    connection,
    map: mapState,
    lang: lang(),
    province,
    national,
    kiosk,
    layer,
    wards: shown.wards,
    stations: shown.stations,
    segments: shown.segments,
    alerts: shown.alerts,
    alertItems: shown.alertItems,
    water: shown.water,
    weather: shown.weather,
    labels: shown.labels,
    reports: reportStats(),
    entities: store.entities.size,
    rollups: store.rollups.size,
    frames: live.frames,
    staleFrames: live.staleFrames,
    outdated: store.outdated,
    snapshots: store.snapshots,
    attempts: live.attempts,
    redraws: batcher.flushes,
    pending: batcher.pending || store.dirty.size > 0 || extra.size > 0,
    lastUpdate: store.lastUpdate?.toISOString() ?? null,
    unitsDetail,
    unitsRequests,
    zoom: map && mapState === 'ready' ? map.getZoom() : null,
    fitZoom,
    replaying: clock.active,
    replayPaused: clock.active && clock.paused,
    replayClock: clock.active ? new Date(/** @type {number} */ (clock.time(Date.now()))).toISOString() : null,
    replayAt: replayAt === null ? null : new Date(replayAt).toISOString(),
    replayFetches,
    heldFrames,
  }),
  perf: () => ({
    firstUsefulMs,
    firstUsefulFlushMs: firstUsefulFlush,
    // Milestones of the first frame (ms from navigation start).
    marks: Object.fromEntries(performance.getEntriesByType('mark').filter((e) => e.name.startsWith('iochub:')).map((e) => [e.name.slice(7), Math.round(e.startTime)])),
    flushes: batcher.flushes,
    requests: batcher.totalRequests,
    flushP50: quantile(batcher.durations, 0.5),
    flushP95: quantile(batcher.durations, 0.95),
    flushMax: batcher.durations.length ? Math.max(...batcher.durations) : null,
  }),
  entity: (/** @type {string} */ id) => (store.entities.has(id) ? structuredClone(store.entities.get(id)) : null),
  entityIds: (/** @type {string} */ l) => [...store.entities.values()].filter((f) => !l || f.properties?.layer === l).map((f) => f.id),
  rollup: (/** @type {string} */ unit, /** @type {string} */ l) => structuredClone(store.rollup(unit, l, '1h', Date.now()) ?? null),
  wardFill: (/** @type {string} */ code) => (map && mapState === 'ready' ? map.getFeatureState({ source: 'wards', id: code })?.fill ?? null : null),
  wardCodes: () => wardFeatures.map((f) => String(f.properties.code)),
  trend: (/** @type {string} */ l) => {
    const tr = trends.get(l);
    if (!tr) return null;
    const [xs, ys] = tr.series.data();
    return { xs, ys, points: tr.series.points(), last: tr.series.last(), draws: tr.chart.draws, liveUpdates: tr.series.liveUpdates, state: tr.chart.el.dataset.state ?? null, requests: trendRequests };
  },
  paint: (/** @type {string} */ id, /** @type {string} */ prop) => (map && mapState === 'ready' && map.getLayer(id) ? structuredClone(map.getPaintProperty(id, prop)) : null),
  symbolScale: () => symbols,
  screenPoint,
});

// ---- start ---------------------------------------------------------------------------

$('lang').addEventListener('click', () => {
  setLang(lang() === 'vi' ? 'en' : 'vi');
  if (mapState === 'missing') showFatal(t('fatal.noMap'));
  mark('status', 'list', 'reports', 'legend', 'fills');
  drawReplay();
  // Redraw now, not at the next tick: the click should feel instant.
  batcher.flushNow();
});
setInterval(() => mark('list', 'reports', 'fills'), 30000); // expiries, time left, report deadlines, roll-up windows ending
renderAQILegend();
apply(document);
initMap();
// Units and the live view need a signed-in browser (session.js). A browser
// that comes back with its session cookie (no one-time ?code= to trade first:
// a wall's kiosk, a reload) opens the live view at once, beside the sign-in
// round trip; a socket or a units request refused for want of a session
// waits for the sign-in (the login form) and tries again. The live view's
// first snapshot loads the trends, once the first useful frame is painted.
const startViews = () => {
  loadUnits();
  live.start();
};
if (early) startViews();
ack.can = !kiosk && mayAck(await signedIn);
performance.mark('iochub:signed-in');
mark('list'); // the acknowledge buttons, if the list was drawn before
if (!early) startViews();
