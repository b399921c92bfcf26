// Unit tests of web/app/early.js: the province of the page and the /v1/units
// query the wall starts while the page loads.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HeldSocket, liveQuery, liveURL, NATIONAL, NATIONAL_SIMPLIFY, provinceOf, takeEarlySocket, takeEarlyUnits, unitsURL } from '../../app/early.js';

test('the province of the page: two digits, else 01', () => {
  assert.equal(provinceOf(new URLSearchParams('province=79')), '79');
  assert.equal(provinceOf(new URLSearchParams('')), '01');
  assert.equal(provinceOf(new URLSearchParams('province=7')), '01');
  assert.equal(provinceOf(new URLSearchParams('province=01;drop')), '01');
});

test('the wall asks for simplified boundaries, whole ones only when told', () => {
  assert.equal(unitsURL('01'), '/v1/units?province=01&simplify=0.0005');
  assert.equal(unitsURL('01', true), '/v1/units?province=01');
});

test('without a page there is no early request', async () => {
  assert.equal(await takeEarlyUnits(), null);
});

test('the national wall: province=VN, its provinces simplified more, the live view of VN', () => {
  assert.equal(provinceOf(new URLSearchParams('province=VN')), 'VN');
  assert.equal(provinceOf(new URLSearchParams('province=vn')), '01');
  assert.equal(unitsURL(NATIONAL), `/v1/units?province=VN&simplify=${NATIONAL_SIMPLIFY}`);
  assert.equal(liveQuery('VN', '1,2,3,4', '1m,1h'), 'unit=VN&rollups=1m,1h&batch=1', 'no bbox in a view by unit');
  assert.equal(liveQuery('01', null, '1m,1h'), 'province=01&rollups=1m,1h&batch=1&snapshot=compact');
  assert.equal(liveQuery('01', '105,20,106,21', '1h'), 'province=01&bbox=105%2C20%2C106%2C21&rollups=1h&batch=1&snapshot=compact');
});

test('index.html preloads the whole module graph of app.js', async () => {
  const { readFile } = await import('node:fs/promises');
  const app = new URL('../../app/', import.meta.url);
  const html = await readFile(new URL('index.html', app), 'utf8');
  const preloaded = new Set([...html.matchAll(/<link rel="modulepreload" href="([^"]+)">/g)].map((m) => m[1]));
  // early.js has a script tag of its own (async, first in <head>).
  assert.match(html, /<script type="module" async src="early\.js"><\/script>/);
  const graph = new Set();
  const walk = async (name) => {
    if (graph.has(name)) return;
    graph.add(name);
    const src = await readFile(new URL(name, app), 'utf8');
    for (const m of src.matchAll(/^import [^;]*? from '\.\/([\w.]+)';$/gms)) await walk(m[1]);
  };
  await walk('app.js');
  graph.delete('early.js');
  assert.ok(graph.size > 10, `found ${graph.size} modules`);
  assert.deepEqual([...preloaded].sort(), [...graph].sort());
});

test('the live view\'s address: the page\'s province and bbox, ws or wss as the page', () => {
  assert.equal(liveURL(new URL('http://wall:8080/?province=79&bbox=1,2,3,4')),
    'ws://wall:8080/v1/live?province=79&bbox=1%2C2%2C3%2C4&rollups=1m,1h&batch=1&snapshot=compact');
  assert.equal(liveURL(new URL('https://wall/')), 'wss://wall/v1/live?province=01&rollups=1m,1h&batch=1&snapshot=compact');
  assert.equal(takeEarlySocket('ws://wall/v1/live'), null, 'without a page there is no early socket');
});

test('on a page, the early socket is the live view\'s: given once to a taker of its address, closed for another', async () => {
  const page = 'http://wall:8080/?province=79';
  /** @type {any[]} */
  const opened = [];
  class FakeSocket extends EventTarget {
    /** @param {string} url */
    constructor(url) { super(); this.url = url; this.closed = null; opened.push(this); }
    /** @param {number} code */
    close(code) { this.closed = code; }
  }
  const saved = { location: globalThis.location, WebSocket: globalThis.WebSocket, fetch: globalThis.fetch };
  Object.assign(globalThis, { location: new URL(page), WebSocket: FakeSocket, fetch: async () => new Response('{"type":"FeatureCollection","features":[]}') });
  try {
    // Each import with its own query is a fresh module: early.js runs again on this page.
    const a = await import('../../app/early.js?page=a');
    assert.equal(opened.length, 1);
    assert.equal(opened[0].url, liveURL(new URL(page)));
    const taken = a.takeEarlySocket(liveURL(new URL(page)));
    assert.ok(taken instanceof a.HeldSocket, 'the taker of its address gets the socket');
    assert.equal(opened[0].closed, null);
    assert.equal(a.takeEarlySocket(liveURL(new URL(page))), null, 'given once');
    const b = await import('../../app/early.js?page=b');
    assert.equal(opened.length, 2);
    assert.equal(b.takeEarlySocket('ws://wall:8080/v1/live?province=01'), null, 'another address gets none');
    assert.equal(opened[1].closed, 1000, 'and the early socket is closed');
    const units = await b.takeEarlyUnits();
    assert.equal(units?.res.status, 200, 'the early units request was made');
    assert.deepEqual(units?.body, { type: 'FeatureCollection', features: [] }, 'and its body parsed as it came');
    assert.equal(await b.takeEarlyUnits(), null, 'given once');
  } finally {
    Object.assign(globalThis, saved);
  }
});

test('a held socket keeps its events until taken, then hands them over in order, later ones as they come', async () => {
  const ws = new EventTarget();
  let closed = null;
  ws.close = (code) => { closed = code; };
  const held = new HeldSocket(/** @type {any} */ (ws));
  ws.dispatchEvent(new Event('open'));
  ws.dispatchEvent(Object.assign(new Event('message'), { data: 'snapshot' }));
  const got = [];
  const taken = held.take();
  taken.onopen = () => got.push('open');
  taken.onmessage = (ev) => got.push(ev.data);
  taken.onclose = () => got.push('close');
  assert.deepEqual(got, [], 'nothing before the taker has set its handlers');
  await Promise.resolve();
  assert.deepEqual(got, ['open', 'snapshot']);
  ws.dispatchEvent(Object.assign(new Event('message'), { data: 'state' }));
  ws.dispatchEvent(new Event('close'));
  assert.deepEqual(got, ['open', 'snapshot', 'state', 'close']);
  taken.close(1000);
  assert.equal(closed, 1000);
});
