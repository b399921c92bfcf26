// app.js is the wall screen: a MapLibre map of one province with its ward
// boundaries, fed live by the gateway's WebSocket (/v1/live). It keeps the
// current state of every entity in memory and redraws at most ~4 times a
// second, so a burst of frames never freezes the screen.
import { t, lang, setLang, apply, locale, valueUnits } from './i18n.js';
import { addReportLayers, renderReports, reportStats } from './reports.js';
import { AQI_BANDS } from './aqi_bands.js';
import { signIn, showLogin } from './session.js';

const REDRAW_MS = 250; // at most ~4 redraws a second
const BACKOFF_MIN_MS = 1000;
const BACKOFF_MAX_MS = 10000;
const MAX_ALERT_ITEMS = 50; // the list never scrolls; the rest is counted
const TZ = 'Asia/Ho_Chi_Minh';

// Raw PM2.5 by the VN_AQI bands' colours, each from the NowCast at which its band starts.
const PM25_COLOR = ['step', ['get', 'pm25'], AQI_BANDS[0].color, ...AQI_BANDS.slice(1).flatMap((b) => [b.pm25From, b.color])];
const NO_VALUE_COLOR = '#8a94a6';
// A station with a VN_AQI is drawn in its band's colour, which the aggregator
// sends (properties.aqi.color, from internal/aqi); without one, by PM2.5.
const AIR_COLOR = ['case', ['has', 'aqiColor'], ['get', 'aqiColor'], ['has', 'pm25'], PM25_COLOR, NO_VALUE_COLOR];
// Water stations by the alarm level reached (báo động I, II, III).
const WATER_ALARM_COLORS = ['#3fa7ff', '#ffd21f', '#ff7e00', '#ff0000'];
const WATER_COLOR = ['match', ['get', 'alarm'], 1, WATER_ALARM_COLORS[1], 2, WATER_ALARM_COLORS[2], 3, WATER_ALARM_COLORS[3], WATER_ALARM_COLORS[0]];
const WEATHER_COLOR = '#e6f0ff';
const SPEED_COLOR = ['step', ['get', 'speed'], '#ff2d2d', 15, '#ff9f1a', 30, '#2ee06b'];
const ALERT_COLOR = '#ff3b3b';

const params = new URLSearchParams(location.search);
const province = /^\d{2}$/.test(params.get('province') ?? '') ? params.get('province') : '01';

const $ = (id) => document.getElementById(id);

// renderAQILegend puts one legend item per VN_AQI band, with the PM2.5
// NowCast range it colours, before the "no value" item; apply() names them.
function renderAQILegend() {
  const scale = $('aqi-scale');
  const items = AQI_BANDS.map((b, i) => {
    const next = AQI_BANDS[i + 1];
    const li = document.createElement('li');
    const sw = document.createElement('i');
    sw.className = 'sw circle';
    sw.style.background = b.color;
    const name = document.createElement('span');
    name.dataset.i18n = `aqi.band${b.level}`;
    li.append(sw, next ? `${b.pm25From}–${next.pm25From} ` : `> ${b.pm25From} `, name);
    return li;
  });
  scale.prepend(...items);
}

// ---- state ---------------------------------------------------------------

const entities = new Map(); // "<layer>/<entityId>" → GeoJSON Feature
const units = new Map(); // code → unit properties
let wardFeatures = [];
let provinceFeature = null;
let unitsBBox = null;

let connection = 'connecting';
let retryInSeconds = 0;
let lastUpdate = null; // Date of the last frame that changed the state
let framesReceived = 0;
let snapshotsReceived = 0;
let redraws = 0;

const dirty = { units: false, air: false, traffic: false, alerts: false, water: false, weather: false, status: true, list: false };
let flushPending = false;
let lastFlush = 0;
dirty.reports = true; // citizen reports (reports.js)

// What is on screen, counted at the last redraw (read by the debug hook).
const shown = { wards: 0, stations: 0, segments: 0, alerts: 0, alertItems: 0, water: 0, weather: 0 };

let map = null;
let mapState = 'loading'; // loading | ready | missing | error
let popup = null; // { popup, kind, key }

// ---- helpers -------------------------------------------------------------

function esc(s) {
  return String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}

function fmtNumber(v) {
  return new Intl.NumberFormat(locale(), { maximumFractionDigits: 1 }).format(v);
}

