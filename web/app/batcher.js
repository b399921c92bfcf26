// batcher.js conflates redraws: however many frames arrive, the screen is
// redrawn at most once per animation frame and no more often than every
// minIntervalMs, with everything that changed since the last redraw.

/**
 * @typedef {object} BatcherOptions
 * @property {number} [minIntervalMs] at least this long between two flushes (default 250)
 * @property {(fn: FrameRequestCallback) => any} [raf] default requestAnimationFrame
 * @property {(fn: () => void, ms: number) => any} [setTimer] default setTimeout
 * @property {() => number} [now] default performance.now
 * @property {number} [maxIntervalMs] the interval grows up to this while redraws are slow (default 2000)
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
    /** a flush asked by soon() is pending (no interval to wait out) */
    this.urgent = false;
    /** bumped by each flush: a timer or frame asked before it is stale */
    this.generation = 0;
    this.last = -Infinity;
    /** the longest a flush may wait: the interval grows up to it under load */
    this.maxIntervalMs = opts.maxIntervalMs ?? 2000;
    /** the interval now: minIntervalMs, or more while redraws are slow */
    this.intervalMs = this.minIntervalMs;
    /** flushes done */
    this.flushes = 0;
    /** requests since the last flush, and in all */
    this.requests = 0;
    this.totalRequests = 0;
    /** durations of the last flushes, ms (at most 200 kept) */
    /** @type {number[]} */
    this.durations = [];
    /** the cost of the last redraw and its paint, ms */
    this.lastCostMs = 0;
  }

  /** schedule asks for a flush; calls before it happens are merged into it. */
  schedule() {
    this.requests++;
    this.totalRequests++;
    if (this.pending) return;
    this.pending = true;
    const gen = this.generation;
    const wait = Math.max(0, this.intervalMs - (this.now() - this.last));
    this.setTimer(() => this.raf(() => { if (gen === this.generation) this.run(); }), wait);
  }

  /**
   * soon asks for a flush at the next animation frame, without waiting out
   * the interval (the first data worth showing: the interval, grown by the
   * slow first redraws, would hold it back up to maxIntervalMs); a flush
   * already pending is brought forward and still made once.
   */
  soon() {
    this.requests++;
    this.totalRequests++;
    if (this.urgent) return;
    this.pending = true;
    this.urgent = true;
    const gen = this.generation;
    this.raf(() => { if (gen === this.generation) this.run(); });
  }

  /** now flushes at once (e.g. after a click), whether or not one is pending. */
  flushNow() {
    this.run();
  }

  run() {
    this.pending = false;
    this.urgent = false;
    this.generation++;
    this.requests = 0;
    const t0 = this.now();
    this.last = t0;
    this.flushes++;
    this.flushFn();
    const took = this.now() - t0;
    this.durations.push(took);
    if (this.durations.length > 200) this.durations.shift();
    // Under load, redraw less often so that the frames keep being read: at
    // most a quarter of the time goes to redrawing (and painting, measured
    // to the next animation frame).
    this.raf(() => this.adapt(this.now() - t0));
  }

  /**
   * adapt sets the interval from the cost of the last redraw and its paint.
   * @param {number} cost ms
   */
  adapt(cost) {
    this.lastCostMs = cost;
    this.intervalMs = Math.min(this.maxIntervalMs, Math.max(this.minIntervalMs, 4 * cost));
  }
}
