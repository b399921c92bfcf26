// connection.js keeps the wall screen's WebSocket to the gateway's live view
// (/v1/live) open: it reconnects with backoff after any loss, and drops the
// frames of a socket it has already given up, so that a resumed view never
// mixes two streams. Every reconnection starts with a fresh snapshot, which
// the store takes in place of what it held: nothing is duplicated. A batch
// frame ({"type":"batch","frames":[...]}, asked with batch=1) is unpacked
// into its frames, in order, as if each had come alone.
import { Backoff } from './backoff.js';

/** @typedef {'connecting' | 'online' | 'offline'} ConnState */

/**
 * @typedef {object} LiveOptions
 * @property {string} url the ws:// or wss:// URL of /v1/live with its query
 * @property {(msg: any) => void} onFrame called with each parsed frame of the current socket
 *   (each frame of a batch frame in turn)
 * @property {(state: ConnState, retryMs: number) => void} onState called when the state changes
 * @property {(code: number, wasOnline: boolean) => Promise<void> | void} [beforeRetry]
 *   awaited after a close, before the delay (e.g. to sign in again)
 * @property {(url: string) => WebSocket} [open] makes a socket (default new WebSocket)
 * @property {(fn: () => void, ms: number) => any} [setTimer] default setTimeout
 * @property {Backoff} [backoff]
 */

// Close codes of services/gateway/closecodes.go that matter here.
export const CLOSE_POLICY = 1008;

export class LiveConnection {
  /** @param {LiveOptions} opts */
  constructor(opts) {
    this.url = opts.url;
    this.onFrame = opts.onFrame;
    this.onState = opts.onState;
    this.beforeRetry = opts.beforeRetry ?? (() => {});
    this.open = opts.open ?? ((u) => new WebSocket(u));
    this.setTimer = opts.setTimer ?? ((fn, ms) => setTimeout(fn, ms));
    this.backoff = opts.backoff ?? new Backoff();
    /** @type {ConnState} */
    this.state = 'connecting';
    /** frames received, parsed or not */
    this.frames = 0;
    /** frames of a socket already given up, dropped */
    this.staleFrames = 0;
    /** sockets opened */
    this.attempts = 0;
    this.generation = 0;
    this.stopped = false;
    /** @type {WebSocket | null} */
    this.ws = null;
  }

  /** @param {ConnState} state @param {number} [retryMs] */
  setState(state, retryMs = 0) {
    this.state = state;
    this.onState(state, retryMs);
  }

  /** start opens the first socket. */
  start() {
    this.stopped = false;
    this.connect();
  }

  /** stop closes the socket and opens no other. */
  stop() {
    this.stopped = true;
    this.generation++;
    this.ws?.close(1000);
    this.ws = null;
  }

  /** snapshotTaken is called by the owner when a snapshot arrived: the link is good. */
  snapshotTaken() {
    this.backoff.reset();
    if (this.state !== 'online') this.setState('online');
  }

  connect() {
    if (this.stopped) return;
    const gen = ++this.generation;
    this.attempts++;
    this.setState('connecting');
    let ws;
    try {
      ws = this.open(this.url);
    } catch (err) {
      console.warn('opening live socket', err);
      this.retry(gen);
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      if (gen === this.generation) this.setState('online');
    };
    ws.onmessage = (ev) => {
      this.frames++;
      if (gen !== this.generation) {
        this.staleFrames++;
        return;
      }
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch (err) {
        console.warn('live frame is not JSON', err);
        return;
      }
      if (msg?.type === 'batch' && Array.isArray(msg.frames)) {
        for (const f of msg.frames) {
          // onFrame may give the socket up: the rest of its batch goes with it.
          if (gen !== this.generation) return;
          this.onFrame(f);
        }
        return;
      }
      this.onFrame(msg);
    };
    ws.onclose = async (ev) => {
      if (gen !== this.generation) return;
      const wasOnline = this.state === 'online';
      console.info('live socket closed', ev.code, ev.reason);
      // Whatever that socket still delivers is of a stream given up.
      this.generation++;
      // A live view lost: the screen says so at once, not after beforeRetry
      // (which may wait for the sign-in or ask the gateway who is signed
      // in). A socket that never opened leaves the state 'connecting'
      // (a page waiting for its sign-in is not offline).
      if (wasOnline) this.setState('offline');
      await this.beforeRetry(ev.code, wasOnline);
      // 1008: the gateway refused what we asked; retrying at once will not
      // help, but a wall screen keeps trying, slowly (a deploy may fix it).
      if (ev.code === CLOSE_POLICY) this.backoff.slowest();
      this.retry(this.generation);
    };
    // onerror is always followed by onclose, which retries.
    ws.onerror = () => {};
  }

  /** @param {number} gen */
  retry(gen) {
    if (this.stopped || gen !== this.generation) return;
    const delay = this.backoff.next();
    this.setState('offline', delay);
    this.setTimer(() => {
      if (gen === this.generation) this.connect();
    }, delay);
  }
}
