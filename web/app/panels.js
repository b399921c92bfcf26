// panels.js draws the HTML around the map: the status bar, the KPI tiles,
// the alert list, the legends. Each function redraws one panel from the
// state it is given; none keeps state of its own.
import { t, lang, label } from './i18n.js';
import { $, esc } from './dom.js';
import { fmtNumber, fmtTime, fmtTimeLeft } from './format.js';
import { AQI_BANDS } from './aqi_bands.js';
import { ackOf, alertInfo, alertTitle, expiresAt, severityOf, SEVERITIES, SEVERITY_COLORS } from './alerts.js';
import { CONGESTION_SCALE, HUB_STALE_COLOR, WATER_ALARM_COLORS } from './kpi.js';
import { TRENDS } from './trend.js';

/** @typedef {import('./store.js').Feature} Feature */
/** @typedef {import('./kpi.js').Kpis} Kpis */

/** The alert list never scrolls; what does not fit is counted. */
const MAX_ALERT_ITEMS = 20;

/** renderAQILegend puts one item per VN_AQI band, with the PM2.5 NowCast range it colours, before "no value". */
export function renderAQILegend() {
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
  $('aqi-scale').prepend(...items);
}

/**
 * renderUnitLegend says what the ward colours mean for layer (the
 * provinces' on the national wall, where a stale province hub has its own).
 * @param {string} layer
 * @param {boolean} [national]
 */
export function renderUnitLegend(layer, national = false) {
  /** @type {[string, string][]} */
  let rows = [];
  if (layer === 'air') rows = AQI_BANDS.map((b) => [b.color, t(`aqi.band${b.level}`)]);
  else if (layer === 'traffic') rows = CONGESTION_SCALE.map((s, i) => [s.color, t(`congestion.${i}`)]);
  else if (layer === 'water') rows = WATER_ALARM_COLORS.map((c, i) => [c, t(`water.alarm${i}`)]);
  if (national) rows.push([HUB_STALE_COLOR, t('unitLegend.hubStale')]);
  rows.push(['#1c2a4a', t('unitLegend.none')]);
  const title = national ? t(`unitLegend.national.${layer}`) : t(`unitLegend.${layer}`);
  $('unit-legend').innerHTML = `<h3>${esc(title)}</h3><ul>${rows.map(([c, n]) =>
    `<li><i class="sw area" style="background:${esc(c)}"></i>${esc(n)}</li>`).join('')}</ul>`;
  for (const b of document.querySelectorAll('#layers button')) {
    const el = /** @type {HTMLElement} */ (b);
    el.classList.toggle('on', el.dataset.layer === layer);
    el.setAttribute('aria-pressed', String(el.dataset.layer === layer));
  }
}

/**
 * @typedef {object} StatusView
 * @property {string} connection
 * @property {number} retryInSeconds
 * @property {Date | null} lastUpdate
 * @property {string} provinceName
 * @property {string} layer
 */

/** @param {StatusView} s */
export function renderStatus(s) {
  const el = $('conn');
  el.className = `conn conn-${s.connection}`;
  $('conn-text').textContent = s.connection === 'offline' && s.retryInSeconds > 0
    ? t('conn.retry', { s: s.retryInSeconds })
    : t(`conn.${s.connection}`);
  $('last-update').textContent = s.lastUpdate ? fmtTime(s.lastUpdate, lang()) : t('never');
  $('province').textContent = s.provinceName;
  $('layer-name').textContent = t(`layer.${s.layer}`);
}

/**
 * tile is the HTML of one KPI tile.
 * @param {string} id
 * @param {string} title
 * @param {string} body
 * @param {string} [accent] a colour for the tile's left edge
 */
function tile(id, title, body, accent = '') {
  return `<section class="tile" id="kpi-${id}"${accent ? ` style="border-left-color:${esc(accent)}"` : ''}><h3>${esc(title)}</h3>${body}</section>`;
}

/**
 * bar is a row of coloured counts (stations per band, per alarm level).
 * @param {number[]} counts
 * @param {string[]} colors
 * @param {string[]} names
 */
function bar(counts, colors, names) {
  return `<ol class="counts">${counts.map((n, i) =>
    `<li title="${esc(names[i])}" class="${n ? '' : 'zero'}"><i style="background:${esc(colors[i])}"></i><b>${esc(fmtNumber(n, lang(), 0))}</b></li>`).join('')}</ol>`;
}

const noData = () => `<p class="nodata">${esc(t('kpi.noData'))}</p>`;

/**
 * trendSlot is where the tile's trend chart goes (app.js moves its TrendChart
 * into it after each redraw; the chart itself is never re-created).
 * @param {string} layer
 */
function trendSlot(layer) {
  const c = TRENDS[layer];
  const name = t(`history.${c.value}`);
  const title = t('trend.title', { what: name.includes(c.unit) ? name : `${name} (${c.unit})` });
  return `<div class="trend-box" title="${esc(title)}"><span class="trend-cap">${esc(t('trend.span', { what: c.unit }))}</span><div class="trend-slot" data-trend="${esc(layer)}"></div></div>`;
}