function fmtTime(iso, withDate) {
  const d = iso instanceof Date ? iso : new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso ?? '');
  const opts = { timeZone: TZ, hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false };
  if (withDate) Object.assign(opts, { day: '2-digit', month: '2-digit', year: 'numeric' });
  return new Intl.DateTimeFormat(locale(), opts).format(d);
}

function unitName(code) {
  const u = units.get(code);
  if (!u) return code;
  return (lang() === 'en' ? u.nameEn || u.name : u.name || u.nameEn) || code;
}

function layerOf(f) {
  return f?.properties?.layer;
}

function values(f) {
  return f?.properties?.observation?.values ?? {};
}

function isNumber(v) {
  return typeof v === 'number' && Number.isFinite(v);
}

// alertInfo picks the info block in the screen's language, else the first.
function alertInfo(alert) {
  const infos = Array.isArray(alert?.info) ? alert.info : [];
  return infos.find((i) => (i.language ?? '').toLowerCase().startsWith(lang())) ?? infos[0] ?? {};
}

function alertSent(f) {
  const p = f.properties ?? {};
  return Date.parse(p.alert?.sent ?? p.observation?.time ?? p.updatedAt ?? '') || 0;
}

// isActiveAlert: state "active" (or not given), an Alert or Update (a CAP
// Cancel, Ack or Error message is never an alert in force: a Cancel's effect
// is the earlier alert's state "cancelled"), and not past every expiry.
function isActiveAlert(f, now) {
  const a = f.properties?.alert;
  if (!a) return false;
  if (a.state && a.state !== 'active') return false;
  if (a.msgType && a.msgType !== 'Alert' && a.msgType !== 'Update') return false;
  const expiries = (a.info ?? []).map((i) => Date.parse(i.expires ?? '')).filter((x) => !Number.isNaN(x));
  if (expiries.length > 0 && expiries.every((x) => x < now)) return false;
  return true;
}

// flatGeometries splits GeometryCollections so every layer sees simple geometries.
function flatGeometries(g, out = []) {
  if (!g) return out;
  if (g.type === 'GeometryCollection') {
    for (const c of g.geometries ?? []) flatGeometries(c, out);
  } else if (g.type && g.coordinates) {
    out.push(g);
  }
  return out;
}

function extendBBox(bb, coords) {
  if (typeof coords[0] === 'number') {
    bb[0] = Math.min(bb[0], coords[0]);
    bb[1] = Math.min(bb[1], coords[1]);
    bb[2] = Math.max(bb[2], coords[0]);
    bb[3] = Math.max(bb[3], coords[1]);
    return bb;
  }
  for (const c of coords) extendBBox(bb, c);
  return bb;
}

function bboxOf(geometries) {
  const bb = [Infinity, Infinity, -Infinity, -Infinity];
  for (const g of geometries) for (const s of flatGeometries(g)) extendBBox(bb, s.coordinates);
  return Number.isFinite(bb[0]) ? bb : null;
}

