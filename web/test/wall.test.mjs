// wall.test.mjs drives the wall screen in Debian's Chromium (never a
// downloaded browser) and checks what an operator would see.
//
//   IOCHUB_URL=http://127.0.0.1:8080 node --test test/   # against a running iochub
//   node --test test/                                    # against test/mock-server.mjs
//
// CHROMIUM overrides the browser path (default /usr/bin/chromium). The
// screenshot goes to web/test-results/wall.png.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { startMock } from './mock-server.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const resultsDir = path.resolve(here, '..', 'test-results');
const LIVE_TIMEOUT = 30_000;

const ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  // WebGL on the CPU: with no GPU, Chromium needs SwiftShader allowed explicitly.
  '--use-angle=swiftshader', '--enable-unsafe-swiftshader',
];

// Tests that need the mock (to drop connections, send bursts, hide vendor/) are
// registered only when no real server is given: scripts/test-web.sh runs this
// file once against a real iochub and once against the mock, so nothing is skipped.
const mockOnly = process.env.IOCHUB_URL ? () => {} : test;
const realOnly = process.env.IOCHUB_URL ? test : () => {};

let browser;
let mock = null;
let mockNoVendor = null;
let base;
let session; // the signed-in browser state every page starts from (a real iochub)

before(async () => {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ARGS,
  });
  if (process.env.IOCHUB_URL) {
    // As iochub dev prints it, e.g. http://127.0.0.1:8080/?province=01&code=...:
    // the page trades the one-time code for a session cookie and drops it
    // from the address bar; every later page starts with that cookie.
    const u = new URL(process.env.IOCHUB_URL);
    if (u.searchParams.has('code')) {
      const context = await browser.newContext();
      const page = await context.newPage();
      await page.goto(u.href);
      await page.waitForFunction(() => !new URLSearchParams(location.search).has('code') && !document.getElementById('who').hidden,
        undefined, { timeout: LIVE_TIMEOUT, polling: 200 });
      session = await context.storageState();
      await context.close();
      u.searchParams.delete('code');
    }
    base = u.href;
  } else {
    // A frame a second is enough for the checks and keeps the CPU renderer light.
    mock = await startMock({ tickMs: 1000 });
    base = mock.url + '/';
  }
  await mkdir(resultsDir, { recursive: true });
});

after(async () => {
  await browser?.close();
  await mock?.close();
  await mockNoVendor?.close();
});

// openWall opens a fresh page (fresh localStorage) and fails the test on any
// uncaught page error.
// With profile, the page's main thread is sampled (Chromium DevTools
// protocol's CPU profiler) from before navigation: stop it with stopProfile.
async function openWall(t, url = base, signedIn = true, { profile = false } = {}) {
  const context = await browser.newContext({ viewport: { width: 1920, height: 1080 }, locale: 'vi-VN', storageState: signedIn ? session : undefined });
  const page = await context.newPage();
  let cdp = null;
  if (profile) {
    cdp = await context.newCDPSession(page);
    await cdp.send('Profiler.enable');
    await cdp.send('Profiler.setSamplingInterval', { interval: 500 });
    await cdp.send('Profiler.start');
  }
  const errors = [];
  page.on('pageerror', (err) => errors.push(err));
  page.on('console', (msg) => {
    if (msg.type() === 'error') errors.push(new Error(`console: ${msg.text()}`));
  });
  // Whatever the page's Content-Security-Policy refuses is a page error too.
  await page.exposeFunction('reportPolicyViolation', (v) => errors.push(new Error(`Content-Security-Policy refused ${v}`)));
  await page.addInitScript(() => document.addEventListener('securitypolicyviolation',
    (e) => window.reportPolicyViolation(`${e.effectiveDirective}: ${e.blockedURI || 'inline'} (${e.sourceFile}:${e.lineNumber})`)));
  t.after(() => context.close());
  await page.goto(url);
  return { page, errors, cdp };
}

// profileSummary reads a CPU profile of the page's main thread: milliseconds
// of samples by where they were spent (the app's modules, MapLibre, the
// browser's own work), and the heaviest functions.
function profileSummary(profile) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  for (let i = 0; i < profile.samples.length; i++) {
    const dt = (profile.timeDeltas[i + 1] ?? 0) / 1000;
    self.set(profile.samples[i], (self.get(profile.samples[i]) ?? 0) + dt);
  }
  const where = (n) => {
    const { url, functionName } = n.callFrame;
    if (!url) return functionName || '(anonymous)';
    if (url.includes('/vendor/maplibre-gl')) return 'maplibre-gl.js';
    if (url.includes('/vendor/')) return 'other vendor';
    return 'app';
  };
  const cat = {};
  const fn = {};
  for (const [id, ms] of self) {
    const n = byId.get(id);
    const c = where(n);
    cat[c] = (cat[c] ?? 0) + ms;
    const f = `${n.callFrame.functionName || '(anonymous)'} ${n.callFrame.url.split('/').pop()}:${n.callFrame.lineNumber + 1}`;
    fn[f] = (fn[f] ?? 0) + ms;
  }
  const round = (o) => Object.fromEntries(Object.entries(o).sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, Math.round(v)]));
  return {
    totalMs: Math.round((profile.endTime - profile.startTime) / 1000),
    byWhere: round(cat),
    topFunctions: Object.fromEntries(Object.entries(round(fn)).filter(([k]) => !k.startsWith('(idle)')).slice(0, 12)),
  };
}

const stats = (page) => page.evaluate(() => window.iochub.stats());

async function waitStats(page, predicate, what, timeout = LIVE_TIMEOUT, arg = undefined) {
  try {
    await page.waitForFunction(predicate, arg, { timeout, polling: 200 });
  } catch (err) {
    throw new Error(`waiting for ${what}: ${err.message}; stats were ${JSON.stringify(await stats(page))}`);
  }
}

