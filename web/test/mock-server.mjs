// mock-server.mjs stands in for the gateway while the wall screen is built or
// tested on its own: it serves web/app, GET /v1/units from the seed
// boundaries, and a fake WebSocket /v1/live stream with the contract's frames.
// Every frame and Feature it sends is a copy of the gateway's golden files
// (services/gateway/testdata/live/*.golden.json, pinned by the gateway's
// TestLiveGolden) with only the values changed, so the mock cannot drift from
// the gateway's wire format.
// The WebSocket handshake and text frames are written by hand (RFC 6455,
// server side only) so the mock needs no dependency.
//
//   node test/mock-server.mjs [port]      # then open the printed URL
//
// Test hooks: POST /mock/drop?refuseMs=T closes every live socket and refuses
// new ones for T ms (to test reconnects);
// POST /mock/burst?n=N sends N state frames at once (to test throttling);
// POST /mock/rollup with a roll-up as JSON body sends it as a rollup frame
// (to test that a ward's colour follows its roll-up);
// startMock({ vendor: false }) answers 404 for app/vendor/* (to test the
// missing-library message).
import { createServer } from 'node:http';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { gunzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { AQI_BANDS } from '../app/aqi_bands.js';
import { UNITS_SIMPLIFY } from '../app/geo.js';
import { NATIONAL_SIMPLIFY } from '../app/early.js';
import { snapshotFeatures } from '../app/store.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const appDir = path.resolve(here, '..', 'app');
const seedDir = path.resolve(here, '..', '..', 'internal', 'seed');
const goldenDir = path.resolve(here, '..', '..', 'services', 'gateway', 'testdata', 'live');
const rollupGolden = path.resolve(here, '..', '..', 'services', 'aggregator', 'testdata', 'rollups.golden.json');

// The layers of the live view, each with a golden state frame.
export const LAYERS = ['air', 'traffic', 'water', 'weather', 'alert', 'report'];

// loadGolden reads the gateway's golden frames: the snapshot, the remove
// frame and one state frame per layer.
export async function loadGolden() {
  const read = async (name) => JSON.parse(await readFile(path.join(goldenDir, `${name}.golden.json`), 'utf8'));
  const golden = { snapshot: await read('snapshot'), remove: await read('remove'), state: {} };
  for (const layer of LAYERS) golden.state[layer] = await read(`state_${layer}`);
  return golden;
}

// loadRollupTemplates reads the aggregator's golden roll-ups and keeps, per
// layer, the one with the most members: the mock's roll-ups are copies of it
// with the figures changed, so they cannot drift from what the hub publishes.
export async function loadRollupTemplates() {
  const all = JSON.parse(await readFile(rollupGolden, 'utf8'));
  const best = {};
  for (const r of all) {
    if (!best[r.layer] || Object.keys(r).length > Object.keys(best[r.layer]).length) best[r.layer] = r;
  }
  return best;
}

// pm25Band is the VN_AQI band whose PM2.5 NowCast range holds pm25.
function pm25Band(pm25) {
  let band = 1;
  for (const b of AQI_BANDS) if (pm25 >= b.pm25From) band = b.level;
  return band;
}

// rollupsOf is the 1h roll-ups of air and traffic, per ward and for the
// province, of the world's entities now.
export function rollupsOf(templates, entities, province = '01') {
  const start = new Date(Math.floor(Date.now() / 3600e3) * 3600e3);
  const groups = new Map(); // "unit/layer" → features
  for (const f of entities) {
    const l = f.properties.layer;
    if (l !== 'air' && l !== 'traffic') continue;
    for (const u of [f.properties.unit, province]) {
      const k = `${u}/${l}`;
      if (!groups.has(k)) groups.set(k, []);
      groups.get(k).push(f);
    }
  }
  const out = [];
  for (const [k, fs] of groups) {
    const [unit, layer] = k.split('/');
    const r = { ...structuredClone(templates[layer]), unit, province, window: '1h', windowStart: start.toISOString(),
      windowEnd: new Date(start.getTime() + 3600e3).toISOString(), observations: fs.length, late: 0, stale: 0 };
    if (layer === 'air') {
      const bands = fs.map((f) => pm25Band(f.properties.observation.values.pm25));
      r.worstBand = Math.max(...bands);
      r.aqiMax = [0, 50, 100, 150, 200, 300, 400][r.worstBand];
      r.aqiMean = r.aqiMax;
      r.stationsKnown = fs.length;
      r.stationsReporting = fs.length;
      r.stationsByBand = Object.fromEntries([0, 1, 2, 3, 4, 5, 6].map((b) => [String(b), bands.filter((x) => x === b).length]));
    } else {
      const congested = fs.filter((f) => f.properties.observation.values.congested).length;
      r.meanSpeed = round7(fs.reduce((a, f) => a + f.properties.observation.values.averageVehicleSpeed, 0) / fs.length);
      r.segmentsKnown = fs.length;
      r.segmentsReporting = fs.length;
      r.congestedSegmentShare = congested / fs.length;
      r.congestedShare = r.congestedSegmentShare;
    }
    out.push(r);
  }
  return out.sort((a, b) => `${a.unit}/${a.layer}`.localeCompare(`${b.unit}/${b.layer}`));
}

// Frame builders: a golden frame with its payload replaced.
function snapshotFrame(golden, province, entities) {
  return { ...structuredClone(golden.snapshot), province, entities };
}

// compactSnapshotFrame is the snapshot frame in the compact form the
// gateway sends for snapshot=compact (services/gateway/snapshot_compact.go):
// the Features grouped by shape (their member paths, in order; a path ends at
// a value that is not an object, or at an empty object), the values every
// row of a shape of two or more rows shares in "same" by path index, the
// others in rows.
export function compactSnapshotFrame(province, entities) {
  const shapes = new Map();
  for (const f of entities) {
    const paths = [];
    const values = [];
    const walk = (o, at) => {
      for (const [k, v] of Object.entries(o)) {
        const p = [...at, k];
        if (v !== null && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length > 0) walk(v, p);
        else {
          paths.push(p);
          values.push(v);
        }
      }
    };
    walk(f, []);
    const key = JSON.stringify(paths);
    if (!shapes.has(key)) shapes.set(key, { paths, rows: [] });
    shapes.get(key).rows.push(values);
  }
  return {
    type: 'snapshot', province, shapes: [...shapes.values()].map(({ paths, rows }) => {
      const same = {};
      if (rows.length > 1) {
        paths.forEach((_, i) => {
          const v = JSON.stringify(rows[0][i]);
          if (rows.every((r) => JSON.stringify(r[i]) === v)) same[i] = rows[0][i];
        });
      }
      return { paths, same, rows: rows.map((r) => r.filter((_, i) => !(i in same))) };
    }),
  };
}

function stateFrame(golden, entity) {
  return { ...structuredClone(golden.state[entity.properties.layer]), entity };
}

// feature is the golden Feature of layer with id, geometry and the given
// properties replaced; nested objects (observation, alert, report, aqi)
// are replaced only in the members given, and a member given as undefined
// is left out (as the gateway leaves out an empty optional member).
export function feature(golden, layer, entityId, geometry, props) {
  const f = structuredClone(golden.state[layer].entity);
  f.id = `${layer}/${entityId}`;
  f.geometry = geometry;
  const p = f.properties;
  p.entityId = entityId;
  const merge = (into, from) => {
    for (const [k, v] of Object.entries(from)) {
      if (v === undefined) delete into[k];
      else if (v && typeof v === 'object' && !Array.isArray(v) && into[k] && typeof into[k] === 'object' && !Array.isArray(into[k])) merge(into[k], v);
      else into[k] = v;
    }
  };
  merge(p, props);
  return f;
}

// strayKeys lists the members of got that the golden value want does not
// have (objects are compared member by member, arrays by their first
// element): what the mock would send that the gateway never does.
export function strayKeys(got, want, where = '') {
  const isObj = (x) => x && typeof x === 'object' && !Array.isArray(x);
  if (Array.isArray(got) && Array.isArray(want)) {
    return want.length ? got.flatMap((g, i) => strayKeys(g, want[0], `${where}[${i}]`)) : [];
  }
  if (!isObj(got) || !isObj(want)) return [];
  return Object.keys(got).flatMap((k) => (k in want ? strayKeys(got[k], want[k], `${where}.${k}`) : [`${where}.${k}`]));
}

// alertID is the gateway's AlertID: the entity id in unpadded base64url.
const alertID = (entityId) => Buffer.from(entityId, 'utf8').toString('base64url');

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.txt': 'text/plain; charset=utf-8',
};

