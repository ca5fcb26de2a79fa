/**
 * Requests sent over a socket that wait for their `res` frame. Each has a
 * deadline; a socket that closes fails everything it had in flight, so no
 * caller waits for an answer that cannot come.
 */
import { AppError, ErrorCode } from '../../shared/errors';
import { wireErrorToAppError, type ResponseFrame } from '../../shared/protocol/tunnel';

interface Entry {
  owner: string;
  resolve: (value: unknown) => void;
  reject: (err: AppError) => void;
  timer: ReturnType<typeof setTimeout>;
}

export class PendingRequests {
  private readonly entries = new Map<string, Entry>();
  private counter = 0;

  /** Registers a request for `owner` (e.g. an agent id) and returns its id and the awaited result. */
  open(owner: string, timeoutMs: number, what: string): { id: string; result: Promise<unknown> } {
    this.counter = (this.counter + 1) % Number.MAX_SAFE_INTEGER;
    const id = `e${Date.now().toString(36)}${this.counter.toString(36)}`;
    const result = new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.entries.delete(id);
        reject(new AppError(ErrorCode.Timeout, `${what} got no answer within ${Math.round(timeoutMs / 1000)} s`));
      }, timeoutMs);
      this.entries.set(id, { owner, resolve, reject, timer });
    });
    return { id, result };
  }

  /** Settles the request a `res` frame answers; false when none waits for it. */
  settle(frame: ResponseFrame): boolean {
    const entry = this.entries.get(frame.id);
    if (!entry) return false;
    this.entries.delete(frame.id);
    clearTimeout(entry.timer);
    if (frame.ok) entry.resolve(frame.result);
    else entry.reject(wireErrorToAppError(frame.error));
    return true;
  }

  fail(id: string, err: AppError): void {
    const entry = this.entries.get(id);
    if (!entry) return;
    this.entries.delete(id);
    clearTimeout(entry.timer);
    entry.reject(err);
  }

  /** Fails every request of an owner whose socket went away. */
  failOwner(owner: string, err: AppError): void {
    for (const [id, entry] of this.entries) if (entry.owner === owner) this.fail(id, err);
  }

  get size(): number {
    return this.entries.size;
  }
}