realOnly('a browser without a session gets the login form, which refuses a wrong key', async (t) => {
  const { page } = await openWall(t, base, false);
  await page.locator('#login').waitFor({ state: 'visible', timeout: LIVE_TIMEOUT });
  assert.equal((await stats(page)).connection, 'connecting', 'no live view before signing in');
  await page.fill('#login-key', 'iocid_not-a-key');
  await page.click('#login button[type=submit]');
  await page.locator('#login-error').waitFor({ state: 'visible', timeout: LIVE_TIMEOUT });
  assert.equal(await page.locator('#login-error').textContent(), 'Khóa không hợp lệ hoặc đã bị thu hồi');
});

test('the wall screen shows the live province in Vietnamese, then in English', async (t) => {
  const { page, errors } = await openWall(t);

  assert.equal(await page.title(), 'iochub — Trung tâm giám sát, điều hành thông minh');
  await waitStats(page, () => window.iochub?.stats().connection === 'online', 'the live connection');
  assert.equal(await page.locator('#conn-text').textContent(), 'Trực tuyến');

  await waitStats(page, () => window.iochub.stats().map === 'ready', 'the map');
  assert.equal(await page.locator('#map canvas.maplibregl-canvas').count(), 1, 'map canvas');

  await waitStats(page, () => window.iochub.stats().wards > 0, 'the ward layer');
  assert.equal((await stats(page)).wards, 126, 'wards drawn');

  await waitStats(page, () => {
    const s = window.iochub.stats();
    return s.stations >= 1 && s.segments >= 1;
  }, 'at least one air station and one road segment');

  // The status bar counts what is drawn.
  const s = await stats(page);
  assert.equal(await page.locator('#n-stations').textContent(), String(s.stations));
  assert.equal(await page.locator('#n-segments').textContent(), String(s.segments));
  assert.notEqual(await page.locator('#last-update').textContent(), '—', 'time of the last update');

  // The alert list renders: one item per active alert that fits, or the
  // empty message when there is none.
  await waitStats(page, () => window.iochub.stats().alertItems === Math.min(window.iochub.stats().alerts, 50) || window.iochub.stats().alerts > 50, 'the alert list');
  const after = await stats(page);
  if (after.alerts === 0) {
    assert.equal(await page.locator('#alerts-empty').isVisible(), true, 'empty alert message');
  } else {
    assert.ok(after.alertItems >= 1, `got ${after.alertItems} alert items; want at least 1`);
    assert.equal(await page.locator('#alerts li:not([hidden])').count(), after.alertItems);
    assert.match(await page.locator('#alerts li .sev').first().textContent(), /\S/);
  }
  if (mock) {
    assert.ok(after.alerts >= 2, `got ${after.alerts} alerts from the mock; want at least 2`);
    assert.match(await page.locator('#alerts').textContent(), /Ngập úng cục bộ|Sự cố giao thông/);
  }

  // Legend in Vietnamese.
  assert.equal(await page.locator('#legend h3').first().textContent(), 'PM2.5 (µg/m³)');
  assert.equal(await page.locator('#legend h2').textContent(), 'Chú giải');
  // The VN_AQI items come from aqi_bands.js (generated from internal/aqi): six bands, then "no value".
  const bandItems = page.locator('#aqi-scale li');
  assert.equal(await bandItems.count(), 7, 'six VN_AQI bands and the no-value item');
  assert.equal(await bandItems.nth(0).textContent(), '0–25 Tốt');
  assert.equal(await bandItems.nth(5).textContent(), '> 250 Nguy hại');
  assert.equal(await bandItems.nth(3).locator('i.sw').evaluate((el) => getComputedStyle(el).backgroundColor), 'rgb(255, 0, 0)');

  // Let the first frames of the map settle, then keep the picture.
  await page.waitForTimeout(1000);
  await page.screenshot({ path: path.join(resultsDir, 'wall.png') });

  // Click a station: a popup shows its values and time.
  const [stationId] = await page.evaluate(() => window.iochub.entityIds('air'));
  const pt = await page.evaluate((id) => window.iochub.screenPoint(id), stationId);
  assert.ok(pt, `no screen point for ${stationId}`);
  await page.mouse.click(pt.x, pt.y);
  const popup = page.locator('.maplibregl-popup');
  await popup.waitFor({ timeout: 5000 });
  assert.match(await popup.textContent(), /PM2\.5/);
  assert.match(await popup.textContent(), /Thời điểm đo/);
  // Its last 24 hours from GET /v1/history, drawn by uPlot.
  await page.waitForFunction(() => ['drawn', 'empty', 'error', 'missing'].includes(document.querySelector('.maplibregl-popup .history-chart')?.dataset.state), undefined, { timeout: LIVE_TIMEOUT });
  const chartState = await popup.locator('.history-chart').getAttribute('data-state');
  assert.equal(chartState, 'drawn', `history chart: ${await popup.locator('.history-chart').textContent()}`);
  assert.equal(await popup.locator('.history-chart canvas').count(), 1, 'the chart canvas');
  await page.screenshot({ path: path.join(resultsDir, 'wall-popup.png') });

  // English switch, remembered across a reload.
  await page.locator('#lang').click();
  assert.equal(await page.locator('#lang').textContent(), 'VI');
  assert.equal(await page.locator('#conn-text').textContent(), 'Online');
  assert.equal(await page.locator('#legend h2').textContent(), 'Legend');
  assert.equal(await page.locator('#aqi-scale li').nth(2).textContent(), '50–80 Poor');
  assert.equal(await page.locator('#kpi-air h3').textContent(), 'Air quality', 'tiles in English');
  assert.equal(await page.locator('#layers button[data-layer=traffic]').textContent(), 'Traffic');
  assert.match(await popup.textContent(), /Observed at/);
  assert.equal(await page.evaluate(() => localStorage.getItem('iochub.lang')), 'en');
  await page.reload();
  await waitStats(page, () => window.iochub?.stats().connection === 'online', 'the live connection after reload');
  assert.equal((await stats(page)).lang, 'en');
  assert.equal(await page.locator('#alerts-panel h2').textContent(), 'Active alerts');
  await waitStats(page, () => window.iochub.stats().wards === 126 && window.iochub.stats().stations > 0, 'the map after reload');
  await page.waitForTimeout(1000);
  await page.screenshot({ path: path.join(resultsDir, 'wall-en.png') });
  await page.locator('#lang').click();
  assert.equal(await page.locator('#conn-text').textContent(), 'Trực tuyến');

  assert.deepEqual(errors.map(String), [], 'page errors');
});