// A small deterministic PRNG (mulberry32) so every run shows the same city.
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const round7 = (x) => Math.round(x * 1e7) / 1e7;

function centroid(geometry) {
  let sx = 0;
  let sy = 0;
  let n = 0;
  const ring = geometry.type === 'MultiPolygon' ? geometry.coordinates[0][0] : geometry.coordinates[0];
  for (const [x, y] of ring) {
    sx += x;
    sy += y;
    n++;
  }
  return [round7(sx / n), round7(sy / n)];
}

// loadNationalUnits is /v1/units?province=VN: the national unit (no
// boundary) and the 34 provinces of the seed.
async function loadNationalUnits() {
  const provinces = JSON.parse(await readFile(path.join(seedDir, 'vn_provinces_2025_34.geojson'), 'utf8'));
  return {
    type: 'FeatureCollection',
    features: [
      { type: 'Feature', id: 'VN', geometry: null, properties: { code: 'VN', level: 'national', parentCode: null, name: 'Việt Nam', nameEn: 'Viet Nam' } },
      ...provinces.features.map((f) => ({
        type: 'Feature', id: f.properties.code, geometry: f.geometry,
        properties: { code: f.properties.code, level: 'province', parentCode: 'VN', name: f.properties.name, nameEn: f.properties.nameEn },
      })),
    ],
  };
}

