// replayclock.js is the clock of the wall screen's replay: the replayed
// instant advances with wall time at 1×, 4× or 8×, can be paused and moved,
// and ends when it reaches the present, where the screen goes back to live.
// It is pure: every method takes the wall time (ms) it applies at.

/** REPLAY_SPAN_MS is how far back a replay goes (the gateway's /v1/replay bound). */
export const REPLAY_SPAN_MS = 24 * 3600 * 1000;
/** REPLAY_SPEEDS are the playback speeds offered. */
export const REPLAY_SPEEDS = [1, 4, 8];
/** FETCH_EVERY_MS is the least wall time between two replay fetches. */
export const FETCH_EVERY_MS = 1000;

export class ReplayClock {
  constructor() {
    this.active = false;
    this.paused = false;
    this.speed = 1;
    /** the replayed instant (ms) at wall time this.wall */
    this.base = 0;
    this.wall = 0;
    /** wall time of the last fetch (ms), or null */
    /** @type {number | null} */
    this.lastFetch = null;
    /** the replayed instant last fetched (ms), or null */
    /** @type {number | null} */
    this.fetchedAt = null;
  }

  /**
   * start replays from instant at (ms), clamped to the last 24 hours before now.
   * @param {number} at @param {number} now wall time @param {number} [speed]
   */
  start(at, now, speed = this.speed) {
    this.active = true;
    this.paused = false;
    this.speed = speed;
    this.base = Math.min(now, Math.max(now - REPLAY_SPAN_MS, at));
    this.wall = now;
    this.lastFetch = null;
    this.fetchedAt = null;
  }

  /**
   * seek moves the replayed instant to at (clamped to the last 24 hours),
   * keeping the speed and a pause: a paused replay stays paused where it
   * was moved to. The next tick fetches it.
   * @param {number} at @param {number} now wall time
   */
  seek(at, now) {
    if (!this.active) return;
    this.base = Math.min(now, Math.max(now - REPLAY_SPAN_MS, at));
    this.wall = now;
    this.lastFetch = null;
  }

  /** toggle pauses a playing replay and resumes a paused one. @param {number} now */
  toggle(now) {
    if (this.paused) this.resume(now);
    else this.pause(now);
  }

  /** time is the replayed instant at wall time now, or null when live. @param {number} now */
  time(now) {
    if (!this.active) return null;
    if (this.paused) return this.base;
    return this.base + (now - this.wall) * this.speed;
  }

  /** setSpeed changes the speed from now on. @param {number} speed @param {number} now */
  setSpeed(speed, now) {
    if (this.active) {
      this.base = /** @type {number} */ (this.time(now));
      this.wall = now;
    }
    this.speed = speed;
  }

  /** pause holds the replayed instant. @param {number} now */
  pause(now) {
    if (!this.active || this.paused) return;
    this.base = /** @type {number} */ (this.time(now));
    this.wall = now;
    this.paused = true;
  }

  /** resume lets the replayed instant advance again. @param {number} now */
  resume(now) {
    if (!this.active || !this.paused) return;
    this.wall = now;
    this.paused = false;
  }

  /** stop ends the replay: the screen is live. */
  stop() {
    this.active = false;
    this.paused = false;
    this.lastFetch = null;
    this.fetchedAt = null;
  }

  /**
   * tick is called often; it says the replayed instant, whether the replay
   * has ended (reached the present: the clock is stopped, go live) and
   * whether to fetch the state now (at most every FETCH_EVERY_MS, and not
   * again for the instant last fetched: a paused replay fetches once).
   * @param {number} now wall time
   * @returns {{at: number | null, ended: boolean, fetch: boolean}}
   */
  tick(now) {
    const at = this.time(now);
    if (at === null) return { at: null, ended: false, fetch: false };
    if (at >= now) {
      this.stop();
      return { at: null, ended: true, fetch: false };
    }
    const fetch = at !== this.fetchedAt && (this.lastFetch === null || now - this.lastFetch >= FETCH_EVERY_MS);
    if (fetch) {
      this.lastFetch = now;
      this.fetchedAt = at;
    }
    return { at, ended: false, fetch };
  }
}
