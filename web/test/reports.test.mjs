// reports.test.mjs drives the wall screen's citizen-report panel and markers
// (app/reports.js) in Debian's Chromium against test/mock-server.mjs, with
// report entities made from the gateway's golden report Feature
// (services/gateway/testdata/live/state_report.golden.json).
//
//   node --test test/reports.test.mjs
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';
import { feature, startMock } from './mock-server.mjs';

const ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--use-angle=swiftshader', '--enable-unsafe-swiftshader',
];

let browser;
let mock;

// report is the gateway's golden report Feature with these values.
function report(id, category, status, deadline, lon, extra = {}) {
  return feature(mock.golden, 'report', id, { type: 'Point', coordinates: [lon, 20.95] }, {
    name: 'Ngập sâu trước số 12 phố Huế', province: '01', unit: '00070',
    updatedAt: new Date().toISOString(), observation: { id, time: new Date(Date.now() - 3600e3).toISOString() },
    report: { category, text: 'Ngập sâu trước số 12 phố Huế', media: ['https://img.example.vn/a.jpg', 'javascript:alert(1)'],
      status, assignee: undefined, slaDeadline: deadline, overdue: false, ...extra },
  });
}

before(async () => {
  // No ticks: the mock's ticker changes air and traffic entities only.
  mock = await startMock({ tickMs: 3_600_000 });
  const soon = new Date(Date.now() + 3 * 3600e3).toISOString();
  const past = new Date(Date.now() - 600e3).toISOString();
  for (const f of [
    report('dev/r-late', 'flooding', 'assigned', past, 105.60, { assignee: 'Đội 3' }),
    report('dev/r-open', 'traffic', 'received', soon, 105.75),
    report('dev/r-flagged', 'environment', 'in_progress', soon, 105.90, { overdue: true }),
    report('dev/r-done', 'other', 'resolved', past, 106.0),
  ]) mock.world.entities.set(f.id, f);
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true, args: ARGS });
});

after(async () => {
  await browser?.close();
  await mock?.close();
});

test('open reports are listed overdue first, in Vietnamese then English, and drawn on the map', async (t) => {
  const context = await browser.newContext({ viewport: { width: 1920, height: 1080 }, locale: 'vi-VN' });
  t.after(() => context.close());
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (err) => errors.push(err));
  await page.goto(mock.url + '/');
  await page.waitForFunction(() => window.iochub?.stats().reports.open === 3, null, { timeout: 30_000, polling: 200 });

  assert.equal(await page.locator('#reports-panel h2').textContent(), 'Phản ánh hiện trường');
  const items = page.locator('#reports li:not([hidden])');
  await page.screenshot({ path: new URL('../test-results/reports.png', import.meta.url).pathname }).catch(() => {});
  assert.equal(await items.count(), 3, 'resolved reports are not listed');
  // Overdue first (flagged by the hub, or past the deadline), then by deadline.
  const ids = await items.evaluateAll((els) => els.map((e) => e.dataset.id));
  assert.deepEqual(ids.slice(2), ['report/dev/r-open']);
  assert.deepEqual(new Set(ids.slice(0, 2)), new Set(['report/dev/r-late', 'report/dev/r-flagged']));
  const first = await page.locator('#reports li[data-id="report/dev/r-late"]').textContent();
  assert.match(first, /Ngập úng · Đã giao xử lý/);
  assert.match(first, /Quá hạn/);
  assert.match(first, /Người xử lý: Đội 3/);
  assert.equal(await page.locator('#reports-empty').isVisible(), false);

  await page.locator('#lang').click();
  await page.waitForFunction(() => document.querySelector('#reports-panel h2').textContent === 'Citizen reports');
  const en = await page.locator('#reports li[data-id="report/dev/r-late"]').textContent();
  assert.match(en, /Flooding · Assigned/);
  assert.match(en, /Overdue/);

  // A click on the marker opens its popup; only http(s) media links become links.
  await page.waitForFunction(() => window.iochub.stats().map === 'ready', null, { timeout: 30_000 });
  await page.waitForFunction(() => window.iochub.screenPoint('report/dev/r-open') !== null);
  const pt = await page.evaluate(() => window.iochub.screenPoint('report/dev/r-open'));
  await page.waitForTimeout(500);
  await page.mouse.click(pt.x, pt.y);
  const pop = page.locator('.report-popup');
  await pop.waitFor({ timeout: 10_000 });
  assert.match(await pop.textContent(), /Traffic/);
  assert.equal(await pop.locator('a').count(), 1, 'the javascript: link is dropped');
  assert.equal(await pop.locator('a').getAttribute('href'), 'https://img.example.vn/a.jpg');
  assert.deepEqual(errors, []);
});