// nationalRollups are the provinces' own air roll-ups of the hour, as a
// national hub's view of VN carries them: bands 1..6 in turn, and 79's hub
// stale (docs/api.md).
export function nationalRollups(templates, codes) {
  const start = Math.floor(Date.now() / 3600e3) * 3600e3;
  return codes.map((code, i) => ({
    ...structuredClone(templates.air), unit: code, province: code, window: '1h',
    windowStart: new Date(start).toISOString(), windowEnd: new Date(start + 3600e3).toISOString(),
    worstBand: 1 + (i % 6), aqiMax: 40 + 50 * (i % 6), ...(code === '79' ? { hubStale: true } : {}),
  }));
}

async function loadUnits() {
  const wards = JSON.parse(await readFile(path.join(seedDir, 'hanoi_wards_2025.geojson'), 'utf8'));
  const provinces = JSON.parse(await readFile(path.join(seedDir, 'vn_provinces_2025_34.geojson'), 'utf8'));
  const hn = provinces.features.find((f) => f.properties.code === '01');
  const unit = (f, level, parentCode) => ({
    type: 'Feature',
    id: f.properties.code,
    geometry: f.geometry,
    properties: { code: f.properties.code, level, parentCode, name: f.properties.name, nameEn: f.properties.nameEn },
  });
  return {
    type: 'FeatureCollection',
    features: [unit(hn, 'province', ''), ...wards.features.map((f) => unit(f, 'commune', '01'))],
  };
}

// World is the fake city: stations at ward centroids, segments between
// neighbouring centroids, and a couple of alerts.
class World {
  constructor(units, golden, extraStations = 0) {
    this.golden = golden;
    this.rand = rng(20250701);
    this.entities = new Map();
    const wards = units.features.filter((f) => f.properties.level !== 'province');
    this.wards = wards.map((f) => ({ code: f.properties.code, name: f.properties.name, c: centroid(f.geometry), geometry: f.geometry }));
    const now = new Date().toISOString();
    // 12 air stations spread over the wards list.
    for (let i = 0; i < 12; i++) {
      const w = this.wards[(i * 10) % this.wards.length];
      this.entities.set(`air/st-${i}`, this.air(`st-${i}`, `Trạm ${w.name}`, w, now));
    }
    // 10 traffic segments between consecutive wards.
    for (let i = 0; i < 10; i++) {
      const a = this.wards[(i * 7) % this.wards.length];
      const b = this.wards[(i * 7 + 1) % this.wards.length];
      this.entities.set(`traffic/seg-${i}`, this.traffic(`seg-${i}`, `Đường ${a.name} – ${b.name}`, a, b.c, now));
    }
    // More air stations, for the speed test (a province with thousands of live entities).
    for (let i = 0; i < extraStations; i++) {
      const w = this.wards[i % this.wards.length];
      const at = { ...w, c: [round7(w.c[0] + (this.rand() - 0.5) * 0.01), round7(w.c[1] + (this.rand() - 0.5) * 0.01)] };
      this.entities.set(`air/bulk-${i}`, this.air(`bulk-${i}`, `Trạm ${w.name} ${i}`, at, now));
    }
    // 3 water and 3 weather stations.
    for (let i = 0; i < 3; i++) {
      const w = this.wards[(i * 17 + 3) % this.wards.length];
      this.entities.set(`water/hydro-${i}`, this.station('water', `hydro-${i}`, `Trạm thủy văn ${w.name}`, w, now, { waterLevel: round7(8 + this.rand() * 4) }));
      const x = this.wards[(i * 17 + 9) % this.wards.length];
      this.entities.set(`weather/wx-${i}`, this.station('weather', `wx-${i}`, `Trạm khí tượng ${x.name}`, x, now, { temperature: round7(25 + this.rand() * 10) }));
    }
    const w0 = this.wards[0];
    const w1 = this.wards[5];
    this.entities.set('alert/cap-1', this.alert('cap-1', [w0.code], { type: 'MultiPolygon', coordinates: w0.geometry.type === 'MultiPolygon' ? w0.geometry.coordinates : [w0.geometry.coordinates] }, 'Severe',
      'Ngập úng cục bộ tại phường ' + w0.name, 'Local flooding in ' + w0.name, new Date(Date.now() - 600_000).toISOString()));
    this.entities.set('alert/cap-2', this.alert('cap-2', [w1.code], { type: 'Point', coordinates: w1.c }, 'Moderate',
      'Sự cố giao thông gần ' + w1.name, 'Traffic incident near ' + w1.name, new Date(Date.now() - 300_000).toISOString()));
    // cap-2 is acknowledged (POST /v1/alerts/{id}/ack), as the gateway sends it.
    Object.assign(this.entities.get('alert/cap-2').properties.alert,
      { acked: true, ackedBy: 'op-hn-01 as Nguyễn Văn A', ackedAt: new Date(Date.now() - 120_000).toISOString() });
    this.alertSeq = 3;
  }

