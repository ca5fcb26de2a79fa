/**
 * `jsonBody(schema)`: the one way a route takes a JSON body. In order, it
 * answers 415 `unsupported_media_type` unless the Content-Type is JSON, 413
 * `payload_too_large` past the size limit (declared or actual), 400
 * `invalid_json` for bytes that are not UTF-8 JSON, and 400
 * `validation_failed` with one detail per problem when the schema refuses
 * the value. The handler then reads the typed value with `c.req.valid('json')`.
 */
import type { MiddlewareHandler } from 'hono';
import type { z } from 'zod';
import { joinBytes } from '../../shared/bytes';
import { AppError, ErrorCode } from '../../shared/errors';
import { summariseIssues } from '../../shared/protocol/tunnel';
import { loadConfig } from '../config';
import { discardBody, drain, DRAIN_LIMIT } from '../relay/body';
import type { AppEnv } from '../env';

export interface JsonBodyOptions {
  /** Largest body in bytes; defaults to MAX_BODY_BYTES. */
  maxBytes?: number;
}

export interface ValidationIssue {
  /** Dotted path of the offending field; "" for the body itself. */
  path: string;
  message: string;
}

const jsonMediaType = /^application\/([\w.+-]+\+)?json$/i;

export function jsonBody<S extends z.ZodType>(
  schema: S,
  { maxBytes }: JsonBodyOptions = {},
): MiddlewareHandler<AppEnv, string, { in: { json: z.input<S> }; out: { json: z.output<S> } }> {
  if (maxBytes !== undefined && !(Number.isInteger(maxBytes) && maxBytes > 0)) {
    throw new TypeError('jsonBody: maxBytes must be a positive integer');
  }
  return async function jsonBody(c, next) {
    const mediaType = (c.req.header('Content-Type') ?? '').split(';')[0]!.trim();
    if (!jsonMediaType.test(mediaType)) {
      throw new AppError(ErrorCode.UnsupportedMediaType, 'send the body as JSON with Content-Type: application/json');
    }
    const limit = maxBytes ?? loadConfig(c.env).maxBodyBytes;
    const bytes = await readLimited(c.req.raw, limit);
    const value = parseJson(bytes);
    const result = schema.safeParse(value);
    if (!result.success) {
      throw new AppError(ErrorCode.ValidationFailed, 'request body is invalid', { issues: toIssues(result.error) });
    }
    c.req.addValidatedData('json', result.data as object);
    await next();
  };
}

/** Reads a JSON body of at most `limit` bytes: 413 past it (the rest drained), 400 `invalid_json` for bytes that are not UTF-8 JSON. */
export async function readJson(req: Request, limit: number): Promise<unknown> {
  return parseJson(await readLimited(req, limit));
}

export function toIssues(error: z.ZodError): ValidationIssue[] {
  return summariseIssues(error, Number.POSITIVE_INFINITY);
}

function tooLarge(limit: number): AppError {
  return new AppError(ErrorCode.PayloadTooLarge, `request body is larger than ${limit} bytes`, { maxBytes: limit });
}

/** Reads the body, refusing as soon as it is known to be over `limit`, without buffering more than that. */
async function readLimited(req: Request, limit: number): Promise<Uint8Array> {
  const declared = req.headers.get('Content-Length');
  if (declared !== null && Number(declared) > limit) {
    await discardBody(req, Math.min(limit * 4, DRAIN_LIMIT));
    throw tooLarge(limit);
  }
  if (!req.body) return new Uint8Array(0);
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      // Read and drop the rest (up to a bound) before the 413 goes out: see ../relay/body.ts.
      await drain(reader, Math.min(limit * 4, DRAIN_LIMIT) - size);
      throw tooLarge(limit);
    }
    chunks.push(value);
  }
  return joinBytes(chunks, size);
}

function parseJson(bytes: Uint8Array): unknown {
  if (bytes.byteLength === 0) throw new AppError(ErrorCode.InvalidJson, 'request body is empty; expected JSON');
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    throw new AppError(ErrorCode.InvalidJson, 'request body is not valid UTF-8');
  }
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new AppError(ErrorCode.InvalidJson, 'request body is not valid JSON');
  }
}
