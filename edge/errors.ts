/**
 * Turns any failure into the one HTTP error shape (`{"error": {code, message, details?}}`
 * with the status of shared/errors.ts's table), and reads what is left of the
 * request's body first, so an early refusal never hurts the next request on
 * the connection (./relay/body.ts).
 */
import type { Context } from 'hono';
import { AppError, ErrorCode, errorEnvelope, fromUnknown } from '../shared/errors';
import { log } from './log';
import { discardBody } from './relay/body';

export function errorResponse(err: AppError, headers?: HeadersInit): Response {
  return new Response(JSON.stringify(errorEnvelope(err)), {
    status: err.status,
    headers: { 'Content-Type': 'application/json; charset=utf-8', ...(headers ? Object.fromEntries(new Headers(headers)) : {}) },
  });
}

/** Any failure as the one shape; unexpected ones are logged and shown only as `Internal server error`. */
export function safeError(err: unknown, context: Record<string, unknown> = {}): AppError {
  const appError = fromUnknown(err);
  if (appError.code === ErrorCode.Internal && !(err instanceof AppError)) {
    log('error', 'unhandled error', { ...context, error: err instanceof Error ? `${err.name}: ${err.message}` : String(err) });
    return new AppError(ErrorCode.Internal, 'Internal server error');
  }
  // Internal AppErrors keep their configuration message (it names a variable, never a secret).
  return appError;
}

/** The response for a failure while serving `request`, after its unread body is drained. */
export async function refuse(request: Request, err: unknown, headers?: HeadersInit): Promise<Response> {
  const safe = safeError(err, { method: request.method, path: new URL(request.url).pathname });
  await discardBody(request);
  return errorResponse(safe, headers);
}

export async function onError(err: unknown, c: Context): Promise<Response> {
  const safe = safeError(err, { requestId: c.get('requestId'), method: c.req.method, path: c.req.path });
  await discardBody(c.req.raw);
  return errorResponse(safe);
}

export async function onNotFound(c: Context): Promise<Response> {
  await discardBody(c.req.raw);
  return errorResponse(new AppError(ErrorCode.NotFound, `no route for ${c.req.method} ${c.req.path}`));
}