test('the page runs under its Content-Security-Policy: text injected as a script does not run', async (t) => {
  const { page, errors } = await openWall(t);
  await waitStats(page, () => window.iochub?.stats().connection === 'online' && window.iochub.stats().map === 'ready', 'the live connection and the map');
  // What a feed's text would be if some panel ever put it into the page as
  // markup: an inline script and an inline handler. Neither may run.
  const ran = await page.evaluate(async () => {
    window.injected = [];
    const s = document.createElement('script');
    s.textContent = 'window.injected.push("script")';
    document.body.append(s);
    const box = document.createElement('div');
    box.innerHTML = '<img src="data:," onload="window.injected.push(\'handler\')">';
    document.body.append(box);
    await new Promise((resolve) => setTimeout(resolve, 200));
    return window.injected;
  });
  assert.deepEqual(ran, [], 'injected code ran');
  const refused = errors.map(String).filter((e) => /Content-Security-Policy refused script-src/.test(e));
  assert.ok(refused.length >= 1, `the browser reported no refused inline script; errors: ${errors.map(String)}`);
  // Nothing of the wall's own was refused: its scripts, worker, styles, socket and requests.
  const others = errors.map(String).filter((e) => !/script-src|Refused to execute inline/.test(e));
  assert.deepEqual(others, [], 'page errors');
  assert.ok((await stats(page)).wards > 0, 'the map drew the wards under the policy');
});

mockOnly('the wall screen reconnects and takes the new snapshot', async (t) => {
  const { page, errors } = await openWall(t);
  // The map painted first: on a CPU without a GPU its first frames keep the
  // page's main thread busy for seconds, which is not what this test is about.
  await waitStats(page, () => window.iochub?.stats().snapshots === 1 && window.iochub.stats().map === 'ready', 'the first snapshot and the map');
  const res = await fetch(new URL('mock/drop?refuseMs=8000', base), { method: 'POST' });
  assert.equal(res.status, 204);
  // Refused for 8 s: the screen says so while it backs off and retries.
  await page.locator('#conn-text', { hasText: 'Mất kết nối' }).waitFor({ timeout: 8000 });
  await page.screenshot({ path: path.join(resultsDir, 'wall-offline.png') });
  await waitStats(page, () => window.iochub.stats().snapshots === 2 && window.iochub.stats().connection === 'online', 'the second snapshot', 30000);
  const s = await stats(page);
  assert.ok(s.stations >= 1 && s.segments >= 1, `got ${JSON.stringify(s)} after reconnecting`);
  // The browser itself logs each refused handshake; anything else is ours.
  const ours = errors.map(String).filter((e) => !/WebSocket connection to .* failed/.test(e));
  assert.deepEqual(ours, [], 'page errors');
});

mockOnly('the national wall colours the 34 provinces by their own roll-ups, a stale province hub in grey', async (t) => {
  const { page, errors } = await openWall(t, new URL('?province=VN', base).href);
  await waitStats(page, () => window.iochub?.stats().map === 'ready' && window.iochub.stats().wards === 34 && window.iochub.stats().rollups === 34,
    'the 34 provinces and their roll-ups');
  const s = await stats(page);
  assert.equal(s.national, true);
  assert.equal(s.snapshots, 0, 'a view by unit has no snapshot');
  assert.equal(s.entities, 0, 'no live entity at the national level');
  const codes = await page.evaluate(() => window.iochub.wardCodes());
  assert.ok(codes.includes('01') && codes.includes('79') && !codes.includes('VN'), 'provinces, not VN itself, are the coloured units');
  // 01 is the first province of the mock: band 1; 79 is stale: grey, whatever its band.
  await waitStats(page, () => window.iochub.wardFill('01') === '#00E400' && window.iochub.wardFill('79') === '#5a5f6b', 'the provinces coloured');
  assert.equal(await page.locator('#unit-legend h3').textContent(), 'Tỉnh/thành: mức VN_AQI cao nhất trong giờ');
  assert.match(await page.locator('#unit-legend').textContent() ?? '', /Mất kết nối trung tâm tỉnh/);
  assert.equal(await page.locator('#replay').isVisible(), false, 'no replay at the national level');
  assert.deepEqual(errors.map(String), [], 'page errors');
});

mockOnly('a burst of frames is drawn in a few redraws and nothing is lost', async (t) => {
  const { page, errors } = await openWall(t);
  await waitStats(page, () => window.iochub?.stats().snapshots === 1 && window.iochub.stats().map === 'ready', 'the first snapshot and the map');
  mock.pause();
  t.after(() => mock.resume());
  await page.waitForTimeout(1000); // frames already on the wire arrive
  const n = 1000;
  const before = await stats(page);
  const res = await fetch(new URL(`mock/burst?n=${n}`, base), { method: 'POST' });
  assert.equal(res.status, 204);
  await waitStats(page, (want) => window.iochub.stats().frames >= want, `${n} frames`, LIVE_TIMEOUT, before.frames + n);
  // Let the last throttled redraw happen, then compare with the mock's truth.
  await waitStats(page, () => !window.iochub.stats().pending, 'the redraw after the burst', 5000);
  const s = await stats(page);
  const frames = s.frames - before.frames;
  const redrawn = s.redraws - before.redraws;
  assert.ok(redrawn * 10 <= frames, `got ${redrawn} redraws for ${frames} frames; want at most one per 10 frames`);
  for (const [id, want] of [...mock.world.entities].slice(0, 5)) {
    const got = await page.evaluate((i) => window.iochub.entity(i), id);
    assert.deepEqual(got?.properties?.observation, want.properties.observation, `entity ${id}`);
  }
  const alerts = [...mock.world.entities.keys()].filter((k) => k.startsWith('alert/')).length;
  assert.equal(s.alerts, alerts, 'active alerts after the burst');
  if (s.alertItems < s.alerts) {
    assert.equal(await page.locator('#alerts-more').isVisible(), true, 'the count of alerts that do not fit');
  }
  await page.screenshot({ path: path.join(resultsDir, 'wall-burst.png') });
  assert.deepEqual(errors.map(String), [], 'page errors');
});

