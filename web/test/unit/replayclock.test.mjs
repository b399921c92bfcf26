// Unit tests of the replay clock (web/app/replayclock.js): start, speed
// change, pause, the fetch pacing and the end of a replay back to live.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FETCH_EVERY_MS, REPLAY_SPAN_MS, ReplayClock } from '../../app/replayclock.js';

const H = 3600 * 1000;
const NOW = Date.parse('2026-12-05T02:00:00Z');

test('a replay starts at the chosen instant, clamped to the last 24 hours', () => {
  const c = new ReplayClock();
  assert.equal(c.time(NOW), null, 'live before start');
  c.start(NOW - H, NOW);
  assert.equal(c.time(NOW), NOW - H);
  assert.equal(c.time(NOW + 1000), NOW - H + 1000, '1× advances with the wall');
  c.start(NOW - 30 * H, NOW);
  assert.equal(c.time(NOW), NOW - REPLAY_SPAN_MS);
});

test('a speed change keeps the instant reached and advances faster from there', () => {
  const c = new ReplayClock();
  c.start(NOW - H, NOW);
  c.setSpeed(4, NOW + 10_000);
  assert.equal(c.time(NOW + 10_000), NOW - H + 10_000);
  assert.equal(c.time(NOW + 11_000), NOW - H + 14_000);
  c.setSpeed(8, NOW + 11_000);
  assert.equal(c.time(NOW + 12_000), NOW - H + 22_000);
});

test('a paused replay holds its instant until resumed', () => {
  const c = new ReplayClock();
  c.start(NOW - H, NOW, 8);
  c.pause(NOW + 1000);
  assert.equal(c.time(NOW + 60_000), NOW - H + 8000);
  c.resume(NOW + 60_000);
  assert.equal(c.time(NOW + 61_000), NOW - H + 16_000);
});

test('fetches at most once a second of wall time', () => {
  const c = new ReplayClock();
  c.start(NOW - H, NOW, 8);
  assert.equal(c.tick(NOW).fetch, true);
  assert.equal(c.tick(NOW + 250).fetch, false);
  assert.equal(c.tick(NOW + FETCH_EVERY_MS - 1).fetch, false);
  assert.equal(c.tick(NOW + FETCH_EVERY_MS).fetch, true);
});

test('a replay that reaches the present ends: back to live', () => {
  const c = new ReplayClock();
  c.start(NOW - 70_000, NOW, 8); // 8× gains 7 s a second: 10 s of wall time
  const mid = c.tick(NOW + 9000);
  assert.equal(mid.ended, false);
  assert.equal(mid.at, NOW + 2000);
  const end = c.tick(NOW + 10_000);
  assert.deepEqual(end, { at: null, ended: true, fetch: false });
  assert.equal(c.active, false);
  assert.equal(c.time(NOW + 11_000), null);
  assert.deepEqual(c.tick(NOW + 12_000), { at: null, ended: false, fetch: false }, 'ends once');
});
