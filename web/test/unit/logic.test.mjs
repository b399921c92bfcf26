// Unit tests of the wall screen's logic modules (web/app), run by node --test
// without a browser: formatting, backoff, the live connection, conflation,
// the store, alert order, roll-up colours and tiles.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fmtNumber, fmtPercent, fmtTime, fmtTimeLeft } from '../../app/format.js';
import { Backoff } from '../../app/backoff.js';
import { LiveConnection } from '../../app/connection.js';
import { FrameBatcher } from '../../app/batcher.js';
import { LiveStore, isOlder, snapshotFeatures } from '../../app/store.js';
import { activeAlerts, alertInfo, alertTitle, severityOf } from '../../app/alerts.js';
import { bandColor, congestionColor, HUB_STALE_COLOR, nextLayer, provinceKpis, unitColor, unitColors } from '../../app/kpi.js';

test('numbers in Vietnamese and English format', () => {
  assert.equal(fmtNumber(1234.56, 'vi'), '1.234,6');
  assert.equal(fmtNumber(1234.56, 'en'), '1,234.6');
  assert.equal(fmtNumber(1234567, 'vi', 0), '1.234.567');
  assert.equal(fmtNumber(NaN, 'vi'), '—');
  assert.equal(fmtPercent(0.25, 'en'), '25%');
  assert.match(fmtPercent(0.25, 'vi'), /^25\s?%$/);
});

test('times in Asia/Ho_Chi_Minh whatever the zone of the machine', () => {
  // 17:05:09 UTC is 00:05:09 the next day in Vietnam (UTC+7, no DST).
  assert.equal(fmtTime('2026-11-21T17:05:09Z', 'vi'), '00:05:09');
  assert.equal(fmtTime('2026-11-21T17:05:09Z', 'vi', true), '00:05:09 22/11/2026');
  assert.equal(fmtTime(new Date('2026-06-30T23:59:59Z'), 'en', true), '01/07/2026, 06:59:59');
  assert.equal(fmtTime('not a time', 'vi'), 'not a time');
  assert.equal(fmtTime(null, 'vi'), '—');
});

test('time left to an alert expiry', () => {
  assert.equal(fmtTimeLeft(65 * 60e3, 'vi'), 'còn 1 giờ 5 phút');
  assert.equal(fmtTimeLeft(120 * 60e3, 'vi'), 'còn 2 giờ');
  assert.equal(fmtTimeLeft(30e3, 'en'), '1 min left');
  assert.equal(fmtTimeLeft(-1, 'en'), 'expired');
  assert.equal(fmtTimeLeft(-1, 'vi'), 'đã hết hạn');
});

test('backoff doubles up to its maximum, with bounded jitter, and resets', () => {
  const b = new Backoff({ minMs: 1000, maxMs: 10000, jitter: 0.2, random: () => 0 });
  assert.deepEqual([b.next(), b.next(), b.next(), b.next(), b.next(), b.next()], [1000, 2000, 4000, 8000, 10000, 10000]);
  b.reset();
  assert.equal(b.next(), 1000);
  b.slowest();
  assert.equal(b.next(), 10000);
  const j = new Backoff({ minMs: 1000, jitter: 0.2, random: () => 0.999 });
  const d = j.next();
  assert.ok(d >= 1000 && d < 1200, `jittered delay ${d}`);
});

// FakeSocket stands in for the browser's WebSocket.
class FakeSocket {
  constructor(url) { this.url = url; this.closed = false; }
  close() { this.closed = true; }
  open() { this.onopen?.(); }
  send(msg) { this.onmessage?.({ data: JSON.stringify(msg) }); }
  drop(code = 1006) { this.onclose?.({ code, reason: '' }); }
}

function fakeConnection(extra = {}) {
  const sockets = [];
  const timers = [];
  const states = [];
  const frames = [];
  const conn = new LiveConnection({
    url: 'ws://x/v1/live?province=01',
    onFrame: (m) => frames.push(m),
    onState: (s, ms) => states.push([s, Math.round(ms)]),
    open: (u) => { const s = new FakeSocket(u); sockets.push(s); return s; },
    setTimer: (fn, ms) => timers.push({ fn, ms }),
    backoff: new Backoff({ random: () => 0 }),
    ...extra,
  });
  return { conn, sockets, timers, states, frames };
}

