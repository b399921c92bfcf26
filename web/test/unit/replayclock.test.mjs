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

test('a paused replay fetches its instant once, not every second', () => {
  const c = new ReplayClock();
  c.start(NOW - H, NOW, 4);
  assert.equal(c.tick(NOW).fetch, true);
  c.pause(NOW + 500);
  const held = c.tick(NOW + 1500);
  assert.equal(held.at, NOW - H + 2000);
  assert.equal(held.fetch, true, 'the instant it paused at');
  for (const dt of [2500, 10_000, 60_000]) {
    const r = c.tick(NOW + dt);
    assert.equal(r.at, NOW - H + 2000, 'the clock holds');
    assert.equal(r.fetch, false, 'nothing new to fetch');
    assert.equal(r.ended, false, 'a paused replay never reaches the present');
  }
});

test('the slider moves a paused replay: it stays paused there and fetches it', () => {
  const c = new ReplayClock();
  c.start(NOW - H, NOW, 8);
  c.tick(NOW);
  c.pause(NOW + 1000);
  c.tick(NOW + 1000);
  c.seek(NOW - 5 * H, NOW + 2000);
  assert.equal(c.paused, true);
  assert.equal(c.speed, 8, 'the speed is kept');
  const r = c.tick(NOW + 2100);
  assert.deepEqual(r, { at: NOW - 5 * H, ended: false, fetch: true });
  assert.equal(c.tick(NOW + 30_000).at, NOW - 5 * H);
  c.seek(NOW - 40 * H, NOW + 30_000);
  assert.equal(c.time(NOW + 30_000), NOW + 30_000 - REPLAY_SPAN_MS, 'clamped to the last 24 hours');
  c.seek(NOW + H, NOW + 30_000);
  assert.equal(c.time(NOW + 30_000), NOW + 30_000, 'never past the present');
});

test('play resumes a paused replay at its speed from where it was held', () => {
  const c = new ReplayClock();
  c.start(NOW - H, NOW, 4);
  c.toggle(NOW + 1000);
  assert.equal(c.paused, true);
  assert.equal(c.time(NOW + 9000), NOW - H + 4000);
  c.toggle(NOW + 9000);
  assert.equal(c.paused, false);
  assert.equal(c.time(NOW + 10_000), NOW - H + 8000);
  assert.equal(c.tick(NOW + 10_000).fetch, true);
  assert.equal(c.tick(NOW + 10_500).fetch, false, 'paced again once playing');
});

test('seek does nothing while live', () => {
  const c = new ReplayClock();
  c.seek(NOW - H, NOW);
  assert.equal(c.active, false);
  assert.equal(c.time(NOW), null);
});