mockOnly('without the vendored map library the page says what is missing', async (t) => {
  mockNoVendor = await startMock({ vendor: false });
  const { page } = await openWall(t, mockNoVendor.url + '/');
  const fatal = page.locator('#fatal');
  await fatal.waitFor({ state: 'visible', timeout: 10_000 });
  assert.match(await fatal.textContent(), /vendor\/maplibre-gl-csp\.js/);
  assert.equal((await stats(page)).map, 'missing');
  // The live figures still arrive.
  await waitStats(page, () => window.iochub.stats().connection === 'online' && window.iochub.stats().stations > 0, 'live data without the map');
  await page.screenshot({ path: path.join(resultsDir, 'wall-no-vendor.png') });
});

// ---- tiles, ward colours, posted events, kiosk, speed -------------------------------

// wardFillsMatch is true when every ward's fill on the map is the colour its
// roll-up of layer gives (kpi.js's unitColor), null where there is none.
async function wardFillsMatch(page, layer) {
  return page.evaluate(async (l) => {
    const k = await import('/kpi.js');
    const codes = window.iochub.wardCodes();
    const bad = codes.filter((c) => (window.iochub.wardFill(c) ?? null) !== k.unitColor(l, window.iochub.rollup(c, l) ?? undefined));
    return { codes: codes.length, bad: bad.length, first: bad[0] ?? null };
  }, layer);
}

async function waitWardFills(page, layer) {
  try {
    await page.waitForFunction(async (l) => {
      const k = await import('/kpi.js');
      return window.iochub.stats().layer === l && window.iochub.wardCodes().every((c) => (window.iochub.wardFill(c) ?? null) === k.unitColor(l, window.iochub.rollup(c, l) ?? undefined));
    }, layer, { timeout: 10_000, polling: 200 });
  } catch (err) {
    throw new Error(`ward colours of ${layer} do not follow the roll-ups: ${JSON.stringify(await wardFillsMatch(page, layer))}: ${err.message}`);
  }
}

const TOKEN = process.env.IOCHUB_TOKEN ?? '';

async function post(kind, item) {
  const res = await fetch(new URL(`/v1/feeds/${kind}`, base), {
    method: 'POST', headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' }, body: JSON.stringify(item),
  });
  const body = await res.text();
  assert.equal(res.status, 202, `POST /v1/feeds/${kind}: ${body}`);
  assert.match(body, /accepted/, `POST /v1/feeds/${kind}: ${body}`);
}

test('the tiles show the province roll-ups and the wards are coloured by the chosen layer', async (t) => {
  const { page, errors } = await openWall(t);
  await waitStats(page, () => window.iochub?.stats().map === 'ready' && window.iochub.stats().wards === 126 && window.iochub.stats().rollups > 0, 'the map and the roll-ups');
  await page.locator('#kpi-air .aqi-badge, #kpi-traffic .num').first().waitFor({ timeout: LIVE_TIMEOUT });
  assert.equal(await page.locator('#kpi-air h3').textContent(), 'Chất lượng không khí');
  assert.equal(await page.locator('#kpi-alerts li').count() >= 4, true, 'alerts by severity');
  for (const layer of ['traffic', 'water', 'air']) {
    await page.locator(`#layers button[data-layer=${layer}]`).click();
    await waitWardFills(page, layer);
    assert.equal(await page.locator(`#layers button[data-layer=${layer}]`).getAttribute('aria-pressed'), 'true');
  }
  if (mock) {
    // A roll-up that turns a ward hazardous turns its fill the band's colour, and names it on the map.
    const code = await page.evaluate(() => window.iochub.wardCodes()[41]);
    const start = Math.floor(Date.now() / 3600e3) * 3600e3;
    const r = { ...mock.templates.air, unit: code, province: '01', window: '1h', windowStart: new Date(start).toISOString(), windowEnd: new Date(start + 3600e3).toISOString(), worstBand: 6, aqiMax: 420 };
    const res = await fetch(new URL('mock/rollup', base), { method: 'POST', body: JSON.stringify(r) });
    assert.equal(res.status, 204);
    await waitStats(page, (c) => window.iochub.wardFill(c) === '#7E0023', 'the hazardous colour', 5000, code);
    const name = await page.evaluate((c) => window.iochub.stats() && document.querySelector('#kpi-worst li')?.dataset.unit === c, code);
    assert.ok(name, 'the hazardous ward first among the wards to watch');
    assert.ok((await stats(page)).labels >= 1, 'ward names on the map');
  }
  assert.deepEqual(errors.map(String), [], 'page errors');
});