test('the connection reconnects with backoff and resets it at a snapshot', async () => {
  const { conn, sockets, timers, states, frames } = fakeConnection();
  conn.start();
  sockets[0].open();
  sockets[0].send({ type: 'snapshot', entities: [] });
  assert.equal(frames.length, 1);
  await sockets[0].drop(1001);
  assert.deepEqual(timers.map((t) => t.ms), [1000]);
  timers.shift().fn();
  await sockets[1].drop();
  timers.shift().fn();
  await sockets[2].drop();
  assert.deepEqual(timers.map((t) => t.ms), [4000], 'third failure waits 4 s');
  timers.shift().fn();
  sockets[3].open();
  conn.snapshotTaken();
  await sockets[3].drop();
  assert.deepEqual(timers.map((t) => t.ms), [1000], 'a snapshot resets the backoff');
  assert.deepEqual(states.slice(0, 4), [['connecting', 0], ['online', 0], ['offline', 0], ['offline', 1000]]);
});

test('a closed socket shows offline while beforeRetry is still waiting', async () => {
  let release = () => {};
  const pending = new Promise((resolve) => { release = resolve; });
  const { conn, sockets, timers, states } = fakeConnection({ beforeRetry: () => pending });
  conn.start();
  sockets[0].open();
  const closed = sockets[0].drop(1012);
  assert.deepEqual(states.at(-1), ['offline', 0], 'offline before beforeRetry is done');
  assert.equal(timers.length, 0, 'no retry scheduled yet');
  release();
  await closed;
  assert.deepEqual(timers.map((t) => t.ms), [1000]);
  assert.deepEqual(states.at(-1), ['offline', 1000]);
});

test('a socket refused before it opened stays connecting while beforeRetry waits (a page waiting for its sign-in)', async () => {
  let release = () => {};
  const pending = new Promise((resolve) => { release = resolve; });
  const { conn, sockets, timers, states } = fakeConnection({ beforeRetry: () => pending });
  conn.start();
  const closed = sockets[0].drop(1006);
  assert.deepEqual(states, [['connecting', 0]], 'not offline while waiting');
  release();
  await closed;
  assert.deepEqual(timers.map((t) => t.ms), [1000]);
  assert.deepEqual(states.at(-1), ['offline', 1000]);
});

test('frames of a socket given up are dropped, so nothing arrives twice', async () => {
  const { conn, sockets, timers, frames } = fakeConnection();
  conn.start();
  sockets[0].open();
  await sockets[0].drop();
  timers.shift().fn();
  sockets[1].open();
  sockets[0].send({ type: 'state', entity: { id: 'air/a' } }); // late delivery of the old socket
  sockets[1].send({ type: 'snapshot', entities: [] });
  assert.deepEqual(frames.map((f) => f.type), ['snapshot']);
  assert.equal(conn.staleFrames, 1);
  // A close of the old socket after the new one opened does not retry.
  await sockets[0].drop();
  assert.equal(timers.length, 0);
});

test('a batch frame is unpacked into its frames, in order; single frames still arrive alone', async () => {
  const { conn, sockets, timers, frames } = fakeConnection();
  conn.start();
  sockets[0].open();
  sockets[0].send({ type: 'snapshot', entities: [] });
  sockets[0].send({
    type: 'batch',
    frames: [
      { type: 'state', entity: { id: 'air/a' } },
      { type: 'remove', id: 'air/b' },
      { type: 'rollup', rollup: { unit: '00070' } },
    ],
  });
  sockets[0].send({ type: 'state', entity: { id: 'air/c' } }); // a gateway (or the mock) that does not batch
  sockets[0].send({ type: 'batch', frames: [] });
  assert.deepEqual(frames.map((f) => f.type), ['snapshot', 'state', 'remove', 'rollup', 'state']);
  assert.deepEqual(frames[1], { type: 'state', entity: { id: 'air/a' } });
  assert.equal(frames[4].entity.id, 'air/c');
  assert.equal(conn.frames, 4, 'frames counts what the socket delivered');

  // A frame whose onFrame gives the socket up drops the rest of its batch.
  const { conn: c2, sockets: s2, frames: f2 } = fakeConnection();
  c2.onFrame = (m) => { f2.push(m); if (m.id === 'air/x') c2.stop(); };
  c2.start();
  s2[0].open();
  s2[0].send({ type: 'batch', frames: [{ type: 'remove', id: 'air/x' }, { type: 'remove', id: 'air/y' }] });
  assert.deepEqual(f2.map((f) => f.id), ['air/x']);
  assert.equal(timers.length, 0);
});