// anchorOf is a representative coordinate of a geometry: a point itself, the
// middle vertex of a line, the first vertex of a polygon.
function anchorOf(g) {
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

// ---- the map -------------------------------------------------------------

function showFatal(message) {
  const el = $('fatal');
  el.textContent = message;
  el.hidden = false;
}

function initMap() {
  if (!globalThis.maplibregl) {
    mapState = 'missing';
    showFatal(t('fatal.noMap'));
    return;
  }
  try {
    map = new maplibregl.Map({
      container: 'map',
      // No basemap and no glyphs: the wall works with no internet.
      style: {
        version: 8,
        sources: {},
        layers: [{ id: 'background', type: 'background', paint: { 'background-color': '#0b1220' } }],
      },
      center: [105.85, 21.03],
      zoom: 9,
      attributionControl: false,
      dragRotate: false,
      pitchWithRotate: false,
      fadeDuration: 0,
    });
  } catch (err) {
    mapState = 'error';
    map = null;
    showFatal(t('fatal.noWebGL', { err: err?.message ?? String(err) }));
    return;
  }
  map.touchZoomRotate.disableRotation();
  map.addControl(new maplibregl.NavigationControl({ showCompass: false }), 'top-left');
  map.on('error', (e) => console.warn('map error', e?.error ?? e));
  map.on('load', () => {
    addLayers();
    addReportLayers(map);
    mapState = 'ready';
    for (const k of Object.keys(dirty)) dirty[k] = true;
    fitToUnits();
    scheduleFlush();
  });
  map.on('click', onMapClick);
  for (const id of ['air-circles', 'water-circles', 'weather-circles', 'traffic-lines', 'traffic-points', 'alert-fill', 'alert-points']) {
    map.on('mouseenter', id, () => { map.getCanvas().style.cursor = 'pointer'; });
    map.on('mouseleave', id, () => { map.getCanvas().style.cursor = ''; });
  }
}

const EMPTY = { type: 'FeatureCollection', features: [] };

function addLayers() {
  for (const id of ['wards', 'province', 'air', 'traffic', 'alerts', 'water', 'weather']) {
    map.addSource(id, { type: 'geojson', data: EMPTY });
  }
  map.addLayer({ id: 'wards-fill', type: 'fill', source: 'wards', paint: { 'fill-color': '#1c2a4a', 'fill-opacity': 0.55 } });
  map.addLayer({ id: 'wards-line', type: 'line', source: 'wards', paint: { 'line-color': '#7f93c8', 'line-width': 1, 'line-opacity': 0.7 } });
  map.addLayer({ id: 'province-line', type: 'line', source: 'province', paint: { 'line-color': '#b8c7ff', 'line-width': 3 } });
  map.addLayer({
    id: 'alert-fill', type: 'fill', source: 'alerts',
    filter: ['match', ['geometry-type'], ['Polygon', 'MultiPolygon'], true, false],
    paint: { 'fill-color': ALERT_COLOR, 'fill-opacity': 0.18 },
  });
  map.addLayer({
    id: 'alert-line', type: 'line', source: 'alerts',
    filter: ['match', ['geometry-type'], ['Polygon', 'MultiPolygon', 'LineString', 'MultiLineString'], true, false],
    paint: { 'line-color': ALERT_COLOR, 'line-width': 3 },
  });
  map.addLayer({
    id: 'traffic-lines', type: 'line', source: 'traffic',
    filter: ['match', ['geometry-type'], ['LineString', 'MultiLineString'], true, false],
    layout: { 'line-cap': 'round', 'line-join': 'round' },
    paint: {
      'line-color': ['case', ['has', 'speed'], SPEED_COLOR, NO_VALUE_COLOR],
      'line-width': ['interpolate', ['linear'], ['zoom'], 9, 4, 14, 10],
    },
  });
  map.addLayer({
    id: 'traffic-points', type: 'circle', source: 'traffic',
    filter: ['match', ['geometry-type'], ['Point', 'MultiPoint'], true, false],
    paint: {
      'circle-color': ['case', ['has', 'speed'], SPEED_COLOR, NO_VALUE_COLOR],
      'circle-radius': 6,
      'circle-stroke-color': '#0b1220',
      'circle-stroke-width': 2,
    },
  });
  map.addLayer({
    id: 'alert-points', type: 'circle', source: 'alerts',
    filter: ['match', ['geometry-type'], ['Point', 'MultiPoint'], true, false],
    paint: {
      'circle-color': 'rgba(255,59,59,0.25)',
      'circle-radius': 16,
      'circle-stroke-color': ALERT_COLOR,
      'circle-stroke-width': 3,
    },
  });
  map.addLayer({
    id: 'air-circles', type: 'circle', source: 'air',
    paint: {
      'circle-color': AIR_COLOR,
      'circle-radius': ['interpolate', ['linear'], ['zoom'], 9, 8, 14, 14],
      'circle-stroke-color': '#0b1220',
      'circle-stroke-width': 2,
    },
  });
  map.addLayer({
    id: 'water-circles', type: 'circle', source: 'water',
    paint: {
      'circle-color': WATER_COLOR,
      'circle-radius': ['interpolate', ['linear'], ['zoom'], 9, 7, 14, 12],
      'circle-stroke-color': '#ffffff',
      'circle-stroke-width': ['match', ['get', 'alarm'], 0, 1.5, 3],
    },
  });
  map.addLayer({
    id: 'weather-circles', type: 'circle', source: 'weather',
    paint: {
      'circle-color': WEATHER_COLOR,
      'circle-radius': ['interpolate', ['linear'], ['zoom'], 9, 4, 14, 7],
      'circle-stroke-color': '#2b6cb0',
      'circle-stroke-width': 2,
    },
  });
}

function fitToUnits() {
  if (mapState !== 'ready' || !unitsBBox) return;
  map.resize();
  map.fitBounds([[unitsBBox[0], unitsBBox[1]], [unitsBBox[2], unitsBBox[3]]], { padding: 30, animate: false });
}

function setSource(id, features) {
  map.getSource(id)?.setData({ type: 'FeatureCollection', features });
}

// ---- redraw (throttled) --------------------------------------------------

function scheduleFlush() {
  if (flushPending) return;
  flushPending = true;
  const wait = Math.max(0, REDRAW_MS - (performance.now() - lastFlush));
  setTimeout(() => requestAnimationFrame(flush), wait);
}

function markDirty(layer) {
  if (layer === 'report') dirty.reports = true;
  if (layer === 'water' || layer === 'weather') dirty[layer] = true;
  if (layer === 'air' || layer === 'traffic' || layer === 'alert') {
    dirty[layer === 'alert' ? 'alerts' : layer] = true;
    if (layer === 'alert') dirty.list = true;
  }
  dirty.status = true;
  scheduleFlush();
}

function flush() {
  flushPending = false;
  lastFlush = performance.now();
  redraws++;
  const now = Date.now();
  const byLayer = { air: [], traffic: [], alert: [], water: [], weather: [] };
  for (const f of entities.values()) {
    const l = layerOf(f);
    if (l in byLayer) byLayer[l].push(f);
  }
  const activeAlerts = byLayer.alert.filter((f) => isActiveAlert(f, now)).sort((a, b) => alertSent(b) - alertSent(a));
  shown.stations = byLayer.air.length;
  shown.segments = byLayer.traffic.length;
  shown.alerts = activeAlerts.length;
  shown.water = byLayer.water.length;
  shown.weather = byLayer.weather.length;

  if (mapState === 'ready') {
    if (dirty.units) {
      setSource('wards', wardFeatures.map((f) => ({ type: 'Feature', geometry: f.geometry, properties: { code: f.properties.code } })));
      setSource('province', provinceFeature ? [provinceFeature] : []);
      shown.wards = wardFeatures.length;
      dirty.units = false;
    }
    if (dirty.air) {
      setSource('air', byLayer.air.filter((f) => f.geometry).map((f) => {
        const v = values(f);
        const props = { fid: f.id };
        if (isNumber(v.pm25)) props.pm25 = v.pm25;
        const aqi = f.properties?.aqi;
        if (isNumber(aqi?.hourly) && /^#[0-9a-fA-F]{6}$/.test(aqi.color ?? '')) props.aqiColor = aqi.color;
        return { type: 'Feature', geometry: f.geometry, properties: props };
      }));
      dirty.air = false;
    }
    if (dirty.water) {
      setSource('water', byLayer.water.filter((f) => f.geometry).map((f) => ({
        type: 'Feature', geometry: f.geometry, properties: { fid: f.id, alarm: waterAlarm(f) },
      })));
      dirty.water = false;
    }
    if (dirty.weather) {
      setSource('weather', byLayer.weather.filter((f) => f.geometry).map((f) => ({
        type: 'Feature', geometry: f.geometry, properties: { fid: f.id },
      })));
      dirty.weather = false;
    }
    if (dirty.traffic) {
      setSource('traffic', byLayer.traffic.filter((f) => f.geometry).map((f) => {
        const v = values(f);
        const props = { fid: f.id };
        if (isNumber(v.averageVehicleSpeed)) props.speed = v.averageVehicleSpeed;
        return { type: 'Feature', geometry: f.geometry, properties: props };
      }));
      dirty.traffic = false;
    }
    if (dirty.alerts) {
      const feats = [];
      for (const f of activeAlerts) {
        for (const g of flatGeometries(f.geometry)) feats.push({ type: 'Feature', geometry: g, properties: { fid: f.id } });
      }
      setSource('alerts', feats);
      dirty.alerts = false;
    }
    refreshPopup();
  }
  if (dirty.list) {
    renderAlerts(activeAlerts);
    dirty.list = false;
  }
  if (dirty.reports) {
    renderReports(entities, mapState === 'ready' ? map : null, focusEntity);
    dirty.reports = false;
  }
  if (dirty.status) {
    renderStatus();
    dirty.status = false;
  }
}

// ---- status bar and alert list --------------------------------------------

function renderStatus() {
  const el = $('conn');
  el.className = `conn conn-${connection}`;
  $('conn-text').textContent = connection === 'offline' && retryInSeconds > 0
    ? t('conn.retry', { s: retryInSeconds })
    : t(`conn.${connection}`);
  $('n-stations').textContent = fmtNumber(shown.stations);
  $('n-segments').textContent = fmtNumber(shown.segments);
  $('n-alerts').textContent = fmtNumber(shown.alerts);
  $('last-update').textContent = lastUpdate ? fmtTime(lastUpdate) : t('never');
  const p = units.get(province);
  $('province').textContent = p ? unitName(province) : t('province', { code: province });
}

function renderAlerts(active) {
  const list = $('alerts');
  list.replaceChildren();
  for (const f of active.slice(0, MAX_ALERT_ITEMS)) {
    const a = f.properties.alert;
    const info = alertInfo(a);
    const sev = ['Extreme', 'Severe', 'Moderate', 'Minor'].includes(info.severity) ? info.severity : 'Unknown';
    const li = document.createElement('li');
    li.dataset.id = f.id;
    let codes = Array.isArray(a.units) && a.units.length ? a.units : [f.properties.unit].filter(Boolean);
    // The province itself is implied when the alert names its wards.
    if (codes.length > 1) codes = codes.filter((c) => c !== province);
    const unitText = codes.map((c) => (units.has(c) ? `${c} ${unitName(c)}` : c)).join(', ');
    li.innerHTML = `
      <div class="headline">${esc(info.headline || info.event || a.identifier)}</div>
      ${info.description && info.description !== info.headline ? `<div class="desc">${esc(info.description)}</div>` : ''}
      <div class="meta">
        <span class="sev sev-${sev}">${esc(t(`severity.${sev}`))}</span>
        <span>${esc(t('alerts.sent'))} ${esc(fmtTime(a.sent ?? f.properties.observation?.time, true))}</span>
      </div>
      <div class="units">${esc(t('alerts.units'))}: ${esc(unitText || '—')}</div>`;
    li.addEventListener('click', () => focusEntity(f.id));
    list.append(li);
  }
  // No scrollbars: hide what does not fit and count it.
  const bottom = list.getBoundingClientRect().bottom;
  let hiddenCount = Math.max(0, active.length - MAX_ALERT_ITEMS);
  for (const li of list.children) {
    if (li.getBoundingClientRect().bottom > bottom + 1) {
      li.hidden = true;
      hiddenCount++;
    }
  }
  shown.alertItems = list.querySelectorAll('li:not([hidden])').length;
  $('alerts-empty').hidden = active.length > 0;
  $('alerts-more').hidden = hiddenCount === 0;
  $('alerts-more').textContent = t('alerts.more', { n: hiddenCount });
}

function focusEntity(id) {
  const f = entities.get(id);
  if (!f || mapState !== 'ready') return;
  const bb = bboxOf([f.geometry]);
  if (!bb) return;
  map.fitBounds([[bb[0], bb[1]], [bb[2], bb[3]]], { padding: 120, maxZoom: 14, duration: 600 });
}

// ---- popups ----------------------------------------------------------------

const CLICK_LAYERS = ['air-circles', 'water-circles', 'weather-circles', 'traffic-points', 'traffic-lines', 'alert-points', 'alert-fill', 'wards-fill'];

function onMapClick(e) {
  const pad = 6;
  const box = [[e.point.x - pad, e.point.y - pad], [e.point.x + pad, e.point.y + pad]];
  const hits = map.queryRenderedFeatures(box, { layers: CLICK_LAYERS.filter((l) => map.getLayer(l)) });
  hits.sort((a, b) => CLICK_LAYERS.indexOf(a.layer.id) - CLICK_LAYERS.indexOf(b.layer.id));
  const hit = hits[0];
  if (!hit) return;
  const key = hit.layer.id === 'wards-fill' ? hit.properties.code : hit.properties.fid;
  const kind = hit.layer.id === 'wards-fill' ? 'ward' : 'entity';
  popup?.popup.remove();
  const p = new maplibregl.Popup({ maxWidth: '420px' }).setLngLat(e.lngLat).setHTML(popupHTML(kind, key)).addTo(map);
  popup = { popup: p, kind, key };
  p.on('close', () => { if (popup?.popup === p) popup = null; });
}

function refreshPopup() {
  if (popup) popup.popup.setHTML(popupHTML(popup.kind, popup.key));
}

// Values in a fixed, meaningful order; anything else (e.g. flattened
// "other" entries) follows in the order it came.
const VALUE_ORDER = [
  'pm25', 'pm10', 'pm1', 'no2', 'o3', 'co', 'so2', 'nh3', 'no', 'nox', 'temperature', 'relativeHumidity',
  'windSpeed', 'windDirection', 'precipitation', 'atmosphericPressure',
  'waterLevel', 'alarmLevel1', 'alarmLevel2', 'alarmLevel3', 'flow', 'pH', 'conductivity', 'turbidity', 'O2',
  'averageVehicleSpeed', 'intensity', 'occupancy', 'congested',
  'averageVehicleLength', 'averageHeadwayTime', 'laneId', 'laneDirection',
];
// FIWARE gives these as fractions 0..1; the screen shows percent.
const FRACTIONS = new Set(['occupancy', 'relativeHumidity']);

function valueRows(v) {
  const keys = Object.keys(v).sort((a, b) => {
    const ia = VALUE_ORDER.indexOf(a);
    const ib = VALUE_ORDER.indexOf(b);
    return (ia < 0 ? VALUE_ORDER.length : ia) - (ib < 0 ? VALUE_ORDER.length : ib);
  });
  const rows = [];
  for (const k of keys) {
    const val = v[k];
    if (val === null || val === undefined || typeof val === 'object') continue;
    let shownVal;
    if (typeof val === 'boolean') shownVal = t(val ? 'yes' : 'no');
    else if (isNumber(val)) shownVal = fmtNumber(FRACTIONS.has(k) && val <= 1 ? val * 100 : val);
    else if (k === 'laneDirection') shownVal = t(`lane.${val}`) === `lane.${val}` ? String(val) : t(`lane.${val}`);
    else shownVal = String(val);
    const unit = k === 'intensity' ? t('unit.intensity') : valueUnits[k] ?? '';
    const label = t(`value.${k}`);
    rows.push(`<tr><td>${esc(label === `value.${k}` ? k : label)}</td><td class="v">${esc(shownVal)}${unit ? ` ${esc(unit)}` : ''}</td></tr>`);
  }
  return rows.join('');
}

function popupHTML(kind, key) {
  if (kind === 'ward') {
    return `<div class="popup"><h4>${esc(unitName(key))}</h4><div class="kind">${esc(t('popup.ward'))} · ${esc(t('popup.code'))} ${esc(key)}</div></div>`;
  }
  const f = entities.get(key);
  if (!f) return `<div class="popup"><div class="kind">${esc(key)}</div></div>`;
  const p = f.properties ?? {};
  const unitLine = p.unit ? `<div class="kind">${esc(t('popup.unit'))}: ${esc(p.unit)} ${esc(unitName(p.unit))}</div>` : '';
  if (p.layer === 'alert') {
    const a = p.alert ?? {};
    const info = alertInfo(a);
    const sev = info.severity || 'Unknown';
    return `<div class="popup"><h4>${esc(info.headline || info.event || a.identifier)}</h4>
      <div class="kind">${esc(t('popup.alert'))} · ${esc(t(`severity.${sev}`))}</div>
      ${info.description ? `<div>${esc(info.description)}</div>` : ''}
      <div class="time">${esc(t('alerts.sent'))}: ${esc(fmtTime(a.sent, true))}${info.expires ? ` · ${esc(t('alerts.expires'))}: ${esc(fmtTime(info.expires, true))}` : ''}</div></div>`;
  }
  const kindLabel = { air: t('popup.station'), traffic: t('popup.segment'), water: t('popup.water'), weather: t('popup.weather') }[p.layer] ?? p.layer;
  const time = p.observation?.time ?? p.updatedAt;
  return `<div class="popup"><h4>${esc(p.name || p.entityId || f.id)}</h4>
    <div class="kind">${esc(kindLabel)} · ${esc(p.entityId ?? '')}</div>${unitLine}${stationLine(p)}
    <table>${valueRows(values(f))}</table>
    <div class="time">${esc(t('popup.time'))}: ${esc(time ? fmtTime(time, true) : '—')}</div></div>`;
}

// waterAlarm is the alarm level (0..3) a water station reached.
function waterAlarm(f) {
  const a = f.properties?.waterAlarm;
  return Number.isInteger(a) && a >= 0 && a <= 3 ? a : 0;
}

// stationLine is the VN_AQI of an air station (or why there is none), or the
// alarm level of a water station, for its popup.
function stationLine(p) {
  if (p.layer === 'air' && p.aqi) {
    const a = p.aqi;
    if (isNumber(a.hourly)) {
      const band = lang() === 'en' ? a.bandEn : a.bandVi;
      const daily = isNumber(a.daily) ? ` · ${esc(t('aqi.daily'))} ${esc(fmtNumber(a.daily))}` : '';
      const dom = a.dominant ? ` · ${esc(t('aqi.dominant'))} ${esc(t(`value.${a.dominant}`))}` : '';
      return `<div class="aqi"><i class="sw circle" style="background:${esc(a.color)}"></i>VN_AQI <b>${esc(fmtNumber(a.hourly))}</b> — ${esc(band ?? '')}${dom}${daily}</div>`;
    }
    return `<div class="aqi none">VN_AQI: ${esc(t('aqi.none'))}${a.reason ? ` <span class="reason">(${esc(a.reason)})</span>` : ''}</div>`;
  }
  if (p.layer === 'water') {
    const alarm = Number.isInteger(p.waterAlarm) ? p.waterAlarm : 0;
    return `<div class="aqi"><i class="sw circle" style="background:${WATER_ALARM_COLORS[alarm] ?? WATER_ALARM_COLORS[0]}"></i>${esc(t(`water.alarm${alarm}`))}</div>`;
  }
  return '';
}

// ---- data: units -------------------------------------------------------------

async function loadUnits() {
  let delay = BACKOFF_MIN_MS;
  for (;;) {
    try {
      const res = await fetch(`/v1/units?province=${encodeURIComponent(province)}`, { headers: { Accept: 'application/geo+json, application/json' } });
      if (res.status === 401) {
        await showLogin(t('login.again'));
        continue;
      }
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const fc = await res.json();
      if (!Array.isArray(fc?.features)) throw new Error('not a GeoJSON FeatureCollection');
      setUnits(fc.features);
      if (mapState !== 'missing' && mapState !== 'error') $('fatal').hidden = true;
      return;
    } catch (err) {
      console.warn('loading units', err);
      if (mapState !== 'missing' && mapState !== 'error') showFatal(t('fatal.units', { err: err.message }));
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, BACKOFF_MAX_MS);
    }
  }
}

function setUnits(features) {
  units.clear();
  wardFeatures = [];
  provinceFeature = null;
  for (const f of features) {
    const p = f.properties ?? {};
    const code = p.code ?? f.id;
    units.set(code, p);
    if (p.level === 'province' || code === province) provinceFeature = f;
    else if (f.geometry) wardFeatures.push(f);
  }
  unitsBBox = bboxOf((provinceFeature ? [provinceFeature] : wardFeatures).map((f) => f.geometry))
    ?? bboxOf(wardFeatures.map((f) => f.geometry));
  if (mapState !== 'ready') shown.wards = 0;
  dirty.units = true;
  dirty.list = true;
  dirty.status = true;
  fitToUnits();
  scheduleFlush();
}

// ---- data: live WebSocket ----------------------------------------------------

let backoff = BACKOFF_MIN_MS;

function setConnection(state, retryMs = 0) {
  connection = state;
  retryInSeconds = Math.ceil(retryMs / 1000);
  dirty.status = true;
  scheduleFlush();
}

function connect() {
  setConnection('connecting');
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  let ws;
  try {
    // ?bbox=minLon,minLat,maxLon,maxLat on the page limits the live view to that box (a wall screen showing part of a province).
    const bbox = params.get('bbox') ? `&bbox=${encodeURIComponent(params.get('bbox'))}` : '';
    ws = new WebSocket(`${proto}//${location.host}/v1/live?province=${encodeURIComponent(province)}${bbox}`);
  } catch (err) {
    console.warn('opening live socket', err);
    retry();
    return;
  }
  ws.onopen = () => setConnection('online');
  ws.onmessage = (ev) => {
    framesReceived++;
    let msg;
    try {
      msg = JSON.parse(ev.data);
    } catch (err) {
      console.warn('live frame is not JSON', err);
      return;
    }
    onFrame(msg);
  };
  ws.onclose = async (ev) => {
    console.info('live socket closed', ev.code, ev.reason);
    // 4003: the identity was revoked. A refused upgrade (401) only shows as
    // 1006 here, so after a failed open ask the gateway who is signed in.
    if (ev.code === 4003 || (connection !== 'online' && ev.code === 1006 && await signedOut())) {
      await showLogin(t('login.again'));
      backoff = BACKOFF_MIN_MS;
    }
    // 1008: the gateway refused what we asked; retrying at once will not help,
    // but a wall screen keeps trying, slowly (a deploy may fix it).
    if (ev.code === 1008) backoff = BACKOFF_MAX_MS;
    retry();
  };
  // onerror is always followed by onclose, which retries.
  ws.onerror = () => {};
}

// signedOut reports whether the gateway says nobody is signed in.
async function signedOut() {
  try {
    return (await fetch('/v1/session')).status === 401;
  } catch {
    return false;
  }
}

function retry() {
  // Jitter keeps a room of screens from reconnecting in lockstep.
  const delay = Math.min(backoff, BACKOFF_MAX_MS) * (1 + Math.random() * 0.2);
  setConnection('offline', delay);
  backoff = Math.min(backoff * 2, BACKOFF_MAX_MS);
  setTimeout(connect, delay);
}

function onFrame(msg) {
  if (msg?.type === 'snapshot') {
    // A new snapshot replaces everything: entities gone while we were away vanish.
    entities.clear();
    for (const f of Array.isArray(msg.entities) ? msg.entities : []) {
      if (f?.id) entities.set(f.id, f);
    }
    snapshotsReceived++;
    backoff = BACKOFF_MIN_MS;
    lastUpdate = new Date();
    if (connection !== 'online') setConnection('online');
    markDirty('air');
    markDirty('traffic');
    markDirty('alert');
    markDirty('report');
    markDirty('water');
    markDirty('weather');
  } else if (msg?.type === 'state') {
    const f = msg.entity;
    if (!f?.id) {
      console.warn('state frame without entity id', msg);
      return;
    }
    entities.set(f.id, f);
    lastUpdate = new Date();
    markDirty(layerOf(f));
  } else if (msg?.type === 'remove') {
    // The entity left this screen's bbox; an id we never had is ignored.
    const f = entities.get(msg.id);
    if (!f) return;
    entities.delete(msg.id);
    lastUpdate = new Date();
    markDirty(layerOf(f));
  }
}

// ---- debug hook (read-only, for tests and curious operators) ----------------

function screenPoint(id) {
  const f = entities.get(id);
  if (!f || mapState !== 'ready') return null;
  const c = anchorOf(f.geometry);
  if (!c) return null;
  const p = map.project(c);
  const r = map.getContainer().getBoundingClientRect();
  return { x: r.left + p.x, y: r.top + p.y };
}

globalThis.iochub = Object.freeze({
  stats: () => ({
    connection,
    map: mapState,
    lang: lang(),
    province,
    wards: shown.wards,
    stations: shown.stations,
    segments: shown.segments,
    alerts: shown.alerts,
    alertItems: shown.alertItems,
    water: shown.water,
    weather: shown.weather,
    reports: reportStats(),
    entities: entities.size,
    frames: framesReceived,
    snapshots: snapshotsReceived,
    redraws,
    pending: flushPending || Object.values(dirty).some(Boolean),
    lastUpdate: lastUpdate?.toISOString() ?? null,
  }),
  entity: (id) => (entities.has(id) ? JSON.parse(JSON.stringify(entities.get(id))) : null),
  entityIds: (layer) => [...entities.values()].filter((f) => !layer || layerOf(f) === layer).map((f) => f.id),
  screenPoint,
});

// ---- start -------------------------------------------------------------------

$('lang').addEventListener('click', () => {
  setLang(lang() === 'vi' ? 'en' : 'vi');
  if (mapState === 'missing') showFatal(t('fatal.noMap'));
  dirty.status = true;
  dirty.list = true;
  dirty.reports = true;
  // Redraw now, not at the next tick: the click should feel instant.
  flush();
});
setInterval(() => { dirty.alerts = dirty.list = true; scheduleFlush(); }, 30000); // expiries
setInterval(() => { dirty.reports = true; scheduleFlush(); }, 30000); // report deadlines
renderAQILegend();
apply(document);
initMap();
// Units and the live view need a signed-in browser (session.js).
await signIn();
loadUnits();
connect();
