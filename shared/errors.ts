/**
 * One error vocabulary for the edge, the agent and the tunnel between them.
 * Every failure that crosses a boundary is an `AppError` with a stable `code`;
 * HTTP bodies carry it as `{"error": {"code", "message", "details"?}}` and
 * WebSocket replies as `{type: "error", id, payload: {code, message}}`.
 */
export const ErrorCode = {
  BadRequest: 'bad_request',
  ValidationFailed: 'validation_failed',
  InvalidJson: 'invalid_json',
  InvalidPath: 'invalid_path',
  Unauthorized: 'unauthorized',
  InvalidToken: 'invalid_token',
  TokenExpired: 'token_expired',
  InvalidCredentials: 'invalid_credentials',
  Forbidden: 'forbidden',
  PathOutsideWorkspace: 'path_outside_workspace',
  NotFound: 'not_found',
  MethodNotAllowed: 'method_not_allowed',
  Conflict: 'conflict',
  PayloadTooLarge: 'payload_too_large',
  UnsupportedMediaType: 'unsupported_media_type',
  RateLimited: 'rate_limited',
  Internal: 'internal_error',
  AgentUnavailable: 'agent_unavailable',
  NoCapacity: 'no_capacity',
  Timeout: 'timeout',
  ProtocolError: 'protocol_error',
  UnsupportedVersion: 'unsupported_version',
  ImageNotFound: 'image_not_found',
  TtyUnavailable: 'tty_unavailable',
  ImageNotAllowed: 'image_not_allowed',
  LimitExceeded: 'limit_exceeded',
  QuotaExceeded: 'quota_exceeded',
  SessionStopped: 'session_stopped',
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** HTTP status for each code; the `Record` makes the compiler keep it complete. */
export const errorStatus: Record<ErrorCode, number> = {
  bad_request: 400,
  validation_failed: 400,
  invalid_json: 400,
  invalid_path: 400,
  unauthorized: 401,
  invalid_token: 401,
  token_expired: 401,
  invalid_credentials: 401,
  forbidden: 403,
  path_outside_workspace: 403,
  not_found: 404,
  method_not_allowed: 405,
  conflict: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  rate_limited: 429,
  internal_error: 500,
  agent_unavailable: 503,
  no_capacity: 503,
  timeout: 504,
  protocol_error: 400,
  unsupported_version: 400,
  image_not_found: 404,
  tty_unavailable: 400,
  image_not_allowed: 400,
  limit_exceeded: 429,
  quota_exceeded: 507,
  session_stopped: 503,
};

/** Codes a caller may retry unchanged after a pause. */
export const retryableCodes: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  ErrorCode.RateLimited,
  ErrorCode.AgentUnavailable,
  ErrorCode.NoCapacity,
  ErrorCode.Timeout,
]);

const knownCodes = new Set<string>(Object.values(ErrorCode));
export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && knownCodes.has(value);
}

export interface ErrorBody {
  code: ErrorCode;
  message: string;
  details?: unknown;
}

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly details: unknown;
  constructor(code: ErrorCode, message: string, details?: unknown) {
    super(message);
    this.name = 'AppError';
    this.code = code;
    this.details = details;
  }
  get status(): number {
    return errorStatus[this.code];
  }
  toBody(): ErrorBody {
    return this.details === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, details: this.details };
  }
}

/**
 * Turns anything thrown into an AppError. Unknown errors become `internal_error`
 * with a generic message: their text may hold paths or stack details that must
 * not reach a client. Callers log the original before answering.
 */
export function fromUnknown(err: unknown): AppError {
  if (err instanceof AppError) return err;
  if (isErrorBodyLike(err)) return new AppError(err.code, err.message, err.details);
  return new AppError(ErrorCode.Internal, 'Internal server error');
}

function isErrorBodyLike(err: unknown): err is ErrorBody {
  if (typeof err !== 'object' || err === null) return false;
  const e = err as Record<string, unknown>;
  return isErrorCode(e.code) && typeof e.message === 'string' && e.name === 'AppError';
}

/** `{"error": {...}}`, the body of every failed HTTP response. */
export function errorEnvelope(err: AppError): { error: ErrorBody } {
  return { error: err.toBody() };
}
