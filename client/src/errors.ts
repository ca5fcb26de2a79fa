/**
 * One error class for everything the SDK reports. Errors the API sent keep
 * its `code`, HTTP `status` and `details`; `retryable` comes from the shared
 * error table (../../shared/errors.ts). Failures that happen on the client's
 * side of the wire have codes of their own (ClientErrorCode), status 0.
 */
import { errorStatus, isErrorCode, retryableCodes, type ErrorCode } from '../../shared/errors';

export const ClientErrorCode = {
  /** The request could not be sent or no answer came (network down, DNS, refused). */
  NetworkError: 'network_error',
  /** The socket dropped while a request on it was unanswered; the SDK reconnects by itself. */
  ConnectionLost: 'connection_lost',
  /** The connection or process was closed by this client. */
  Closed: 'closed',
  /** The server answered something the SDK cannot read. */
  BadResponse: 'bad_response',
} as const;
export type ClientErrorCode = (typeof ClientErrorCode)[keyof typeof ClientErrorCode];

const retryableClientCodes: ReadonlySet<string> = new Set([ClientErrorCode.NetworkError, ClientErrorCode.ConnectionLost]);

export class MominaiError extends Error {
  override readonly name = 'MominaiError';
  readonly code: ErrorCode | ClientErrorCode;
  /** The HTTP status of the code (0 for client-side codes). */
  readonly status: number;
  readonly details: unknown;

  constructor(code: ErrorCode | ClientErrorCode, message: string, opts: { status?: number; details?: unknown; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.code = code;
    this.status = opts.status ?? (isErrorCode(code) ? errorStatus[code] : 0);
    this.details = opts.details;
  }

  /** Whether the same call may succeed unchanged after a pause. */
  get retryable(): boolean {
    return isErrorCode(this.code) ? retryableCodes.has(this.code) : retryableClientCodes.has(this.code);
  }

  /** An error from `{code, message, details?}` as the API sends it (HTTP body or WebSocket payload). */
  static fromBody(body: unknown, status?: number): MominaiError {
    if (typeof body === 'object' && body !== null) {
      const b = body as { code?: unknown; message?: unknown; details?: unknown };
      if (isErrorCode(b.code) && typeof b.message === 'string') {
        return new MominaiError(b.code, b.message, { ...(status ? { status } : {}), details: b.details });
      }
    }
    return new MominaiError(ClientErrorCode.BadResponse, `unexpected error body${status ? ` (HTTP ${status})` : ''}`, { ...(status ? { status } : {}), details: body });
  }
}