test('the tiles chart the last hours of the province from one history request each, then follow its 1m roll-ups', async (t) => {
  const { page, errors } = await openWall(t);
  await waitStats(page, () => window.iochub?.stats().map === 'ready' && window.iochub.stats().rollups > 0, 'the map and the roll-ups');
  // A fresh iochub dev has stored minutes of history only: the charts fill as its 1m roll-ups arrive.
  const layers = mock ? ['air', 'traffic', 'water'] : ['traffic'];
  for (const l of layers) {
    await waitStats(page, (x) => {
      const tr = window.iochub.trend(x);
      return tr.state === 'drawn' && tr.points >= 1 && document.querySelector(`#kpi-${x} .trend canvas`) !== null;
    }, `the ${l} trend drawn`, mock ? LIVE_TIMEOUT : 120_000, l);
  }
  // A trend may be drawn from the live 1m roll-ups before its history
  // request (the requests wait for the first useful frame): wait for them.
  await waitStats(page, () => window.iochub.trend('traffic').requests >= 3, 'the trends\' history requests', mock ? LIVE_TIMEOUT : 30_000);
  const tr = await page.evaluate(() => window.iochub.trend('traffic'));
  assert.equal(tr.requests, 3, 'one history request per tile, none per unit');
  assert.ok(tr.xs.length <= 73, `${tr.xs.length} points; at most 73`);
  assert.ok((tr.xs.at(-1) - tr.xs[0]) <= 6 * 3600, 'six hours at most');
  assert.equal(await page.locator('#kpis .trend canvas').count(), 3, 'one chart per trended tile, drawn once');
  const box = await page.locator('#kpi-traffic .trend').boundingBox();
  assert.ok(box && box.width > 100 && box.height >= 30, `trend chart box ${JSON.stringify(box)}`);
  if (mock) {
    assert.ok((await page.evaluate(() => window.iochub.trend('air'))).points >= 60, 'the mock\'s six hours of 5-minute buckets');
    // A live 1m roll-up of the province updates the newest bucket of its trend, in place.
    const minute = Math.floor(Date.now() / 60e3) * 60e3;
    const before = await page.evaluate(() => window.iochub.trend('air'));
    const r = { ...mock.templates.air, unit: '01', province: '01', window: '1m', windowStart: new Date(minute).toISOString(), windowEnd: new Date(minute + 60e3).toISOString(), worstBand: 6, aqiMax: 420 };
    assert.equal((await fetch(new URL('mock/rollup', base), { method: 'POST', body: JSON.stringify(r) })).status, 204);
    await waitStats(page, (n) => window.iochub.trend('air').last === 420 && window.iochub.trend('air').draws > n, 'the live roll-up drawn in the air trend', 5000, before.draws);
    const after = await page.evaluate(() => window.iochub.trend('air'));
    assert.equal(after.requests, before.requests, 'no new request');
    assert.equal(after.xs.at(-1), Math.floor(minute / 300e3) * 300, 'the bucket of that minute');
    assert.ok(after.xs.length <= 73);
    assert.equal(await page.locator('#kpis .trend canvas').count(), 3, 'charts moved, not re-created');
  }
  if (!mock) {
    // The live view's 1m roll-ups of the province keep the trend current.
    await waitStats(page, () => window.iochub.trend('traffic').liveUpdates > 0, 'a live 1m roll-up in the traffic trend', 120_000);
    assert.equal((await page.evaluate(() => window.iochub.trend('traffic'))).requests, 3, 'no new request');
  }
  await page.locator('#kpis').screenshot({ path: path.join(resultsDir, 'wall-trend.png') }); // the tiles are redrawn in place: #kpis stays
  assert.deepEqual(errors.map(String), [], 'page errors');
});

realOnly('a posted alert and a posted congestion show on the wall', async (t) => {
  assert.ok(TOKEN, 'IOCHUB_TOKEN (the dev token) is needed to post');
  const { page, errors } = await openWall(t);
  await waitStats(page, () => window.iochub?.stats().snapshots >= 1 && window.iochub.stats().map === 'ready', 'the first snapshot');
  const now = new Date();
  const marker = `web-test ${now.getTime()}: mưa rất to`;
  const t0 = Date.now();
  await post('alert', {
    id: `web-test-alert-${now.getTime()}`, type: 'Alert', category: 'weather', subCategory: 'heavyRain', severity: 'critical',
    location: { type: 'Point', coordinates: [105.8522, 21.0288] }, dateIssued: now.toISOString(), validFrom: now.toISOString(),
    validTo: new Date(now.getTime() + 3600e3).toISOString(), description: marker, alertSource: 'web-test',
  });
  await page.locator('#alerts li', { hasText: marker }).waitFor({ timeout: LIVE_TIMEOUT });
  const ms = Date.now() - t0;
  t.diagnostic(`posted alert on screen after ${ms} ms`);
  await writeFile(path.join(resultsDir, 'posted-alert-latency.json'), JSON.stringify({ ms }));
  const item = page.locator('#alerts li', { hasText: marker });
  assert.match(await item.locator('.headline').textContent(), /^Mưa lớn/, 'the event code translated');
  assert.doesNotMatch(await page.locator('#alerts').textContent(), /heavyRain|trafficJam|airPollution/, 'no raw codes');
  assert.equal(await item.locator('.sev').textContent(), 'Cực kỳ nghiêm trọng');

  // A source's very long headline is clamped and does not empty the panel (it hid every alert).
  const long = `web-test-long-${now.getTime()}`;
  await post('alert', {
    id: long, type: 'Alert', category: 'weather', subCategory: `${long} ${'Lũ rất lớn '.repeat(300)}`, severity: 'critical',
    location: { type: 'Point', coordinates: [105.8522, 21.0288] }, dateIssued: new Date().toISOString(), validFrom: new Date().toISOString(),
    validTo: new Date(Date.now() + 3600e3).toISOString(), description: 'web-test long headline', alertSource: 'web-test',
  });
  const longItem = page.locator('#alerts li', { hasText: long });
  await longItem.waitFor({ timeout: LIVE_TIMEOUT });
  assert.ok(await page.locator('#alerts li:not([hidden])').count() >= 1, 'alerts shown beside a long headline');
  const box = await longItem.locator('.headline').boundingBox();
  assert.ok(box && box.height < 80, `the long headline is ${box?.height} px high; want three lines at most`);

  // A congested segment: its ward's traffic roll-up, and so its colour, follows.
  await page.locator('#layers button[data-layer=traffic]').click();
  const seg = `web-test-seg-${now.getTime()}`;
  await post('traffic', {
    id: seg, type: 'TrafficFlowObserved', dateObserved: new Date().toISOString(), refRoadSegment: seg,
    location: { type: 'LineString', coordinates: [[105.8515, 21.0285], [105.8530, 21.0292]] },
    intensity: 900, averageVehicleSpeed: 4, congested: true,
  });
  await waitStats(page, (id) => window.iochub.entity(id) !== null, 'the posted segment', LIVE_TIMEOUT, `traffic/${seg}`);
  const unit = (await page.evaluate((id) => window.iochub.entity(id), `traffic/${seg}`)).properties.unit;
  await waitStats(page, (u) => (window.iochub.rollup(u, 'traffic')?.segmentsReporting ?? 0) >= 1, `the traffic roll-up of ${unit}`, LIVE_TIMEOUT, unit);
  await waitWardFills(page, 'traffic');
  assert.notEqual(await page.evaluate((u) => window.iochub.wardFill(u), unit), null, `ward ${unit} coloured`);
  assert.deepEqual(errors.map(String), [], 'page errors');
});

