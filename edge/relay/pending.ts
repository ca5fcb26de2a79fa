/**
 * Requests sent over a socket that wait for their `res` frame. Each has a
 * deadline; a socket that closes fails everything it had in flight, so no
 * caller waits for an answer that cannot come.
 *
 * Each request belongs to an owner (the socket it was sent on) and only a
 * `res` from that owner settles it: one agent cannot answer for another. Ids
 * are 128 random bits, so an agent cannot guess the id of a request it never saw.
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

  /** Registers a request for `owner` (the socket it goes out on) and returns its id and the awaited result. */
  open(owner: string, timeoutMs: number, what: string): { id: string; result: Promise<unknown> } {
    const id = randomId();
    const result = new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.entries.delete(id);
        reject(new AppError(ErrorCode.Timeout, `${what} got no answer within ${Math.round(timeoutMs / 1000)} s`));
      }, timeoutMs);
      this.entries.set(id, { owner, resolve, reject, timer });
    });
    return { id, result };
  }

  /**
   * Settles the request a `res` frame answers, when `from` is the owner it was
   * sent to; false when no request of that owner waits for this id.
   */
  settle(frame: ResponseFrame, from = 'agent'): boolean {
    const entry = this.entries.get(frame.id);
    if (!entry || entry.owner !== from) return false;
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

function randomId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  let hex = 'r';
  for (const b of bytes) hex += b.toString(16).padStart(2, '0');
  return hex;
}