/**
 * subRow is a tile's last line: the note on the left, the trend on the right.
 * @param {string} layer
 * @param {string} note HTML
 */
function subRow(layer, note) {
  return `<div class="sub-row">${note}${trendSlot(layer)}</div>`;
}

/**
 * renderKpis redraws the tiles.
 * @param {Kpis} k
 * @param {{code: string, name: string, color: string, value: string}[]} worst units to watch for the chosen layer
 */
export function renderKpis(k, worst) {
  const L = lang();
  const out = [];
  const a = k.air;
  out.push(tile('air', t('kpi.air'), (a ? `
    <div class="big"><span class="aqi-badge" style="background:${esc(a.color ?? '#8a94a6')};color:${(a.band ?? 0) >= 4 ? '#fff' : '#000'}">${esc(a.aqiMax === null ? '—' : fmtNumber(a.aqiMax, L, 0))}</span>
      <span class="big-label">${esc(t('kpi.worstAqi'))}<br><b>${esc(a.band ? t(`aqi.band${a.band}`) : t('aqi.none'))}</b></span></div>
    ${bar(a.byBand.slice(1), AQI_BANDS.map((b) => b.color), AQI_BANDS.map((b) => t(`aqi.band${b.level}`)))}
    ${subRow('air', `<p class="sub">${esc(t('kpi.reporting', { n: fmtNumber(a.reporting, L, 0), m: fmtNumber(a.known, L, 0) }))}</p>`)}` : noData() + subRow('air', '')), a?.color ?? ''));
  const tr = k.traffic;
  out.push(tile('traffic', t('kpi.traffic'), (tr ? `
    <div class="pair"><div><b class="num">${esc(fmtNumber(tr.congested, L, 0))}</b><span>${esc(t('kpi.congested'))}</span></div>
      <div><b class="num">${esc(tr.meanSpeed === null ? '—' : fmtNumber(tr.meanSpeed, L, 0))}</b><span>${esc(t('kpi.meanSpeed'))} (km/h)</span></div></div>
    ${subRow('traffic', `<p class="sub">${esc(t('kpi.segmentsReporting', { n: fmtNumber(tr.reporting, L, 0), m: fmtNumber(tr.known, L, 0) }))}</p>`)}` : noData() + subRow('traffic', '')),
  tr && tr.congested > 0 ? '#ff2d2d' : ''));
  const w = k.water;
  out.push(tile('water', t('kpi.water'), (w ? `
    <p class="lbl">${esc(t('kpi.alarm'))}</p>
    ${bar(w.byAlarm.slice(1), WATER_ALARM_COLORS.slice(1), [1, 2, 3].map((i) => t(`water.alarm${i}`)))}
    ${subRow('water', `<p class="sub">${esc(t('kpi.reporting', { n: fmtNumber(w.reporting, L, 0), m: fmtNumber(w.known, L, 0) }))}</p>`)}` : noData() + subRow('water', '')),
  w && w.byAlarm.slice(1).some((n) => n > 0) ? WATER_ALARM_COLORS[w.byAlarm[3] ? 3 : w.byAlarm[2] ? 2 : 1] : ''));
  const sevs = SEVERITIES.filter((s) => s !== 'Unknown' || k.alerts.Unknown > 0);
  out.push(tile('alerts', t('kpi.alerts'), `<ol class="sevs">${sevs.map((s) =>
    `<li class="${k.alerts[s] ? '' : 'zero'}"><i style="background:${SEVERITY_COLORS[s]}"></i><span>${esc(t(`severity.${s}`))}</span><b>${esc(fmtNumber(k.alerts[s], L, 0))}</b></li>`).join('')}</ol>`,
  k.alerts.Extreme ? SEVERITY_COLORS.Extreme : k.alerts.Severe ? SEVERITY_COLORS.Severe : ''));
  out.push(tile('reports', t('kpi.reports'), `
    <div class="pair"><div><b class="num">${esc(fmtNumber(k.reports.open, L, 0))}</b><span>${esc(t('kpi.open'))}</span></div>
      <div class="${k.reports.overdue ? 'bad' : ''}"><b class="num">${esc(fmtNumber(k.reports.overdue, L, 0))}</b><span>${esc(t('kpi.overdue'))}</span></div></div>`,
  k.reports.overdue ? '#ff3b3b' : ''));
  out.push(tile('stale', t('kpi.stale'), `
    <div class="pair"><div class="${k.stale.sources ? 'warn' : ''}"><b class="num">${esc(fmtNumber(k.stale.sources, L, 0))}</b></div></div>
    <p class="sub">${esc(t('kpi.staleEntities', { n: fmtNumber(k.stale.entities, L, 0) }))}</p>`, k.stale.sources || k.stale.entities ? '#ffb020' : ''));
  out.push(tile('worst', t('kpi.worstUnits'), worst.length ? `<ol class="worst">${worst.map((u) =>
    `<li data-unit="${esc(u.code)}"><i style="background:${esc(u.color)}"></i><span>${esc(u.name)}</span><b>${esc(u.value)}</b></li>`).join('')}</ol>`
    : `<p class="nodata">${esc(t('kpi.none'))}</p>`));
  $('kpis').innerHTML = `<p class="window">${esc(t('kpi.window'))}</p>${out.join('')}`;
  // The wards to watch take the height left: a row that does not fit is
  // hidden whole (read every position first, then hide: one layout).
  const worstTile = document.getElementById('kpi-worst');
  if (worstTile) {
    const bottom = worstTile.getBoundingClientRect().bottom - parseFloat(getComputedStyle(worstTile).paddingBottom || '0');
    const over = [...worstTile.querySelectorAll('li')].filter((li) => li.getBoundingClientRect().bottom > bottom + 1);
    for (const li of over) /** @type {HTMLElement} */ (li).hidden = true;
  }
}