realOnly('acknowledging an alert on one wall shows it on another', async (t) => {
  assert.ok(TOKEN, 'IOCHUB_TOKEN (the dev token) is needed to post');
  const one = await openWall(t);
  const two = await openWall(t);
  for (const { page } of [one, two]) {
    await waitStats(page, () => window.iochub?.stats().snapshots >= 1 && window.iochub.stats().connection === 'online', 'the first snapshot');
  }
  const now = new Date();
  const marker = `web-test ack ${now.getTime()}: lũ quét`;
  await post('alert', {
    id: `web-test-ack-${now.getTime()}`, type: 'Alert', category: 'weather', subCategory: 'flood', severity: 'critical',
    location: { type: 'Point', coordinates: [105.8522, 21.0288] }, dateIssued: now.toISOString(), validFrom: now.toISOString(),
    validTo: new Date(now.getTime() + 3600e3).toISOString(), description: marker, alertSource: 'web-test',
  });
  const item = (page) => page.locator('#alerts li', { hasText: marker });
  for (const { page } of [one, two]) await item(page).waitFor({ timeout: LIVE_TIMEOUT });
  // The dev token is an admin: both walls offer the button, neither shows an acknowledgement yet.
  assert.equal(await item(two.page).locator('button.ack').textContent(), 'Xác nhận');
  assert.equal(await item(two.page).locator('.ack-state').count(), 0);
  const t0 = Date.now();
  await item(one.page).locator('button.ack').click();
  await item(two.page).locator('.ack-state').waitFor({ timeout: LIVE_TIMEOUT });
  const ms = Date.now() - t0;
  t.diagnostic(`acknowledgement on the second wall after ${ms} ms`);
  await writeFile(path.join(resultsDir, 'ack-latency.json'), JSON.stringify({ ms }));
  for (const { page } of [one, two]) {
    await item(page).locator('.ack-state').waitFor({ timeout: LIVE_TIMEOUT });
    assert.match(await item(page).locator('.ack-state').textContent(), /^✓ Đã xác nhận: \S.*, .*\d{2}:\d{2}/, 'who and when');
    assert.equal(await item(page).locator('button.ack').count(), 0, 'no button once acknowledged');
  }
  assert.deepEqual([...one.errors, ...two.errors].map(String), [], 'page errors');
});

mockOnly('the wall loads boundaries simplified for its view, and the whole ones once zoomed in', async (t) => {
  const { page, errors } = await openWall(t);
  await waitStats(page, () => window.iochub?.stats().map === 'ready' && window.iochub.stats().wards === 126 && window.iochub.stats().fitZoom !== null, 'the map fitted to the wards');
  let s = await stats(page);
  assert.equal(s.unitsDetail, 'simplified');
  assert.equal(s.unitsRequests, 1, 'one /v1/units request (with simplify) for the wall');
  await waitWardFills(page, 'air');
  // Two double-clicks zoom in two levels: past what the simplified boundaries hold.
  // A double-click the browser took as two clicks (its two presses too far
  // apart on a loaded machine: a CI run lost one so) is given again, twice at
  // most; what is checked of the zoom is unchanged.
  const box = await page.locator('#map').boundingBox();
  for (let i = 0; i < 2; i++) {
    for (let attempt = 1; ; attempt++) {
      await page.mouse.dblclick(box.x + box.width / 2, box.y + box.height / 2);
      try {
        await waitStats(page, (z) => window.iochub.stats().zoom > z + 0.9, 'the zoom in', LIVE_TIMEOUT / 3, s.zoom);
        break;
      } catch (err) {
        if (attempt === 3 || (await stats(page)).zoom !== s.zoom) throw err;
      }
    }
    s = await stats(page);
  }
  await waitStats(page, () => window.iochub.stats().unitsDetail === 'full', 'the whole boundaries');
  s = await stats(page);
  assert.equal(s.unitsRequests, 2, 'the whole boundaries fetched once');
  assert.equal(s.wards, 126);
  assert.ok(s.zoom > s.fitZoom + 1.5, `zoom ${s.zoom}, fitted at ${s.fitZoom}: not refitted`);
  await waitWardFills(page, 'air');
  assert.deepEqual(errors.map(String), [], 'page errors');
});

mockOnly('a viewer sees acknowledgements but no acknowledge button', async (t) => {
  const { page, errors } = await openWall(t);
  await page.locator('#alerts li .ack-state').first().waitFor({ timeout: LIVE_TIMEOUT });
  assert.match(await page.locator('#alerts li .ack-state').first().textContent(), /^✓ Đã xác nhận: op-hn-01 as Nguyễn Văn A, /);
  assert.equal(await page.locator('#alerts button.ack').count(), 0, 'the mock session is a viewer');
  await page.locator('#lang').click();
  assert.match(await page.locator('#alerts li .ack-state').first().textContent(), /^✓ Acknowledged by op-hn-01 as Nguyễn Văn A, /);
  assert.deepEqual(errors.map(String), [], 'page errors');
});

