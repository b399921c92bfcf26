// first-frame-trace.mjs loads the wall once in the speed test's world (the
// mock with 5 000 extra air stations, 1920×1080, Debian's Chromium with
// SwiftShader) and reports what the first useful frame cost: the page's
// milestones, the CPU time each Chromium process spent from navigation to
// that frame (from /proc, so SwiftShader's own threads in the GPU process
// count too), and, with TRACE=file.json, a Chromium trace of the same load
// (DevTools protocol Tracing domain; open it in chrome://tracing or Perfetto).
//
//   cd web && node scripts/first-frame-trace.mjs
//   cd web && TRACE=/tmp/wall-trace.json node scripts/first-frame-trace.mjs
//
// CHROMIUM overrides /usr/bin/chromium; CATEGORIES the trace categories.
import { readdirSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { chromium } from 'playwright-core';
import { startMock } from '../test/mock-server.mjs';

const ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--use-angle=swiftshader', '--enable-unsafe-swiftshader',
];
const CATEGORIES = process.env.CATEGORIES ?? [
  'toplevel', 'blink.user_timing', 'devtools.timeline', 'disabled-by-default-devtools.timeline',
  'v8', 'gpu', 'loading', 'disabled-by-default-v8.cpu_profiler',
].join(',');

/** cpuByProcess is the CPU time (ms) of each running Chromium process by pid, with its type. */
function cpuByProcess() {
  /** @type {Record<string, {type: string, ms: number}>} */
  const out = {};
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (!cmd.includes('chromium')) continue;
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
      let type = cmd.match(/--type=([a-z-]+)/)?.[1] ?? 'browser';
      if (type === 'renderer') type += /top-chrome|webui/i.test(cmd) ? ' (browser UI)' : ` ${cmd.match(/--renderer-client-id=(\d+)/)?.[1] ?? ''}`;
      // utime + stime, in clock ticks of 10 ms
      out[pid] = { type, ms: (Number(fields[11]) + Number(fields[12])) * 10 };
    } catch {
      // the process ended meanwhile
    }
  }
  return out;
}

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true, args: ARGS });
const mock = await startMock({ tickMs: 3_600_000, extraStations: 5000 });
try {
  const context = await browser.newContext({ viewport: { width: 1920, height: 1080 }, locale: 'vi-VN' });
  const page = await context.newPage();
  const cdp = await browser.newBrowserCDPSession();
  if (process.env.TRACE) {
    await cdp.send('Tracing.start', { transferMode: 'ReturnAsStream', traceConfig: { includedCategories: CATEGORIES.split(','), recordMode: 'recordAsMuchAsPossible' } });
  }
  const before = cpuByProcess();
  await page.goto(mock.url + '/');
  await page.waitForFunction(() => window.iochub?.perf().firstUsefulMs != null, undefined, { timeout: 120_000, polling: 100 });
  const after = cpuByProcess();
  const perf = await page.evaluate(() => window.iochub.perf());
  /** @type {Record<string, number>} */
  const cpu = {};
  for (const [pid, p] of Object.entries(after)) cpu[p.type] = (cpu[p.type] ?? 0) + p.ms - (before[pid]?.ms ?? 0);
  console.log(JSON.stringify({ firstUsefulMs: Math.round(perf.firstUsefulMs), marks: perf.marks, cpuMsByProcess: cpu }, null, 2));
  if (process.env.TRACE) {
    const done = new Promise((resolve) => cdp.once('Tracing.tracingComplete', resolve));
    await cdp.send('Tracing.end');
    const { stream } = /** @type {any} */ (await done);
    const parts = [];
    for (;;) {
      const r = await cdp.send('IO.read', { handle: stream, size: 1 << 22 });
      parts.push(r.base64Encoded ? Buffer.from(r.data, 'base64') : Buffer.from(r.data));
      if (r.eof) break;
    }
    await cdp.send('IO.close', { handle: stream });
    await writeFile(process.env.TRACE, Buffer.concat(parts));
    console.log(`trace written to ${process.env.TRACE}`);
  }
} finally {
  await browser.close();
  await mock.close();
}