test('close code 1008 waits the longest; beforeRetry runs first', async () => {
  const seen = [];
  const { conn, sockets, timers } = fakeConnection({ beforeRetry: (code, wasOnline) => { seen.push([code, wasOnline]); } });
  conn.start();
  sockets[0].open();
  await sockets[0].drop(1008);
  assert.deepEqual(seen, [[1008, true]]);
  assert.deepEqual(timers.map((t) => t.ms), [10000]);
});

test('a burst of requests makes one flush (conflation)', () => {
  const timers = [];
  const rafs = [];
  let now = 0;
  let flushed = 0;
  const b = new FrameBatcher(() => { flushed++; }, {
    minIntervalMs: 250, now: () => now, setTimer: (fn, ms) => timers.push({ fn, ms }), raf: (fn) => rafs.push(fn),
  });
  for (let i = 0; i < 1000; i++) b.schedule();
  assert.equal(timers.length, 1);
  assert.equal(timers[0].ms, 0, 'first flush at the next frame');
  timers.shift().fn();
  rafs.shift()(0);
  assert.equal(flushed, 1);
  now = 100;
  b.schedule();
  assert.equal(timers[0].ms, 150, 'the next waits out the interval');
  b.schedule();
  assert.equal(timers.length, 1);
  assert.equal(b.totalRequests, 1002);
});

test('soon: the first useful redraw does not wait out a grown interval, and is made once', () => {
  const timers = [];
  const rafs = [];
  let now = 0;
  let flushed = 0;
  const b = new FrameBatcher(() => { flushed++; }, {
    minIntervalMs: 250, maxIntervalMs: 2000, now: () => now, setTimer: (fn, ms) => timers.push({ fn, ms }), raf: (fn) => rafs.push(fn),
  });
  b.adapt(1000); // slow redraws of the empty map: the interval is 2 s
  b.last = 0;
  now = 10;
  b.schedule();
  assert.equal(timers[0].ms, 1990, 'a plain request waits out the interval');
  b.soon();
  assert.equal(rafs.length, 1, 'soon asks for the next frame');
  rafs.shift()(0);
  assert.equal(flushed, 1);
  // The timer of the request it brought forward makes no second flush.
  timers.shift().fn();
  rafs.splice(0).forEach((fn) => fn(0));
  assert.equal(flushed, 1, 'one flush for both requests');
  b.soon();
  b.soon();
  rafs.splice(0).forEach((fn) => fn(0));
  assert.equal(flushed, 2, 'two soon calls before a frame: one flush');
});

const feat = (id, layer, updatedAt, extra = {}) => ({ id: `${layer}/${id}`, geometry: null, properties: { layer, entityId: id, updatedAt, ...extra } });