test('kiosk mode: no controls, the layers rotate', async (t) => {
  const { page, errors } = await openWall(t, kioskURL());
  await waitStats(page, () => window.iochub?.stats().connection === 'online' && window.iochub.stats().map === 'ready', 'the kiosk online');
  const s = await stats(page);
  assert.equal(s.kiosk, true);
  assert.equal(await page.locator('#layers').isVisible(), false, 'no layer buttons');
  assert.equal(await page.locator('#lang').isVisible(), false, 'no language button');
  assert.equal(await page.locator('.maplibregl-ctrl-zoom-in').isVisible(), false, 'no zoom buttons');
  assert.equal(await page.locator('#conn').isVisible(), true, 'the connection state stays visible');
  assert.equal(await page.locator('#replay').isVisible(), false, 'no replay bar');
  const first = s.layer;
  await waitStats(page, (l) => window.iochub.stats().layer !== l, 'the next layer', 10_000, first);
  assert.equal(await page.locator('#layer-name').isVisible(), true, 'the layer shown is named');
  if (mock) {
    // A gateway restart: the kiosk says so, reconnects by itself and resumes.
    // The world stands still meanwhile, so the resumed page can be compared with it.
    mock.pause();
    t.after(() => mock.resume());
    const before = (await stats(page)).snapshots;
    assert.equal((await fetch(new URL('mock/drop?refuseMs=3000', base), { method: 'POST' })).status, 204);
    await page.locator('#conn-text', { hasText: 'Mất kết nối' }).waitFor({ timeout: 5000 });
    await waitStats(page, (n) => window.iochub.stats().snapshots > n && window.iochub.stats().connection === 'online', 'the kiosk back online', 15_000, before);
    const after = await stats(page);
    assert.equal(after.entities, mock.world.entities.size, 'every entity once after the resume');
  }
  await page.screenshot({ path: path.join(resultsDir, 'wall-kiosk.png') });
  // Stations sized for the screen: at 1920 a station is 8 px at zoom 9.
  const radius = () => page.evaluate(() => window.iochub.paint('air-circles', 'circle-radius')?.[4] ?? null);
  assert.equal(await radius(), 8, 'station radius at 1920×1080');
  // The same wall on a 4K screen: everything scales with the width, the map's symbols too.
  await page.setViewportSize({ width: 3840, height: 2160 });
  await page.waitForFunction(() => parseFloat(getComputedStyle(document.documentElement).fontSize) === 40, undefined, { timeout: 30_000, polling: 200 });
  await waitStats(page, () => window.iochub.paint('air-circles', 'circle-radius')?.[4] === 16, 'stations resized for 4K', 30_000);
  assert.equal(await page.evaluate(() => window.iochub.paint('traffic-lines', 'line-width')?.[4]), 8, 'segments resized for 4K');
  assert.equal(await page.locator('#kpis').evaluate((el) => el.scrollHeight <= el.clientHeight + 1), true, 'the tiles fit at 4K');
  await page.screenshot({ path: path.join(resultsDir, 'wall-4k.png') });
  // A desk monitor: the type's smallest size, the symbols with it.
  await page.setViewportSize({ width: 1280, height: 800 });
  await waitStats(page, () => window.iochub.paint('air-circles', 'circle-radius')?.[4] === 5.6, 'stations resized for a desk', 30_000);
  assert.equal(await page.evaluate(() => window.iochub.stats().entities > 0), true);
  assert.deepEqual(errors.map(String).filter((e) => !/WebSocket connection to .* failed/.test(e)), [], 'page errors');
});

realOnly('replay: the slider an hour back shows the past under a badge, Live goes back', async (t) => {
  const { page, errors } = await openWall(t);
  await waitStats(page, () => window.iochub?.stats().connection === 'online' && window.iochub.stats().snapshots > 0, 'the live view');
  assert.equal(await page.locator('#replay-badge').isVisible(), false, 'no badge while live');
  const chosen = Date.now() - 3600 * 1000;
  await page.locator('#replay-slider').evaluate((el) => {
    el.value = '-60';
    el.dispatchEvent(new Event('change', { bubbles: true }));
  });
  await waitStats(page, () => window.iochub.stats().replaying && window.iochub.stats().replayFetches > 0, 'a replayed state');
  await page.locator('#replay-badge', { hasText: 'ĐANG PHÁT LẠI' }).waitFor({ state: 'visible', timeout: 5000 });
  const s = await stats(page);
  assert.ok(Math.abs(Date.parse(s.replayAt) - chosen) < 5 * 60 * 1000, `replayed ${s.replayAt}, an hour back`);
  // The clock says the replayed time in Vietnam (UTC+7): HH:MM:SS DD/MM/YYYY.
  const text = await page.locator('#replay-time').textContent();
  const m = /^(\d\d):(\d\d):(\d\d) (\d\d)\/(\d\d)\/(\d{4})$/.exec(text ?? '');
  assert.ok(m, `replay clock ${text}`);
  const shown = Date.UTC(+m[6], +m[5] - 1, +m[4], +m[1] - 7, +m[2], +m[3]);
  assert.ok(Math.abs(shown - chosen) < 5 * 60 * 1000, `replay clock ${text} shows ${new Date(shown).toISOString()}; chose ${new Date(chosen).toISOString()}`);
  // Pause holds the replayed instant; the slider moves it while paused; play goes on from there.
  await page.click('#replay-pause');
  await waitStats(page, () => window.iochub.stats().replayPaused, 'the replay paused', 5000);
  assert.equal(await page.locator('#replay-pause').getAttribute('aria-pressed'), 'true');
  const held = (await stats(page)).replayClock;
  await page.waitForTimeout(2500); // wall time passes; a paused clock does not
  assert.equal((await stats(page)).replayClock, held, 'the paused clock holds');
  const fetches = (await stats(page)).replayFetches;
  const moved = Date.now() - 2 * 3600 * 1000;
  await page.locator('#replay-slider').evaluate((el) => {
    el.value = '-120';
    el.dispatchEvent(new Event('change', { bubbles: true }));
  });
  await waitStats(page, (n) => window.iochub.stats().replayFetches > n, 'the moved instant fetched', LIVE_TIMEOUT, fetches);
  const p = await stats(page);
  assert.equal(p.replayPaused, true, 'still paused after the slider moved');
  assert.ok(Math.abs(Date.parse(p.replayAt) - moved) < 5 * 60 * 1000, `replayed ${p.replayAt}, two hours back`);
  await page.click('#replay-pause');
  await waitStats(page, (h) => !window.iochub.stats().replayPaused && window.iochub.stats().replayClock > h, 'the replay playing again', 10_000, p.replayClock);
  const before = (await stats(page)).snapshots;
  await page.click('#replay-live');
  await page.locator('#replay-badge').waitFor({ state: 'hidden', timeout: 5000 });
  await waitStats(page, (n) => !window.iochub.stats().replaying && window.iochub.stats().connection === 'online' && window.iochub.stats().snapshots > n,
    'a fresh live snapshot', LIVE_TIMEOUT, before);
  assert.equal(await page.locator('#replay-time').textContent(), 'Trực tiếp');
  assert.deepEqual(errors.map(String).filter((e) => !/WebSocket connection to .* failed/.test(e)), [], 'page errors');
});