/**
 * @typedef {object} AckView
 * @property {boolean} can the session may acknowledge (an operator)
 * @property {Set<string>} pending alert ids whose acknowledgement is on its way
 * @property {Set<string>} failed alert ids whose acknowledgement was refused or lost (the button offers it again)
 * @property {(f: Feature) => void} send acknowledges f
 */

/**
 * renderAlerts redraws the alert list: most severe first, then newest; what
 * does not fit is hidden and counted. It returns how many items show.
 * @param {Feature[]} active alerts in force, in order
 * @param {(code: string) => string} unitName
 * @param {string} province
 * @param {(id: string) => void} focus
 * @param {AckView} [ack] the acknowledge button, for operator sessions
 * @returns {number}
 */
export function renderAlerts(active, unitName, province, focus, ack = { can: false, pending: new Set(), failed: new Set(), send: () => {} }) {
  const L = lang();
  const now = Date.now();
  const list = $('alerts');
  list.replaceChildren();
  for (const f of active.slice(0, MAX_ALERT_ITEMS)) {
    const a = f.properties.alert;
    const info = alertInfo(a, L);
    const sev = severityOf(a);
    const li = document.createElement('li');
    li.dataset.id = f.id;
    li.style.borderLeftColor = SEVERITY_COLORS[sev];
    let codes = Array.isArray(a.units) && a.units.length ? a.units : [f.properties.unit].filter(Boolean);
    // The province itself is implied when the alert names its wards.
    if (codes.length > 1) codes = codes.filter((/** @type {string} */ c) => c !== province);
    const unitText = codes.map((/** @type {string} */ c) => unitName(c)).join(', ');
    const cats = (Array.isArray(info.category) ? info.category : []).map((/** @type {string} */ c) => label('capCat', c)).join(', ');
    const exp = expiresAt(a);
    const title = alertTitle(f, L, (c) => label('event', c), unitName, (c) => label('capCat', c));
    const desc = info.description && info.description !== title ? info.description : '';
    li.innerHTML = `
      <div class="headline">${esc(title)}</div>
      ${desc ? `<div class="desc">${esc(desc)}</div>` : ''}
      <div class="meta">
        <span class="sev sev-${sev}">${esc(t(`severity.${sev}`))}</span>
        ${cats ? `<span>${esc(cats)}</span>` : ''}
        <span>${esc(t('alerts.sent'))} ${esc(fmtTime(a.sent ?? f.properties.observation?.time, L, true))}</span>
        ${Number.isNaN(exp) ? '' : `<span class="left">${esc(fmtTimeLeft(exp - now, L))}</span>`}
      </div>
      <div class="units">${esc(t('alerts.units'))}: ${esc(unitText || '—')}</div>`;
    const acked = ackOf(a);
    if (acked) {
      li.classList.add('acked');
      const div = document.createElement('div');
      div.className = 'ack-state';
      div.textContent = `✓ ${t('alerts.acked', { by: acked.by, at: fmtTime(acked.at, L, true) })}`;
      li.append(div);
    } else if (ack.can) {
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'ack';
      b.textContent = t(ack.pending.has(a.id) ? 'alerts.acking' : 'alerts.ack');
      b.disabled = ack.pending.has(a.id);
      if (ack.failed.has(a.id)) b.title = t('alerts.ackFailed');
      b.addEventListener('click', (ev) => {
        ev.stopPropagation();
        ack.send(f);
      });
      li.append(b);
    }
    li.addEventListener('click', () => focus(f.id));
    list.append(li);
  }
  // One layout: read every position first, then hide (hiding before reading
  // the next would lay the list out again for each item).
  const bottom = list.getBoundingClientRect().bottom;
  const items = [.../** @type {HTMLCollectionOf<HTMLElement>} */ (list.children)];
  // The first (the most severe) always shows, however tall (its headline is clamped too).
  const over = items.filter((li, i) => i > 0 && li.getBoundingClientRect().bottom > bottom + 1);
  for (const li of over) li.hidden = true;
  const hiddenCount = Math.max(0, active.length - MAX_ALERT_ITEMS) + over.length;
  $('alerts-empty').hidden = active.length > 0;
  $('alerts-more').hidden = hiddenCount === 0;
  $('alerts-more').textContent = t('alerts.more', { n: hiddenCount });
  $('n-alerts').textContent = fmtNumber(active.length, L, 0);
  return list.querySelectorAll('li:not([hidden])').length;
}