test('the store: a snapshot replaces, states update, older states and removes of unknown ids change nothing', () => {
  const s = new LiveStore();
  s.apply({ type: 'snapshot', entities: [feat('a', 'air', '2026-01-01T00:00:00Z'), feat('b', 'traffic', '2026-01-01T00:00:00Z')] });
  assert.deepEqual([...s.take()].sort(), ['air', 'traffic']);
  assert.equal(s.apply({ type: 'state', entity: feat('a', 'air', '2026-01-01T00:01:00Z', { v: 2 }) }), true);
  assert.equal(s.apply({ type: 'state', entity: feat('a', 'air', '2026-01-01T00:00:30Z', { v: 1 }) }), false);
  assert.equal(s.entities.get('air/a').properties.v, 2);
  assert.equal(s.outdated, 1);
  assert.equal(s.apply({ type: 'remove', id: 'air/zzz' }), false);
  assert.deepEqual([...s.take()], ['air']);
  // A resumed view: the new snapshot lacks b; b is gone, a is there once.
  s.apply({ type: 'snapshot', entities: [feat('a', 'air', '2026-01-01T00:02:00Z')] });
  assert.deepEqual([...s.entities.keys()], ['air/a']);
  assert.deepEqual([...s.take()].sort(), ['air', 'traffic']);
  assert.equal(isOlder(feat('x', 'air', 'bad'), feat('x', 'air', '2026-01-01T00:00:00Z')), false);
});

const roll = (unit, layer, start, extra = {}) => ({ unit, layer, window: '1h', windowStart: start, windowEnd: '2100-01-01T00:00:00Z', province: '01', ...extra });

test('the store keeps the latest window of each roll-up', () => {
  const s = new LiveStore();
  s.apply({ type: 'rollups', province: '01', rollups: [roll('01', 'air', '2026-01-01T01:00:00Z', { worstBand: 2 })] });
  assert.equal(s.apply({ type: 'rollup', rollup: roll('01', 'air', '2026-01-01T00:00:00Z', { worstBand: 6 }) }), false, 'an earlier window');
  assert.equal(s.rollup('01', 'air', '1h').worstBand, 2);
  assert.equal(s.apply({ type: 'rollup', rollup: roll('01', 'air', '2026-01-01T01:00:00Z', { worstBand: 4 }) }), true);
  assert.equal(s.rollup('01', 'air', '1h').worstBand, 4);
  assert.ok(s.take().has('rollups'));
});

const alert = (id, severity, sent, extra = {}) => ({
  id: `alert/${id}`, geometry: null,
  properties: { layer: 'alert', alert: { sent, state: 'active', msgType: 'Alert', info: [{ language: 'en-US', severity, headline: `${id} en` }, { language: 'vi-VN', severity, headline: `${id} vi` }], ...extra } },
});

test('alerts in force: most severe first, then newest; CAP info in the screen language', () => {
  const now = Date.parse('2026-01-01T12:00:00Z');
  const list = [
    alert('minor-new', 'Minor', '2026-01-01T11:00:00Z'),
    alert('severe-old', 'Severe', '2026-01-01T08:00:00Z'),
    alert('severe-new', 'Severe', '2026-01-01T10:00:00Z'),
    alert('cancelled', 'Extreme', '2026-01-01T10:00:00Z', { state: 'cancelled' }),
    alert('cancel-msg', 'Extreme', '2026-01-01T10:00:00Z', { msgType: 'Cancel' }),
    alert('expired', 'Extreme', '2026-01-01T10:00:00Z', { info: [{ severity: 'Extreme', expires: '2026-01-01T11:00:00Z' }] }),
  ];
  assert.deepEqual(activeAlerts(list, now).map((f) => f.id), ['alert/severe-new', 'alert/severe-old', 'alert/minor-new']);
  assert.equal(alertInfo(list[0].properties.alert, 'vi').headline, 'minor-new vi');
  assert.equal(alertInfo(list[0].properties.alert, 'en').headline, 'minor-new en');
  assert.equal(severityOf({ info: [{ severity: 'Minor' }, { severity: 'Severe' }] }), 'Severe');
  assert.equal(severityOf({ info: [{ severity: 'bogus' }] }), 'Unknown');
});