function kioskURL() {
  const u = new URL(base);
  u.searchParams.set('kiosk', '1');
  u.searchParams.set('layer', 'traffic');
  u.searchParams.set('rotate', '2');
  return u.href;
}

mockOnly('speed: 5 000 live entities, 5 000 changes a second, no update lost', { timeout: 240_000 }, async (t) => {
  const big = await startMock({ tickMs: 3_600_000, extraStations: 5000 });
  t.after(() => big.close());
  // The first frame is timed without a profiler: V8's sampling at 0.5 ms
  // makes it about 0.3 s later on two cores. WALL_PROFILE=1 takes the
  // profile of the first frame instead (test-results/wall-first-frame.cpuprofile).
  const profiling = process.env.WALL_PROFILE === '1';
  const { page, errors, cdp } = await openWall(t, big.url + '/', true, { profile: profiling });
  await waitStats(page, () => window.iochub?.stats().snapshots === 1 && window.iochub.stats().map === 'ready' && window.iochub.perf().firstUsefulMs !== null, 'the first useful frame', 60_000);
  let firstProfile = null;
  if (cdp) {
    const { profile } = await cdp.send('Profiler.stop');
    await writeFile(path.join(resultsDir, 'wall-first-frame.cpuprofile'), JSON.stringify(profile));
    firstProfile = profileSummary(profile);
    t.diagnostic(`first frame profile: ${JSON.stringify(firstProfile)}`);
  }
  const first = await page.evaluate(() => window.iochub.perf());
  const entities = (await stats(page)).entities;
  assert.ok(entities >= 5000, `got ${entities} entities; want at least 5000`);
  // Frame times as the browser paints them, during 5 seconds of 5 000 changes a second.
  await page.evaluate(() => {
    window.__frames = [];
    let last = performance.now();
    const loop = (now) => { window.__frames.push(now - last); last = now; if (!window.__stop) requestAnimationFrame(loop); };
    requestAnimationFrame(loop);
  });
  const before = await stats(page);
  const seconds = 3;
  const n = 5000;
  for (let i = 0; i < seconds; i++) {
    const t0 = Date.now();
    assert.equal((await fetch(`${big.url}/mock/burst?n=${n}`, { method: 'POST' })).status, 204);
    await new Promise((r) => setTimeout(r, Math.max(0, 1000 - (Date.now() - t0))));
  }
  // CPU-drawn WebGL on a shared machine paints slowly: the frames may take longer than the seconds they were sent in.
  await waitStats(page, (want) => window.iochub.stats().frames >= want, `${n * seconds} frames`, 120_000, before.frames + n * seconds);
  await waitStats(page, () => !window.iochub.stats().pending, 'the last redraw', 10_000);
  const frames = await page.evaluate(() => { window.__stop = true; return window.__frames; });
  const perf = await page.evaluate(() => window.iochub.perf());
  const after = await stats(page);
  // Nothing lost: the page holds the mock's latest state of every entity.
  const sample = [...big.world.entities.keys()].filter((k) => k.startsWith('air/bulk-')).filter((_, i) => i % 50 === 0);
  const got = await page.evaluate((ids) => ids.map((id) => window.iochub.entity(id)?.properties?.observation?.id ?? null), sample);
  assert.deepEqual(got, sample.map((id) => big.world.entities.get(id).properties.observation.id), 'latest state of sampled entities');
  const sorted = [...frames].sort((a, b) => a - b);
  const q = (p) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
  const result = {
    entities: after.entities,
    framesSent: n * seconds,
    framesReceived: after.frames - before.frames,
    redraws: after.redraws - before.redraws,
    firstUsefulMs: Math.round(first.firstUsefulMs),
    firstUsefulFlushMs: Math.round(first.firstUsefulFlushMs),
    firstFrameMarks: first.marks,
    firstFrameProfiled: profiling,
    firstFrameProfile: firstProfile,
    frameP50Ms: Math.round(q(0.5) * 10) / 10,
    frameP95Ms: Math.round(q(0.95) * 10) / 10,
    frameMaxMs: Math.round(sorted[sorted.length - 1] * 10) / 10,
    framesOver50Ms: frames.filter((x) => x > 50).length,
    paintedFrames: frames.length,
    flushP50Ms: Math.round(perf.flushP50 * 10) / 10,
    flushP95Ms: Math.round(perf.flushP95 * 10) / 10,
  };
  t.diagnostic(JSON.stringify(result));
  await writeFile(path.join(resultsDir, 'wall-perf.json'), JSON.stringify(result, null, 2));
  assert.equal(result.framesReceived, result.framesSent, 'every frame received');
  assert.ok(result.redraws * 100 <= result.framesSent, `got ${result.redraws} redraws for ${result.framesSent} frames; want at most one per 100`);
  assert.deepEqual(errors.map(String), [], 'page errors');
});
