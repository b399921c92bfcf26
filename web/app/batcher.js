// batcher.js conflates redraws: however many frames arrive, the screen is
// redrawn at most once per animation frame and no more often than every
// minIntervalMs, with everything that changed since the last redraw.

/**
 * @typedef {object} BatcherOptions
 * @property {number} [minIntervalMs] at least this long between two flushes (default 250)
 * @property {(fn: FrameRequestCallback) => any} [raf] default requestAnimationFrame
 * @property {(fn: () => void, ms: number) => any} [setTimer] default setTimeout
 * @property {() => number} [now] default performance.now
 */

export class FrameBatcher {
  /**
   * @param {() => void} flush redraws what changed
   * @param {BatcherOptions} [opts]
   */
  constructor(flush, opts = {}) {
    this.flushFn = flush;
    this.minIntervalMs = opts.minIntervalMs ?? 250;
    this.raf = opts.raf ?? ((fn) => requestAnimationFrame(fn));
    this.setTimer = opts.setTimer ?? ((fn, ms) => setTimeout(fn, ms));
    this.now = opts.now ?? (() => performance.now());
    this.pending = false;
    this.last = -Infinity;
    /** flushes done */
    this.flushes = 0;
    /** requests since the last flush, and in all */
    this.requests = 0;
    this.totalRequests = 0;
    /** durations of the last flushes, ms (at most 200 kept) */
    /** @type {number[]} */
    this.durations = [];
  }

  /** schedule asks for a flush; calls before it happens are merged into it. */
  schedule() {
    this.requests++;
    this.totalRequests++;
    if (this.pending) return;
    this.pending = true;
    const wait = Math.max(0, this.minIntervalMs - (this.now() - this.last));
    this.setTimer(() => this.raf(() => this.run()), wait);
  }

  /** now flushes at once (e.g. after a click), whether or not one is pending. */
  flushNow() {
    this.run();
  }

  run() {
    this.pending = false;
    this.requests = 0;
    const t0 = this.now();
    this.last = t0;
    this.flushes++;
    this.flushFn();
    this.durations.push(this.now() - t0);
    if (this.durations.length > 200) this.durations.shift();
  }
}