test('unit colours follow the roll-up of the chosen layer', () => {
  assert.equal(bandColor(4), '#FF0000');
  assert.equal(bandColor(0), null);
  assert.equal(unitColor('air', roll('00070', 'air', 'x', { worstBand: 5 })), '#8F3F97');
  assert.equal(unitColor('air', roll('00070', 'air', 'x', { worstBand: 0 })), null, 'no AQI computed is no colour');
  assert.equal(congestionColor(0), '#2ee06b');
  assert.equal(congestionColor(0.6), '#ff2d2d');
  assert.equal(unitColor('traffic', roll('00070', 'traffic', 'x', { segmentsReporting: 4, congestedSegmentShare: 0.5 })), '#ff2d2d');
  assert.equal(unitColor('traffic', roll('00070', 'traffic', 'x', { segmentsReporting: 0 })), null);
  assert.equal(unitColor('water', roll('00070', 'water', 'x', { stationsReporting: 1, alarmMax: 2 })), '#ff7e00');
  assert.equal(unitColor('air', undefined), null);
  const s = new LiveStore();
  s.apply({ type: 'rollups', rollups: [roll('00070', 'air', 'x', { worstBand: 1 })] });
  assert.deepEqual([...unitColors(s, ['00070', '00073'], 'air')], [['00070', '#00E400'], ['00073', null]]);
  assert.deepEqual(['air', 'traffic', 'water'].map(nextLayer), ['traffic', 'water', 'air']);
});

test('on the national wall a province whose hub is stale is grey whatever its figures', () => {
  assert.equal(unitColor('air', roll('01', 'air', 'x', { worstBand: 5, hubStale: true })), HUB_STALE_COLOR);
  assert.equal(unitColor('traffic', roll('01', 'traffic', 'x', { segmentsReporting: 0, hubStale: true })), HUB_STALE_COLOR);
  assert.equal(unitColor('air', roll('01', 'air', 'x', { worstBand: 5 })), '#8F3F97', 'the mark cleared: its colour again');
  const s = new LiveStore();
  s.apply({ type: 'rollups', unit: 'VN', rollups: [roll('01', 'air', 'x', { worstBand: 2 }), roll('79', 'air', 'x', { worstBand: 2, hubStale: true })] });
  assert.deepEqual([...unitColors(s, ['01', '79'], 'air')], [['01', '#FFFF00'], ['79', HUB_STALE_COLOR]]);
});

test('the tiles of a province from its roll-ups and live entities', () => {
  const now = Date.parse('2026-01-01T12:00:00Z');
  const s = new LiveStore();
  assert.equal(provinceKpis(s, '01', now).air, null, 'no roll-up yet is no data, not zero');
  s.apply({
    type: 'snapshot', entities: [
      alert('a', 'Severe', '2026-01-01T10:00:00Z'), alert('b', 'Minor', '2026-01-01T10:00:00Z'),
      { id: 'report/r1', geometry: null, properties: { layer: 'report', report: { status: 'assigned', slaDeadline: '2026-01-01T11:00:00Z' } } },
      { id: 'report/r2', geometry: null, properties: { layer: 'report', report: { status: 'received', slaDeadline: '2026-01-02T11:00:00Z' } } },
      { id: 'report/r3', geometry: null, properties: { layer: 'report', report: { status: 'resolved' } } },
      { id: 'air/s', geometry: null, properties: { layer: 'air', stale: true } },
    ],
  });
  s.apply({
    type: 'rollups', rollups: [
      roll('01', 'air', 'x', { aqiMax: 212, worstBand: 5, stationsReporting: 3, stationsKnown: 4, stationsByBand: { 0: 0, 1: 1, 2: 1, 3: 0, 4: 0, 5: 1, 6: 0 }, stale: 1 }),
      roll('01', 'traffic', 'x', { meanSpeed: 23.5, segmentsReporting: 8, segmentsKnown: 10, congestedSegmentShare: 0.25, stale: 2 }),
      roll('01', 'water', 'x', { stationsReporting: 2, stationsByAlarm: { 0: 1, 1: 0, 2: 1, 3: 0 } }),
    ],
  });
  const k = provinceKpis(s, '01', now);
  assert.deepEqual(k.air, { aqiMax: 212, band: 5, color: '#8F3F97', byBand: [0, 1, 1, 0, 0, 1, 0], reporting: 3, known: 4 });
  assert.deepEqual(k.traffic, { congested: 2, reporting: 8, known: 10, meanSpeed: 23.5 });
  assert.deepEqual(k.water, { byAlarm: [1, 0, 1, 0], reporting: 2, known: 0 });
  assert.deepEqual(k.alerts, { Extreme: 0, Severe: 1, Moderate: 0, Minor: 1, Unknown: 0 });
  assert.equal(k.alertsTotal, 2);
  assert.deepEqual(k.reports, { open: 2, overdue: 1 });
  assert.deepEqual(k.stale, { sources: 3, entities: 1 });
});