  // obs is the observation of entity id at time with the golden values of
  // layer, changed by values.
  obs(layer, id, time, values) {
    const golden = this.golden.state[layer].entity.properties.observation.values;
    return { id: `${id}@${time}`, time, values: { ...golden, ...values } };
  }

  air(id, name, w, time) {
    const pm25 = round7(5 + this.rand() * 280);
    return feature(this.golden, 'air', id, { type: 'Point', coordinates: w.c }, {
      name, province: '01', unit: w.code, updatedAt: time,
      observation: this.obs('air', id, time, { pm25, pm10: round7(pm25 * 1.4) }),
      aqi: { hour: time },
    });
  }

  traffic(id, name, w, to, time) {
    const speed = round7(5 + this.rand() * 50);
    return feature(this.golden, 'traffic', id,
      { type: 'LineString', coordinates: [w.c, [round7((w.c[0] + to[0]) / 2 + 0.002), round7((w.c[1] + to[1]) / 2)], to] }, {
        name, province: '01', unit: w.code, updatedAt: time,
        observation: this.obs('traffic', id, time, { intensity: Math.round(200 + this.rand() * 1800), averageVehicleSpeed: speed, congested: speed < 15 }),
      });
  }

  station(layer, id, name, w, time, values) {
    return feature(this.golden, layer, id, { type: 'Point', coordinates: w.c }, {
      name, province: '01', unit: w.code, updatedAt: time, observation: this.obs(layer, id, time, values),
    });
  }

  alert(id, codes, geometry, severity, headlineVI, headlineEN, sent) {
    const expires = new Date(Date.now() + 3600_000).toISOString();
    const [vi, en] = this.golden.state.alert.entity.properties.alert.info;
    const info = (golden, headline) => ({ ...structuredClone(golden), severity, headline, description: headline, expires });
    return feature(this.golden, 'alert', id, geometry, {
      name: headlineVI, province: '01', unit: codes[0], updatedAt: sent,
      observation: { id, time: sent },
      alert: {
        id: alertID(id), identifier: id, sender: 'ioc-hanoi@example.vn', sent, state: 'active', units: codes,
        info: [info(vi, headlineVI), info(en, headlineEN)], acked: false, ackedBy: undefined, ackedAt: undefined,
      },
    });
  }

  // tick changes one random station or segment and, now and then, adds an alert.
  tick() {
    const now = new Date().toISOString();
    const r = this.rand();
    if (r < 0.02) {
      const w = this.wards[Math.floor(this.rand() * this.wards.length)];
      const id = `cap-${this.alertSeq++}`;
      const f = this.alert(id, [w.code], { type: 'Point', coordinates: w.c }, 'Minor', 'Cảnh báo bụi mịn tại ' + w.name, 'Fine dust warning in ' + w.name, now);
      this.entities.set(f.id, f);
      return f;
    }
    const keys = (this.tickKeys ??= [...this.entities.keys()].filter((k) => k.startsWith('air/') || k.startsWith('traffic/')));
    const key = keys[Math.floor(this.rand() * keys.length)];
    const f = structuredClone(this.entities.get(key));
    const v = f.properties.observation.values;
    if (f.properties.layer === 'air') {
      v.pm25 = round7(Math.max(1, v.pm25 + (this.rand() - 0.5) * 30));
      v.pm10 = round7(v.pm25 * 1.4);
    } else {
      v.averageVehicleSpeed = round7(Math.min(70, Math.max(2, v.averageVehicleSpeed + (this.rand() - 0.5) * 12)));
      v.congested = v.averageVehicleSpeed < 15;
    }
    f.properties.updatedAt = now;
    f.properties.observation.time = now;
    f.properties.observation.id = `${f.properties.entityId}@${now}`;
    this.entities.set(key, f);
    return f;
  }
}

