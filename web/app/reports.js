// reports.js draws citizen field reports (phản ánh hiện trường, layer
// "report" of the live view): a point per report coloured by status, ringed
// in red once past its SLA deadline, and the list of open reports (overdue
// first, then by deadline). The reporter's contact never reaches the browser.
import { strings, t, lang } from './i18n.js';
import { $, esc } from './dom.js';
import { fmtTime as formatTime } from './format.js';
import { setSource } from './layers.js';

Object.assign(strings.vi, {
  'reports.title': 'Phản ánh hiện trường',
  'reports.none': 'Không có phản ánh đang xử lý',
  'reports.more': '+{n} phản ánh khác',
  'reports.deadline': 'Hạn xử lý',
  'reports.overdue': 'Quá hạn',
  'reports.assignee': 'Người xử lý',
  'reports.media': 'Ảnh/video',
  'reports.popup': 'Phản ánh hiện trường',
  'reports.received': 'Thời điểm phản ánh',
  'reportStatus.received': 'Mới tiếp nhận',
  'reportStatus.assigned': 'Đã giao xử lý',
  'reportStatus.in_progress': 'Đang xử lý',
  'reportStatus.resolved': 'Đã xử lý',
  'reportStatus.rejected': 'Từ chối',
  'reportCat.traffic': 'Giao thông',
  'reportCat.environment': 'Môi trường',
  'reportCat.urban-order': 'Trật tự đô thị',
  'reportCat.infrastructure': 'Hạ tầng',
  'reportCat.flooding': 'Ngập úng',
  'reportCat.other': 'Khác',
});
Object.assign(strings.en, {
  'reports.title': 'Citizen reports',
  'reports.none': 'No open reports',
  'reports.more': '+{n} more reports',
  'reports.deadline': 'Due',
  'reports.overdue': 'Overdue',
  'reports.assignee': 'Assignee',
  'reports.media': 'Photos/videos',
  'reports.popup': 'Citizen report',
  'reports.received': 'Reported at',
  'reportStatus.received': 'Received',
  'reportStatus.assigned': 'Assigned',
  'reportStatus.in_progress': 'In progress',
  'reportStatus.resolved': 'Resolved',
  'reportStatus.rejected': 'Rejected',
  'reportCat.traffic': 'Traffic',
  'reportCat.environment': 'Environment',
  'reportCat.urban-order': 'Urban order',
  'reportCat.infrastructure': 'Infrastructure',
  'reportCat.flooding': 'Flooding',
  'reportCat.other': 'Other',
});

const MAX_ITEMS = 50;
/** @type {Record<string, string>} */
export const STATUS_COLORS = {
  received: '#ffd21f', assigned: '#3fa7ff', in_progress: '#b36bff', resolved: '#2ee06b', rejected: '#8a94a6',
};
const OPEN = new Set(['received', 'assigned', 'in_progress']);

let shownItems = 0;
let openCount = 0;
/** @type {{popup: MapLibrePopup, id: string} | null} */
let popup = null;

/** @typedef {import('./store.js').Feature} Feature */

/** @param {string | undefined} iso */
function fmtTime(iso) {
  return formatTime(iso, lang(), true);
}

/** @param {string} prefix @param {unknown} v */
function label(prefix, v) {
  const s = t(`${prefix}.${v}`);
  return s === `${prefix}.${v}` ? String(v ?? '') : s;
}

// isOverdue: flagged by the hub, or past its deadline while open (the hub's
// sweep flags it within seconds; the screen does not wait).
/** @param {any} r @param {number} now */
export function isOverdue(r, now) {
  if (!r) return false;
  if (r.overdue) return true;
  const d = Date.parse(r.slaDeadline ?? '');
  return OPEN.has(r.status) && !Number.isNaN(d) && d < now;
}

// safeURL keeps only http(s) links (the ingest takes no other; this guards the href).
/** @param {string} u */
function safeURL(u) {
  try {
    const x = new URL(u);
    return x.protocol === 'http:' || x.protocol === 'https:' ? x.href : null;
  } catch {
    return null;
  }
}

/**
 * reportStyle is the report source and layer, for layers.js mapStyle.
 * Circles only: no tile buffer (layers.js POINT_SOURCES).
 */
export function reportStyle() {
  return {
    sources: { reports: { type: 'geojson', data: { type: 'FeatureCollection', features: [] }, buffer: 0 } },
    layers: [{
      id: 'report-points', type: 'circle', source: 'reports',
      layout: { visibility: 'none' }, // shown by setSource once there are reports
      paint: {
        'circle-color': /** @type {any} */ (['match', ['get', 'status'], ...Object.entries(STATUS_COLORS).flat(), '#ffffff']),
        'circle-radius': ['interpolate', ['linear'], ['zoom'], 9, 5, 14, 9],
        'circle-stroke-color': ['case', ['get', 'overdue'], '#ff3b3b', '#0b1220'],
        'circle-stroke-width': ['case', ['get', 'overdue'], 4, 2],
      },
    }],
  };
}