test('units to watch: the worst first, the fine ones left out', async () => {
  const { unitsToWatch } = await import('../../app/kpi.js');
  const s = new LiveStore();
  s.apply({
    type: 'rollups', rollups: [
      roll('a', 'air', 'x', { worstBand: 2, aqiMax: 90 }),
      roll('b', 'air', 'x', { worstBand: 4, aqiMax: 180 }),
      roll('c', 'air', 'x', { worstBand: 4, aqiMax: 160 }),
      roll('d', 'air', 'x', { worstBand: 6, aqiMax: 320 }),
    ],
  });
  assert.deepEqual(unitsToWatch(s, ['a', 'b', 'c', 'd', 'e'], 'air', 2).map((w) => w.code), ['d', 'b']);
  assert.deepEqual(unitsToWatch(s, ['a'], 'air', 5), []);
});

test('the redraw interval grows while redraws are slow and comes back', () => {
  const b = new FrameBatcher(() => {}, { minIntervalMs: 250, maxIntervalMs: 2000, setTimer: () => {}, raf: () => {} });
  b.adapt(200);
  assert.equal(b.intervalMs, 800);
  b.adapt(1000);
  assert.equal(b.intervalMs, 2000);
  b.adapt(10);
  assert.equal(b.intervalMs, 250);
});

test('history: the query of the last 24 hours and the chart series', async () => {
  const { historyQuery, toSeries, chartOf } = await import('../../app/history.js');
  const now = Date.parse('2026-01-02T00:00:00Z');
  assert.equal(historyQuery({ entity: 'urn:x:1' }, 'air', now),
    '/v1/history?entity=urn%3Ax%3A1&layer=air&from=2026-01-01T00%3A00%3A00.000Z&to=2026-01-02T00%3A00%3A00.000Z&points=144');
  assert.match(historyQuery({ unit: '00070' }, 'traffic', now, 1, 10), /^\/v1\/history\?unit=00070&layer=traffic&.*points=10$/);
  assert.equal(historyQuery({ unit: '00070' }, 'alert', now), null);
  assert.deepEqual(chartOf('air', true), { value: 'pm25', stat: 'mean', unit: 'µg/m³' });
  assert.deepEqual(chartOf('air', false), { value: 'aqi', stat: 'max', unit: 'VN_AQI' });
  const answer = { items: [
    { t: '2026-01-01T00:00:00Z', count: 3, pm25: { mean: 40.5, max: 60 } },
    { t: '2026-01-01T01:00:00Z', count: 1, pm25: { mean: null } },
    { t: 'bad', pm25: { mean: 1 } },
  ] };
  assert.deepEqual(toSeries(answer, 'pm25', 'mean'), [[1767225600, 1767229200], [40.5, null]]);
  assert.deepEqual(toSeries({}, 'pm25', 'mean'), [[], []]);
});

test('a roll-up of a window that has ended is not the present', () => {
  const s = new LiveStore();
  s.apply({ type: 'rollups', rollups: [roll('01', 'air', '2026-01-01T09:00:00Z', { windowEnd: '2026-01-01T10:00:00Z', worstBand: 6, aqiMax: 400 })] });
  assert.equal(s.rollup('01', 'air', '1h', Date.parse('2026-01-01T09:59:59Z')).worstBand, 6);
  assert.equal(s.rollup('01', 'air', '1h', Date.parse('2026-01-01T10:00:00Z')), undefined);
  assert.equal(provinceKpis(s, '01', Date.parse('2026-01-01T12:00:00Z')).air, null, 'no data, not the 9 o\'clock figures');
  assert.deepEqual([...unitColors(s, ['01'], 'air', Date.parse('2026-01-01T12:00:00Z'))], [['01', null]]);
});

