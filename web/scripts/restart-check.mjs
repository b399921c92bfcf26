// restart-check.mjs drives a kiosk wall screen through a restart of the
// gateway (scripts/test-web.sh stops and starts iochub dev on the same address
// and data dir while this waits): the screen must say it lost the link, then
// reconnect by itself and resume with a fresh snapshot, every entity once.
//
//   IOCHUB_TOKEN=<dev token> node web/scripts/restart-check.mjs URL READY_FILE
//
// It writes READY_FILE once the screen is online, then waits (at most 4
// minutes) and exits 0 when the screen resumed, 1 with the reason otherwise.
import { writeFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const [url, readyFile] = process.argv.slice(2);
if (!url || !readyFile) {
  console.error('usage: restart-check.mjs URL READY_FILE');
  process.exit(2);
}
const results = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'test-results');
await mkdir(results, { recursive: true });
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--use-angle=swiftshader', '--enable-unsafe-swiftshader'],
});
let code = 1;
try {
  const page = await (await browser.newContext({ viewport: { width: 1920, height: 1080 } })).newPage();
  const u = new URL(url);
  u.searchParams.delete('code');
  u.searchParams.set('kiosk', '1');
  u.searchParams.set('layer', 'traffic');
  await page.goto(u.href);
  // A fresh browser: sign in with the key, as an operator would at the wall.
  await page.locator('#login').waitFor({ state: 'visible', timeout: 60_000 });
  await page.fill('#login-key', process.env.IOCHUB_TOKEN ?? '');
  await page.click('#login button[type=submit]');
  const stats = () => page.evaluate(() => window.iochub.stats());
  await page.waitForFunction(() => window.iochub.stats().connection === 'online' && window.iochub.stats().snapshots >= 1 && window.iochub.stats().entities > 0,
    undefined, { timeout: 60_000, polling: 200 });
  const before = await stats();
  await writeFile(readyFile, 'ready\n');
  console.log(`restart-check: online with ${before.entities} entities; waiting for the gateway to go away`);
  await page.locator('#conn-text', { hasText: 'Mất kết nối' }).waitFor({ timeout: 120_000 });
  await page.screenshot({ path: path.join(results, 'wall-restart-offline.png') });
  console.log('restart-check: the screen says the link is lost; waiting for it to resume');
  await page.waitForFunction((n) => window.iochub.stats().snapshots > n && window.iochub.stats().connection === 'online',
    before.snapshots, { timeout: 240_000, polling: 500 });
  const after = await stats();
  const ids = await page.evaluate(() => window.iochub.entityIds());
  await page.screenshot({ path: path.join(results, 'wall-restart-resumed.png') });
  if (after.entities === 0 || new Set(ids).size !== ids.length || await page.locator('#login').isVisible()) {
    console.error(`restart-check: resumed badly: ${JSON.stringify(after)}`);
  } else {
    console.log(`restart-check: resumed after ${after.attempts - before.attempts} attempts with ${after.entities} entities, no reload`);
    code = 0;
  }
} catch (err) {
  console.error(`restart-check: ${err.message}`);
} finally {
  await browser.close();
}
process.exit(code);
