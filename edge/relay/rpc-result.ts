/**
 * Durable Object RPC carries return values faithfully but not error classes,
 * so DO methods that can fail return a Result and callers `unwrap` it back
 * into an AppError with its code intact.
 */
import { AppError, ErrorCode, fromUnknown, type ErrorBody } from '../../shared/errors';
import { log } from '../log';

export type RpcResult<T> = { ok: true; value: T } | { ok: false; error: ErrorBody };

export async function capture<T>(fn: () => Promise<T> | T): Promise<RpcResult<T>> {
  try {
    return { ok: true, value: await fn() };
  } catch (err) {
    const e = fromUnknown(err);
    if (e.code === ErrorCode.Internal && !(err instanceof AppError)) log('error', 'unexpected failure in a Durable Object', { error: String(err) });
    return { ok: false, error: e.toBody() };
  }
}

export async function unwrap<T>(result: Promise<RpcResult<T>> | RpcResult<T>): Promise<T> {
  const r = await result;
  if (r.ok) return r.value;
  throw new AppError(r.error.code, r.error.message, r.error.details);
}