test('a compact snapshot unpacks into its Features, shared values copied per Feature', () => {
  const a = { type: 'Feature', id: 'air/a', geometry: { type: 'Point', coordinates: [105.1, 21] }, properties: { layer: 'air', empty: {}, units: ['00004'], observation: { values: { pm25: 12.5 } } } };
  const b = { type: 'Feature', id: 'air/b', geometry: { type: 'Point', coordinates: [105.2, 21] }, properties: { layer: 'air', empty: {}, units: ['00004'], observation: { values: { pm25: 80 } } } };
  const w = { type: 'Feature', id: 'water/w', geometry: null, properties: { layer: 'water', __proto__x: 1 } };
  const frame = {
    type: 'snapshot', province: '01', shapes: [
      {
        paths: [['type'], ['id'], ['geometry', 'type'], ['geometry', 'coordinates'], ['properties', 'layer'], ['properties', 'empty'], ['properties', 'units'], ['properties', 'observation', 'values', 'pm25']],
        same: { 0: 'Feature', 2: 'Point', 4: 'air', 5: {}, 6: ['00004'] },
        rows: [['air/a', [105.1, 21], 12.5], ['air/b', [105.2, 21], 80]],
      },
      { paths: [['type'], ['id'], ['geometry'], ['properties', 'layer'], ['properties', '__proto__x']], same: {}, rows: [['Feature', 'water/w', null, 'water', 1]] },
    ],
  };
  const fs = snapshotFeatures(JSON.parse(JSON.stringify(frame)));
  assert.deepEqual(fs, [a, b, w]);
  assert.notEqual(fs[0].properties.units, fs[1].properties.units, 'a shared array is copied per Feature');
  // A member named __proto__ is a member, as JSON.parse makes it.
  const p = snapshotFeatures(JSON.parse('{"type":"snapshot","shapes":[{"paths":[["id"],["properties","__proto__","x"]],"same":{},"rows":[["air/p",1]]}]}'));
  assert.deepEqual(Object.keys(p[0].properties), ['__proto__']);
  assert.equal(p[0].properties.__proto__.x, 1);
  assert.equal(/** @type {any} */ ({}).x, undefined, 'no prototype touched');
  // A member named twice, first not an object ({"a":1,"a":{"b":2}}): the later wins, as JSON.parse has it.
  const twice = snapshotFeatures({ type: 'snapshot', shapes: [{ paths: [['id'], ['a'], ['a', 'b']], same: {}, rows: [['air/t', 1, 2]] }] });
  assert.deepEqual(twice, [JSON.parse('{"id":"air/t","a":1,"a":{"b":2}}')]);
  // A snapshot of Features passes as it is; the store takes either form alike.
  assert.equal(snapshotFeatures({ type: 'snapshot', entities: fs }), fs);
  const s1 = new LiveStore();
  const s2 = new LiveStore();
  s1.apply(JSON.parse(JSON.stringify(frame)));
  s2.apply({ type: 'snapshot', province: '01', entities: [a, b, w] });
  assert.deepEqual([...s1.entities.entries()], [...s2.entities.entries()]);
  assert.deepEqual([...s1.dirty].sort(), ['air', 'water']);
});

test('an alert titled by a code shows its translation, or its category\'s, never the code', () => {
  const names = { carAccident: 'Tai nạn giao thông' };
  const ev = (/** @type {string} */ c) => names[c] ?? c;
  const cat = (/** @type {string} */ c) => ({ Transport: 'Giao thông' })[c] ?? c;
  const unit = () => 'Phường Ba Đình';
  const alert = (/** @type {string} */ headline) => ({ properties: { unit: '00004', alert: { info: [{ language: 'vi-VN', headline, category: ['Transport'] }] } } });
  assert.equal(alertTitle(alert('carAccident'), 'vi', ev, unit, cat), 'Tai nạn giao thông – Phường Ba Đình');
  assert.equal(alertTitle(alert('someNewCode'), 'vi', ev, unit, cat), 'Giao thông – Phường Ba Đình');
  assert.equal(alertTitle(alert('Ngập sâu trên phố Huế'), 'vi', ev, unit, cat), 'Ngập sâu trên phố Huế');
});
