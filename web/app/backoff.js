// backoff.js is the reconnection delay of the live connection: exponential
// from min to max, with jitter so that a room of screens does not reconnect
// in lockstep after a gateway restart.

/**
 * @typedef {object} BackoffOptions
 * @property {number} [minMs] first delay (default 1 s)
 * @property {number} [maxMs] longest delay (default 10 s)
 * @property {number} [factor] growth per failure (default 2)
 * @property {number} [jitter] extra share drawn at random, 0..jitter (default 0.2)
 * @property {() => number} [random] a source of [0, 1) (default Math.random)
 */

export class Backoff {
  /** @param {BackoffOptions} [opts] */
  constructor(opts = {}) {
    this.minMs = opts.minMs ?? 1000;
    this.maxMs = opts.maxMs ?? 10000;
    this.factor = opts.factor ?? 2;
    this.jitter = opts.jitter ?? 0.2;
    this.random = opts.random ?? Math.random;
    /** the base delay of the next attempt, before jitter */
    this.base = this.minMs;
  }

  /**
   * next is the delay before the next attempt; each call grows the one after.
   * @returns {number} milliseconds
   */
  next() {
    const d = Math.min(this.base, this.maxMs) * (1 + this.random() * this.jitter);
    this.base = Math.min(this.base * this.factor, this.maxMs);
    return d;
  }

  /** reset starts again from the shortest delay (after a good connection). */
  reset() {
    this.base = this.minMs;
  }

  /** slowest makes the next delay the longest (the server refused what we asked). */
  slowest() {
    this.base = this.maxMs;
  }
}
