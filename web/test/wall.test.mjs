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
import { mkdir } from 'node:fs/promises';
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
async function openWall(t, url = base, signedIn = true) {
  const context = await browser.newContext({ viewport: { width: 1920, height: 1080 }, locale: 'vi-VN', storageState: signedIn ? session : undefined });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (err) => errors.push(err));
  page.on('console', (msg) => {
    if (msg.type() === 'error') errors.push(new Error(`console: ${msg.text()}`));
  });
  t.after(() => context.close());
  await page.goto(url);
  return { page, errors };
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
  await page.screenshot({ path: path.join(resultsDir, 'wall-popup.png') });

  // English switch, remembered across a reload.
  await page.locator('#lang').click();
  assert.equal(await page.locator('#lang').textContent(), 'VI');
  assert.equal(await page.locator('#conn-text').textContent(), 'Online');
  assert.equal(await page.locator('#legend h2').textContent(), 'Legend');
  assert.equal(await page.locator('#aqi-scale li').nth(2).textContent(), '50–80 Poor');
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

mockOnly('the wall screen reconnects and takes the new snapshot', async (t) => {
  const { page, errors } = await openWall(t);
  await waitStats(page, () => window.iochub?.stats().snapshots === 1, 'the first snapshot');
  const res = await fetch(new URL('mock/drop?refuseMs=4000', base), { method: 'POST' });
  assert.equal(res.status, 204);
  // Refused for 4 s: the screen says so while it backs off and retries.
  await page.locator('#conn-text', { hasText: 'Mất kết nối' }).waitFor({ timeout: 5000 });
  await page.screenshot({ path: path.join(resultsDir, 'wall-offline.png') });
  await waitStats(page, () => window.iochub.stats().snapshots === 2 && window.iochub.stats().connection === 'online', 'the second snapshot', 15000);
  const s = await stats(page);
  assert.ok(s.stations >= 1 && s.segments >= 1, `got ${JSON.stringify(s)} after reconnecting`);
  // The browser itself logs each refused handshake; anything else is ours.
  const ours = errors.map(String).filter((e) => !/WebSocket connection to .* failed/.test(e));
  assert.deepEqual(ours, [], 'page errors');
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
  assert.match(await fatal.textContent(), /vendor\/maplibre-gl\.js/);
  assert.equal((await stats(page)).map, 'missing');
  // The live figures still arrive.
  await waitStats(page, () => window.iochub.stats().connection === 'online' && window.iochub.stats().stations > 0, 'live data without the map');
  await page.screenshot({ path: path.join(resultsDir, 'wall-no-vendor.png') });
});