// watchReports opens a report's popup on a click (the map made with reportStyle).
/** @param {MapLibreMap} map */
export function watchReports(map) {
  map.on('mouseenter', 'report-points', () => { map.getCanvas().style.cursor = 'pointer'; });
  map.on('mouseleave', 'report-points', () => { map.getCanvas().style.cursor = ''; });
  map.on('click', 'report-points', (/** @type {any} */ e) => {
    const id = e.features?.[0]?.properties?.fid;
    if (!id) return;
    popup?.popup.remove();
    const p = new maplibregl.Popup({ maxWidth: '420px' }).setLngLat(e.lngLat).addTo(map);
    popup = { popup: p, id };
    p.on('close', () => { if (popup?.popup === p) popup = null; });
    refresh(map, lastEntities);
  });
}

/** @type {Map<string, Feature> | null} */
let lastEntities = null;

/** @param {MapLibreMap} map @param {Map<string, Feature> | null} entities */
function refresh(map, entities) {
  if (!popup || !entities) return;
  const p = popup;
  p.popup.setHTML(popupHTML(entities.get(p.id)));
}

/** @param {Feature | undefined} f */
function popupHTML(f) {
  if (!f) return '<div class="popup"></div>';
  const p = f.properties ?? {};
  const r = p.report ?? {};
  const overdue = isOverdue(r, Date.now());
  const media = (r.media ?? []).map(safeURL).filter(Boolean)
    .map((/** @type {string} */ u, /** @type {number} */ i) => `<a href="${esc(u)}" target="_blank" rel="noopener noreferrer">${i + 1}</a>`).join(' ');
  return `<div class="popup report-popup"><h4>${esc(label('reportCat', r.category))}</h4>
    <div class="kind">${esc(t('reports.popup'))} · ${esc(p.entityId ?? '')}</div>
    <div class="report-status"><i class="sw circle" style="background:${STATUS_COLORS[r.status] ?? '#fff'}"></i>${esc(label('reportStatus', r.status))}${overdue ? ` <b class="overdue">${esc(t('reports.overdue'))}</b>` : ''}</div>
    ${r.text ? `<div class="report-text">${esc(r.text)}</div>` : ''}
    ${r.assignee ? `<div>${esc(t('reports.assignee'))}: ${esc(r.assignee)}</div>` : ''}
    ${media ? `<div>${esc(t('reports.media'))}: ${media}</div>` : ''}
    <div class="time">${esc(t('reports.received'))}: ${esc(fmtTime(p.observation?.time))} · ${esc(t('reports.deadline'))}: ${esc(fmtTime(r.slaDeadline))}</div></div>`;
}

// renderReports redraws the report points (when map is given) and the list of
// open reports from the live entities.
/**
 * @param {Map<string, Feature>} entities
 * @param {MapLibreMap | null} map
 * @param {(id: string) => void} [focus]
 */
export function renderReports(entities, map, focus) {
  lastEntities = entities;
  const now = Date.now();
  const all = [];
  for (const f of entities.values()) if (f?.properties?.layer === 'report') all.push(f);
  if (map) {
    setSource(map, 'reports', all.filter((f) => f.geometry).map((f) => ({
      type: 'Feature', geometry: f.geometry,
      properties: { fid: f.id, status: f.properties.report?.status ?? '', overdue: isOverdue(f.properties.report, now) },
    })));
    refresh(map, entities);
  }
  const open = all.filter((f) => OPEN.has(f.properties.report?.status)).sort((a, b) => {
    const ra = a.properties.report;
    const rb = b.properties.report;
    const oa = isOverdue(ra, now) ? 0 : 1;
    const ob = isOverdue(rb, now) ? 0 : 1;
    return oa - ob || (Date.parse(ra.slaDeadline ?? '') || Infinity) - (Date.parse(rb.slaDeadline ?? '') || Infinity);
  });
  openCount = open.length;
  const list = $('reports');
  if (!list) return;
  list.replaceChildren();
  for (const f of open.slice(0, MAX_ITEMS)) {
    const r = f.properties.report;
    const overdue = isOverdue(r, now);
    const li = document.createElement('li');
    li.dataset.id = f.id;
    if (overdue) li.className = 'overdue';
    li.innerHTML = `
      <div class="headline"><i class="sw circle" style="background:${STATUS_COLORS[r.status] ?? '#fff'}"></i>${esc(label('reportCat', r.category))} · ${esc(label('reportStatus', r.status))}</div>
      ${r.text ? `<div class="desc">${esc(r.text)}</div>` : ''}
      <div class="meta">${overdue ? `<span class="badge">${esc(t('reports.overdue'))}</span>` : ''}
        <span>${esc(t('reports.deadline'))} ${esc(fmtTime(r.slaDeadline))}</span>
        ${r.assignee ? `<span>${esc(t('reports.assignee'))}: ${esc(r.assignee)}</span>` : ''}</div>`;
    if (focus) li.addEventListener('click', () => focus(f.id));
    list.append(li);
  }
  const bottom = list.getBoundingClientRect().bottom;
  let hidden = Math.max(0, open.length - MAX_ITEMS);
  for (const li of /** @type {HTMLCollectionOf<HTMLElement>} */ (list.children)) {
    if (li.getBoundingClientRect().bottom > bottom + 1) {
      li.hidden = true;
      hidden++;
    }
  }
  shownItems = list.querySelectorAll('li:not([hidden])').length;
  $('reports-empty').hidden = open.length > 0;
  $('reports-more').hidden = hidden === 0;
  $('reports-more').textContent = t('reports.more', { n: hidden });
  document.documentElement.dataset.reportsLang = lang();
}

// reportStats is what the debug hook shows of reports.
export function reportStats() {
  return { open: openCount, items: shownItems };
}