// ---- minimal RFC 6455 server side -------------------------------------------

const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

function frame(opcode, payload) {
  const len = payload.length;
  let header;
  if (len < 126) {
    header = Buffer.from([0x80 | opcode, len]);
  } else if (len < 65536) {
    header = Buffer.alloc(4);
    header[0] = 0x80 | opcode;
    header[1] = 126;
    header.writeUInt16BE(len, 2);
  } else {
    header = Buffer.alloc(10);
    header[0] = 0x80 | opcode;
    header[1] = 127;
    header.writeBigUInt64BE(BigInt(len), 2);
  }
  return Buffer.concat([header, payload]);
}

function textFrame(s) {
  return frame(0x1, Buffer.from(s, 'utf8'));
}

function closeFrame(code, reason) {
  const b = Buffer.alloc(2 + Buffer.byteLength(reason));
  b.writeUInt16BE(code, 0);
  b.write(reason, 2);
  return frame(0x8, b);
}

// readFrames consumes complete client frames (always masked) from buf and
// calls onFrame(opcode, payload); it returns the unconsumed rest.
function readFrames(buf, onFrame) {
  for (;;) {
    if (buf.length < 2) return buf;
    const opcode = buf[0] & 0x0f;
    let len = buf[1] & 0x7f;
    let off = 2;
    if (len === 126) {
      if (buf.length < 4) return buf;
      len = buf.readUInt16BE(2);
      off = 4;
    } else if (len === 127) {
      if (buf.length < 10) return buf;
      len = Number(buf.readBigUInt64BE(2));
      off = 10;
    }
    const masked = (buf[1] & 0x80) !== 0;
    const need = off + (masked ? 4 : 0) + len;
    if (buf.length < need) return buf;
    const payload = Buffer.from(buf.subarray(off + (masked ? 4 : 0), need));
    if (masked) {
      const mask = buf.subarray(off, off + 4);
      for (let i = 0; i < payload.length; i++) payload[i] ^= mask[i & 3];
    }
    onFrame(opcode, payload);
    buf = buf.subarray(need);
  }
}

// ---- the server ---------------------------------------------------------------

