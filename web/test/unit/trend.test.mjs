// Unit tests of the tiles' trends (web/app/trend.js): the history query of
// the province, the series loaded from it and kept current by live 1m
// roll-ups, bounded in points and hours.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BUCKET_MS, TREND_HOURS, TREND_POINTS, TRENDS, TrendSeries, trendQuery, trendRollup } from '../../app/trend.js';

const NOW = Date.parse('2026-12-05T02:07:30Z');
const MIN = 60e3;

/** history answers n buckets of value.stat ending with the bucket before `end` (ms). */
function answer(end, n, value, stat, f = (i) => i) {
  const items = [];
  for (let i = 0; i < n; i++) {
    const t = end - (n - i) * BUCKET_MS;
    items.push({ t: new Date(t).toISOString(), count: 5, [value]: { [stat]: f(i) } });
  }
  return { items };
}

test('one history query per tile: the province, 6 hours in 5-minute buckets ending with the one of now', () => {
  assert.equal(BUCKET_MS, 5 * MIN);
  const u = new URL(trendQuery('01', 'air', NOW), 'http://x');
  assert.equal(u.pathname, '/v1/history');
  assert.equal(u.searchParams.get('unit'), '01');
  assert.equal(u.searchParams.get('layer'), 'air');
  assert.equal(u.searchParams.get('points'), String(TREND_POINTS));
  assert.equal(u.searchParams.get('to'), '2026-12-05T02:10:00.000Z', 'the end of the bucket holding now');
  assert.equal(u.searchParams.get('from'), '2026-12-04T20:10:00.000Z');
  assert.equal(trendQuery('01', 'weather', NOW), null, 'no tile trend for weather');
  assert.deepEqual(Object.keys(TRENDS), ['air', 'traffic', 'water']);
});

test('a history answer loads as seconds and values, a missing figure as a gap', () => {
  const s = new TrendSeries('max');
  const a = answer(Date.parse('2026-12-05T02:05:00Z'), 4, 'aqi', 'max', (i) => (i === 2 ? undefined : 50 + i));
  s.load(a, 'aqi', 'max');
  const [xs, ys] = s.data();
  assert.deepEqual(ys, [50, 51, null, 53]);
  assert.equal(xs[3], Date.parse('2026-12-05T02:00:00Z') / 1000);
  assert.equal(xs[1] - xs[0], BUCKET_MS / 1000);
  assert.equal(s.points(), 3);
  assert.equal(s.last(), 53);
  s.load({ items: [{ t: 'nonsense', count: 1, aqi: { max: 9 } }] }, 'aqi', 'max');
  assert.deepEqual(s.data(), [[], []], 'a new answer replaces the old, bad times are skipped');
  s.load(null, 'aqi', 'max');
  assert.equal(s.points(), 0);
});

test('live minutes update their bucket (max) and open the next one', () => {
  const s = new TrendSeries('max');
  const end = Date.parse('2026-12-05T02:05:00Z');
  s.load(answer(end, 3, 'aqi', 'max', () => 60), 'aqi', 'max');
  // 02:00 is the last stored bucket; its minute 02:03 is worse than the stored max.
  assert.equal(s.live(Date.parse('2026-12-05T02:03:00Z'), 80), true);
  assert.equal(s.last(), 80);
  assert.equal(s.data()[0].length, 3, 'same bucket, no new point');
  assert.equal(s.live(Date.parse('2026-12-05T02:04:00Z'), 70), true);
  assert.equal(s.last(), 80, 'the bucket keeps its max');
  assert.equal(s.live(Date.parse('2026-12-05T02:04:00Z'), 70), false, 'the same roll-up again changes nothing');
  assert.equal(s.live(Date.parse('2026-12-05T02:05:00Z'), 40), true);
  assert.equal(s.data()[0].length, 4, 'the next bucket');
  assert.equal(s.last(), 40);
  assert.equal(s.live(Date.parse('2026-12-05T02:06:00Z'), null), false, 'no figure: ignored');
  assert.equal(s.live(Date.parse('2026-12-05T02:06:00Z'), NaN), false);
});

test('live minutes of a mean are averaged with the stored bucket', () => {
  const s = new TrendSeries('mean');
  s.load(answer(Date.parse('2026-12-05T02:05:00Z'), 1, 'speed', 'mean', () => 30), 'speed', 'mean');
  s.live(Date.parse('2026-12-05T02:01:00Z'), 20);
  assert.equal(s.last(), 25);
  s.live(Date.parse('2026-12-05T02:01:00Z'), 24); // the minute's roll-up updated
  assert.equal(s.last(), 27);
  s.live(Date.parse('2026-12-05T02:02:00Z'), 18);
  assert.equal(s.last(), 24);
});

test('live minutes before the history arrives are kept when it does', () => {
  const s = new TrendSeries('max');
  s.live(Date.parse('2026-12-05T02:01:00Z'), 99);
  assert.deepEqual(s.data()[1], [99]);
  s.load(answer(Date.parse('2026-12-05T02:05:00Z'), 2, 'aqi', 'max', () => 50), 'aqi', 'max');
  assert.deepEqual(s.data()[1], [50, 99]);
});

test('a trend stays bounded: at most TREND_POINTS + 1 buckets, none older than TREND_HOURS', () => {
  const s = new TrendSeries('max');
  const end = Date.parse('2026-12-05T02:00:00Z');
  s.load(answer(end, TREND_POINTS, 'level', 'max'), 'level', 'max');
  assert.equal(s.data()[0].length, TREND_POINTS);
  let t = end;
  for (let i = 0; i < 10 * TREND_POINTS; i++) {
    s.live(t, i);
    t += MIN;
  }
  const [xs] = s.data();
  assert.ok(xs.length <= TREND_POINTS + 1, `${xs.length} points`);
  assert.ok((xs[xs.length - 1] - xs[0]) * 1000 <= TREND_HOURS * 3600e3, 'six hours at most');
  assert.ok(s.minutes.size <= 2, `${s.minutes.size} buckets of minutes kept`);
  assert.ok(s.stored.size <= TREND_POINTS + 1);
  assert.equal(s.live(end - 24 * 3600e3, 5), false, 'a minute older than the chart is dropped');
  for (let i = 1; i < xs.length; i++) assert.ok(xs[i] > xs[i - 1], 'oldest first, no duplicate');
});

test('only the province 1m roll-ups of a trended layer feed the trends', () => {
  assert.equal(trendRollup({ unit: '01', layer: 'air', window: '1m' }, '01'), 'air');
  assert.equal(trendRollup({ unit: '01', layer: 'traffic', window: '1m' }, '01'), 'traffic');
  assert.equal(trendRollup({ unit: '01', layer: 'air', window: '1h' }, '01'), null);
  assert.equal(trendRollup({ unit: '00004', layer: 'air', window: '1m' }, '01'), null);
  assert.equal(trendRollup({ unit: '01', layer: 'weather', window: '1m' }, '01'), null);
  assert.equal(trendRollup(null, '01'), null);
});
