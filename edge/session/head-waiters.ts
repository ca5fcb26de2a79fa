/**
 * Preview requests waiting for the agent's answer, by streamBase. One timer
 * serves them all instead of a timer per request: under load a DO answers
 * hundreds of requests a second, and the deadline is only a backstop for an
 * agent that never answers. The timer is armed by the first wait and stops at
 * a check that finds none left.
 */
import { AppError, ErrorCode } from '../../shared/errors';
import type { HttpResponseHead } from '../../shared/protocol/preview';

export interface ArrivedHead {
  head: HttpResponseHead;
  /** The whole body, or the stream it arrives on. */
  body: Uint8Array | ReadableStream<Uint8Array>;
}

interface Waiter {
  resolve(value: ArrivedHead): void;
  reject(err: AppError): void;
  deadline: number;
}

export class HeadWaiters {
  private readonly waiting = new Map<number, Waiter>();
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly timeoutMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Registers a wait for `streamBase`; it settles once, by `settle`, `failAll` or the deadline. */
  wait(streamBase: number): Promise<ArrivedHead> {
    return new Promise<ArrivedHead>((resolve, reject) => {
      // Map order is insertion order, and every deadline is now + timeoutMs: the first entry expires first.
      this.waiting.set(streamBase, { resolve, reject, deadline: this.now() + this.timeoutMs });
      this.timer ??= setTimeout(() => this.expire(), this.timeoutMs);
    });
  }

  has(streamBase: number): boolean {
    return this.waiting.has(streamBase);
  }

  /** Answers a wait with the head or an error; false when none waits for `streamBase`. */
  settle(streamBase: number, outcome: ArrivedHead | AppError): boolean {
    const w = this.waiting.get(streamBase);
    if (!w) return false;
    this.waiting.delete(streamBase);
    if (outcome instanceof AppError) w.reject(outcome);
    else w.resolve(outcome);
    // The timer stays armed when the map empties: it finds nothing and stops, where
    // disarming here would cost a clearTimeout and a setTimeout per sequential request.
    return true;
  }

  failAll(err: AppError): void {
    const all = [...this.waiting.values()];
    this.waiting.clear();
    this.disarm();
    for (const w of all) w.reject(err);
  }

  get size(): number {
    return this.waiting.size;
  }

  private disarm(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private expire(): void {
    this.timer = undefined;
    const now = this.now();
    for (const [streamBase, w] of this.waiting) {
      if (w.deadline > now) {
        this.timer = setTimeout(() => this.expire(), w.deadline - now);
        return;
      }
      this.waiting.delete(streamBase);
      w.reject(new AppError(ErrorCode.Timeout, `the agent did not answer the preview request within ${Math.round(this.timeoutMs / 1000)} s`));
    }
  }
}