export async function startMock({ port = 0, host = '127.0.0.1', tickMs = 300, vendor = true, extraStations = 0 } = {}) {
  const units = await loadUnits();
  const unitsBody = JSON.stringify(units);
  // The gateway's answer at the tolerance the wall asks for (testdata/SOURCES.md).
  const nationalBody = JSON.stringify(await loadNationalUnits());
  /** @type {Set<import('node:net').Socket>} the views of VN */
  const nationalSockets = new Set();
  const simplifiedBody = gunzipSync(await readFile(path.join(here, 'testdata', `units-01-simplify-${UNITS_SIMPLIFY}.geojson.gz`)));
  let unitsRequests = 0;
  const golden = await loadGolden();
  const world = new World(units, golden, extraStations);
  const templates = await loadRollupTemplates();
  const sockets = new Set();
  const rollupSockets = new WeakSet(); // sockets that asked ?rollups=
  // sendRollups sends the roll-ups of f's ward and of the province to the sockets that asked.
  const sendRollups = (f) => {
    const all = rollupsOf(templates, [...world.entities.values()]);
    const frames = all.filter((r) => r.layer === f.properties.layer && (r.unit === f.properties.unit || r.unit === '01'))
      .map((r) => textFrame(JSON.stringify({ type: 'rollup', rollup: r })));
    for (const s of sockets) if (rollupSockets.has(s)) for (const b of frames) s.write(b);
  };
  let refuseUntil = 0; // live upgrades are refused until then (ms since epoch)

  const server = createServer(async (req, res) => {
    const url = new URL(req.url, 'http://mock');
    if (req.method === 'GET' && url.pathname === '/v1/units' && url.searchParams.get('province') === 'VN') {
      const simplify = url.searchParams.get('simplify');
      if (simplify !== String(NATIONAL_SIMPLIFY)) {
        res.writeHead(400, { 'Content-Type': 'application/problem+json' });
        res.end(JSON.stringify({ title: 'bad request', detail: `the mock has the national units at simplify=${NATIONAL_SIMPLIFY} only, not ${simplify}` }));
        return;
      }
      unitsRequests++;
      res.writeHead(200, { 'Content-Type': 'application/geo+json' });
      res.end(nationalBody);
      return;
    }
    if (req.method === 'GET' && url.pathname === '/v1/units') {
      if (url.searchParams.get('province') !== '01') {
        res.writeHead(404, { 'Content-Type': 'application/problem+json' });
        res.end(JSON.stringify({ title: 'unknown province', detail: `province ${url.searchParams.get('province')} has no units in the mock` }));
        return;
      }
      const simplify = url.searchParams.get('simplify');
      if (simplify !== null && simplify !== String(UNITS_SIMPLIFY)) {
        res.writeHead(400, { 'Content-Type': 'application/problem+json' });
        res.end(JSON.stringify({ title: 'bad request', detail: `the mock has the units simplified at ${UNITS_SIMPLIFY} only, not ${simplify}` }));
        return;
      }
      unitsRequests++;
      res.writeHead(200, { 'Content-Type': 'application/geo+json' });
      res.end(simplify === null ? unitsBody : simplifiedBody);
      return;
    }
    if (req.method === 'GET' && url.pathname === '/v1/session') {
      // The mock has no access control: every browser is signed in (as the gateway answers who am I).
      res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' });
      res.end(JSON.stringify({ principal: { id: 'mock', name: 'mock viewer', role: 'viewer', scopes: ['01'] } }));
      return;
    }
    if (req.method === 'GET' && url.pathname === '/v1/history') {
      if (url.searchParams.has('unit')) {
        // A unit's history from its roll-ups (the tiles' trends): what roll-ups keep per layer
        // (air aqi mean/max, traffic speed mean, water level max), in the buckets of from, to and points.
        const layer = url.searchParams.get('layer');
        const from = Date.parse(url.searchParams.get('from') ?? '');
        const to = Date.parse(url.searchParams.get('to') ?? '');
        const points = Math.min(Number(url.searchParams.get('points') ?? 500), 10000);
        const figure = { air: ['aqi', { mean: 60, max: 95 }], traffic: ['speed', { mean: 27 }], water: ['level', { max: 3.2 }] }[layer];
        if (!figure || Number.isNaN(from) || Number.isNaN(to) || !(to > from) || !(points > 0)) {
          res.writeHead(400, { 'Content-Type': 'application/problem+json' });
          res.end(JSON.stringify({ title: 'bad request', detail: 'the mock answers unit histories of air, traffic and water with from < to and points' }));
          return;
        }
        const bucket = Math.ceil((to - from) / points / 60e3) * 60e3;
        const [value, stats] = figure;
        const items = [];
        for (let t = from, i = 0; t < Math.min(to, Date.now()); t += bucket, i++) {
          const k = 0.8 + 0.3 * Math.sin(i / 6);
          items.push({ t: new Date(t).toISOString(), count: 5, [value]: Object.fromEntries(Object.entries(stats).map(([st, v]) => [st, round7(v * k)])) });
        }
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ layer, unit: url.searchParams.get('unit'), from: new Date(from).toISOString(), to: new Date(to).toISOString(), points, bucketSeconds: bucket / 1000, source: 'rollup:1m', values: { [value]: Object.keys(stats) }, items }));
        return;
      }
      // The shape of GET /v1/history (docs/api.md): 24 hourly points around the entity's value now.
      const f = [...world.entities.values()].find((e) => e.properties.entityId === url.searchParams.get('entity'));
      const v = f?.properties.observation.values ?? {};
      const base = v.pm25 ?? v.averageVehicleSpeed ?? v.waterLevel ?? v.temperature ?? 10;
      const value = { air: 'pm25', traffic: 'speed', water: 'level', weather: 'temperature' }[url.searchParams.get('layer')] ?? 'pm25';
      const to = Math.floor(Date.now() / 3600e3) * 3600e3;
      const items = Array.from({ length: 24 }, (_, i) => ({
        t: new Date(to - (23 - i) * 3600e3).toISOString(), count: 60,
        [value]: { min: round7(base * 0.6), mean: round7(base * (0.8 + 0.4 * Math.sin(i / 3))), max: round7(base * 1.3) },
      }));
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ layer: url.searchParams.get('layer'), from: items[0].t, to: new Date(to + 3600e3).toISOString(), points: 24, bucketSeconds: 3600, source: 'raw', items }));
      return;
    }
    if (req.method === 'POST' && url.pathname === '/mock/drop') {
      refuseUntil = Date.now() + Number(url.searchParams.get('refuseMs') ?? 0);
      for (const s of sockets) s.end(closeFrame(1012, 'mock restart'));
      sockets.clear();
      res.writeHead(204);
      res.end();
      return;
    }
    if (req.method === 'POST' && url.pathname === '/mock/rollup') {
      let body = '';
      for await (const chunk of req) body += chunk;
      const bytes = textFrame(JSON.stringify({ type: 'rollup', rollup: JSON.parse(body) }));
      for (const s of sockets) if (rollupSockets.has(s)) s.write(bytes);
      res.writeHead(204);
      res.end();
      return;
    }
    if (req.method === 'POST' && url.pathname === '/mock/burst') {
      // n state frames at once, as a busy gateway would send them.
      const n = Math.min(Number(url.searchParams.get('n') ?? 100), 10000);
      for (let i = 0; i < n; i++) {
        const bytes = textFrame(JSON.stringify(stateFrame(golden, world.tick())));
        for (const s of sockets) s.write(bytes);
      }
      res.writeHead(204);
      res.end();
      return;
    }
    if (req.method !== 'GET') {
      res.writeHead(405);
      res.end();
      return;
    }
    let rel = decodeURIComponent(url.pathname);
    if (rel.endsWith('/')) rel += 'index.html';
    const file = path.resolve(appDir, '.' + rel);
    if (!file.startsWith(appDir + path.sep) || (!vendor && rel.startsWith('/vendor/'))) {
      res.writeHead(404);
      res.end('not found');
      return;
    }
    try {
      const body = await readFile(file);
      res.writeHead(200, { 'Content-Type': TYPES[path.extname(file)] ?? 'application/octet-stream', 'Cache-Control': 'no-store' });
      res.end(body);
    } catch {
      res.writeHead(404);
      res.end('not found');
    }
  });

  server.on('upgrade', (req, socket) => {
    const url = new URL(req.url, 'http://mock');
    if (Date.now() < refuseUntil) {
      socket.end('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    const key = req.headers['sec-websocket-key'];
    if (url.pathname !== '/v1/live' || !key || (req.headers.upgrade ?? '').toLowerCase() !== 'websocket') {
      socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
      return;
    }
    const accept = createHash('sha1').update(key + WS_GUID).digest('base64');
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
    socket.setNoDelay(true);
    sockets.add(socket);
    let pending = Buffer.alloc(0);
    socket.on('data', (chunk) => {
      pending = readFrames(Buffer.concat([pending, chunk]), (op, payload) => {
        if (op === 0x8) {
          socket.end(closeFrame(1000, ''));
          sockets.delete(socket);
        } else if (op === 0x9) {
          socket.write(frame(0xa, payload));
        }
      });
    });
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => sockets.delete(socket));
    if (url.searchParams.get('unit') === 'VN') {
      // The view of VN at a national hub: no snapshot, no states; the provinces' roll-ups.
      nationalSockets.add(socket);
      sockets.delete(socket);
      socket.on('close', () => nationalSockets.delete(socket));
      const codes = JSON.parse(nationalBody).features.filter((f) => f.properties.level === 'province').map((f) => f.properties.code);
      socket.write(textFrame(JSON.stringify({ type: 'rollups', unit: 'VN', rollups: nationalRollups(templates, codes) })));
      return;
    }
    const entities = [...world.entities.values()];
    socket.write(textFrame(JSON.stringify(url.searchParams.get('snapshot') === 'compact'
      ? compactSnapshotFrame('01', entities) : snapshotFrame(golden, '01', entities))));
    if (url.searchParams.has('rollups')) {
      // As the gateway: the roll-ups it holds, in one frame after the snapshot.
      rollupSockets.add(socket);
      socket.write(textFrame(JSON.stringify({ type: 'rollups', province: '01', rollups: rollupsOf(templates, [...world.entities.values()]) })));
    }
  });

  let paused = false;
  const timer = setInterval(() => {
    if (paused || sockets.size === 0) return;
    const f = world.tick();
    const bytes = textFrame(JSON.stringify(stateFrame(golden, f)));
    for (const s of sockets) s.write(bytes);
    sendRollups(f);
  }, tickMs);

  await new Promise((resolve) => server.listen(port, host, resolve));
  const addr = server.address();
  return {
    url: `http://${host}:${addr.port}`,
    world,
    golden,
    templates,
    /** GET /v1/units answered */
    unitsRequests: () => unitsRequests,
    // pause stops the ticking stream (bursts still go out), so a test can
    // compare the page with the world.
    pause() { paused = true; },
    resume() { paused = false; },
    async close() {
      clearInterval(timer);
      for (const s of sockets) s.destroy();
      for (const s of nationalSockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

// selfTest checks the mock against the contract it stands in for. It runs
// when a test runner is given the whole test/ folder and so starts this file
// as a test file of its own: then the file is a real test, not an empty pass.
async function selfTest() {
  const { test } = await import('node:test');
  const assert = (await import('node:assert/strict')).default;
  const http = await import('node:http');
  test('the mock serves the units and a live snapshot as the gateway does', async () => {
    const m = await startMock({ tickMs: 50 });
    try {
      const res = await fetch(`${m.url}/v1/units?province=01`);
      assert.equal(res.status, 200);
      const fc = await res.json();
      assert.equal(fc.features.filter((f) => f.properties.level !== 'province').length, 126);
      assert.equal(fc.features.filter((f) => f.properties.level === 'province').length, 1);
      assert.equal((await fetch(`${m.url}/v1/units?province=99`)).status, 404);
      const frames = await new Promise((resolve, reject) => {
        const req = http.request(`${m.url}/v1/live?province=01`, {
          headers: { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==' },
        });
        req.on('upgrade', (resp, socket, head) => {
          assert.equal(resp.headers['sec-websocket-accept'], 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
          const got = [];
          let rest = Buffer.alloc(0);
          const onData = (chunk) => {
            rest = readFrames(Buffer.concat([rest, chunk]), (op, payload) => {
              if (op === 0x1) got.push(JSON.parse(payload.toString('utf8')));
            });
            if (got.length >= 2) {
              socket.destroy();
              resolve(got);
            }
          };
          socket.on('data', onData);
          socket.on('error', reject);
          onData(head); // bytes that came with the 101 answer
        });
        req.on('error', reject);
        req.end();
      });
      assert.equal(frames[0].type, 'snapshot');
      assert.equal(frames[0].province, '01');
      // Every frame and Feature has the gateway's members and no others.
      const g = m.golden;
      assert.deepEqual(Object.keys(frames[0]), Object.keys(g.snapshot), 'snapshot frame members');
      assert.deepEqual(Object.keys(frames[1]), Object.keys(g.state.air), 'state frame members');
      const layers = new Set();
      for (const f of [...frames[0].entities, frames[1].entity]) {
        const want = g.state[f.properties.layer]?.entity;
        assert.ok(want, `layer ${f.properties.layer} has no golden frame`);
        assert.deepEqual(strayKeys(f, want), [], `${f.id}: members the gateway does not send`);
        assert.deepEqual(Object.keys(f.properties), Object.keys(want.properties), `${f.id}: properties`);
        layers.add(f.properties.layer);
      }
      assert.deepEqual([...layers].sort(), ['air', 'alert', 'traffic', 'water', 'weather'], 'layers in the snapshot');
      assert.ok(frames[0].entities.some((f) => f.properties.layer === 'air' && f.geometry.type === 'Point'));
      assert.ok(frames[0].entities.some((f) => f.properties.layer === 'traffic' && f.geometry.type === 'LineString'));
      // Roll-ups have the aggregator's members (its golden roll-ups) and no others.
      const rs = rollupsOf(m.templates, [...m.world.entities.values()]);
      for (const r of rs) assert.deepEqual(strayKeys(r, m.templates[r.layer]), [], `roll-up ${r.unit}/${r.layer}: members the hub does not publish`);
      assert.ok(rs.some((r) => r.unit === '01' && r.layer === 'air' && r.worstBand >= 1), 'a province air roll-up');
      assert.equal(frames[1].type, 'state');
      assert.match(frames[1].entity.id, /^(air|traffic|alert)\//);
      // The compact form: the gateway's for its golden Features, and the same Features unpacked.
      const compactGolden = JSON.parse(await readFile(path.join(goldenDir, 'snapshot_compact.golden.json'), 'utf8'));
      assert.deepEqual(compactSnapshotFrame('01', g.snapshot.entities), compactGolden, 'compact snapshot of the golden Features');
      assert.deepEqual(snapshotFeatures(compactGolden), g.snapshot.entities, 'golden compact snapshot unpacked');
      const mine = [...m.world.entities.values()];
      const byId = (fs) => Object.fromEntries(fs.map((f) => [f.id, f]));
      const unpacked = snapshotFeatures(JSON.parse(JSON.stringify(compactSnapshotFrame('01', mine))));
      assert.equal(unpacked.length, mine.length);
      assert.deepEqual(byId(unpacked), byId(JSON.parse(JSON.stringify(mine))), 'the mock\'s compact snapshot unpacked');
    } finally {
      await m.close();
    }
  });
}

const isMain = process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain && process.env.NODE_TEST_CONTEXT) {
  await selfTest();
} else if (isMain) {
  const m = await startMock({ port: Number(process.argv[2] ?? 8088) });
  console.log(`mock wall-screen server on ${m.url}/`);
}
