/**
 * Jittered exponential backoff ("full jitter"): the n-th retry waits a random
 * time in [base·2^n / 2, base·2^n], capped. Spreading the waits keeps a fleet of
 * agents from redialling an edge that just restarted all at the same instant.
 */
export interface BackoffOptions {
  baseMs?: number;
  capMs?: number;
  random?: () => number;
}

export class Backoff {
  private attempt = 0;
  private readonly baseMs: number;
  private readonly capMs: number;
  private readonly random: () => number;

  constructor({ baseMs = 250, capMs = 5_000, random = Math.random }: BackoffOptions = {}) {
    if (!(baseMs > 0) || !(capMs >= baseMs)) throw new RangeError('backoff needs 0 < baseMs <= capMs');
    this.baseMs = baseMs;
    this.capMs = capMs;
    this.random = random;
  }

  /** The wait before the next attempt; each call counts one failure. */
  next(): number {
    const ceiling = Math.min(this.capMs, this.baseMs * 2 ** Math.min(this.attempt, 30));
    this.attempt += 1;
    return Math.round(ceiling / 2 + (this.random() * ceiling) / 2);
  }

  reset(): void {
    this.attempt = 0;
  }

  get attempts(): number {
    return this.attempt;
  }
}
