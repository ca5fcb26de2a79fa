/** Turns any failure into the one HTTP error shape. */
import type { Context } from 'hono';
import { AppError, ErrorCode, errorEnvelope, fromUnknown } from '../shared/errors';
import { log } from './log';

export function errorResponse(err: AppError, headers?: HeadersInit): Response {
  return new Response(JSON.stringify(errorEnvelope(err)), {
    status: err.status,
    headers: { 'Content-Type': 'application/json; charset=utf-8', ...(headers ? Object.fromEntries(new Headers(headers)) : {}) },
  });
}

export function onError(err: unknown, c: Context): Response {
  const appError = fromUnknown(err);
  if (appError.code === ErrorCode.Internal) {
    log('error', 'unhandled error', {
      requestId: c.get('requestId'),
      method: c.req.method,
      path: c.req.path,
      error: err instanceof Error ? `${err.name}: ${err.message}` : String(err),
    });
  }
  // Internal errors keep their configuration message (it names a variable, never a secret) and lose everything else.
  const safe =
    appError.code === ErrorCode.Internal && !(err instanceof AppError) ? new AppError(ErrorCode.Internal, 'Internal server error') : appError;
  return errorResponse(safe);
}

export function onNotFound(c: Context): Response {
  return errorResponse(new AppError(ErrorCode.NotFound, `no route for ${c.req.method} ${c.req.path}`));
}
