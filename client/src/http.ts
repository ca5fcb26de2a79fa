/**
 * REST calls through the platform `fetch` (or one passed in options): the
 * bearer token, JSON bodies, streamed bodies, and the API's one error shape
 * turned into MominaiError.
 */
import { z } from 'zod';
import { ClientErrorCode, MominaiError } from './errors';

const ErrorEnvelope = z.object({ error: z.object({ code: z.string(), message: z.string(), details: z.unknown().optional() }) });

export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

export interface HttpOptions {
  baseUrl: string;
  fetch: FetchLike;
  token(): string | undefined;
  /** Per-request time limit for JSON calls (ms); bodies that stream have none. */
  timeoutMs: number;
}

export type Body = string | Uint8Array | ArrayBuffer | Blob | ReadableStream<Uint8Array>;

export interface CallOptions {
  method?: string;
  json?: unknown;
  body?: Body;
  headers?: Record<string, string>;
  /** No time limit (large transfers). */
  streaming?: boolean;
  signal?: AbortSignal;
}

export class Http {
  constructor(private readonly opts: HttpOptions) {}

  get baseUrl(): string {
    return this.opts.baseUrl;
  }

  /** The raw response of a successful call; an error status becomes a MominaiError. */
  async raw(path: string, call: CallOptions = {}): Promise<Response> {
    const headers: Record<string, string> = { ...call.headers };
    const token = this.opts.token();
    if (token) headers.Authorization = `Bearer ${token}`;
    const init: RequestInit & { duplex?: 'half' } = { method: call.method ?? (call.json !== undefined || call.body !== undefined ? 'POST' : 'GET'), headers };
    if (call.json !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(call.json);
    } else if (call.body !== undefined) {
      headers['Content-Type'] ??= 'application/octet-stream';
      init.body = call.body as BodyInit;
      // Fetch sends a stream only as a half-duplex request (Node and Chromium).
      if (call.body instanceof ReadableStream) init.duplex = 'half';
    }
    const signals = [call.signal, call.streaming ? undefined : AbortSignal.timeout(this.opts.timeoutMs)].filter((s): s is AbortSignal => !!s);
    if (signals.length) init.signal = signals.length === 1 ? signals[0]! : AbortSignal.any(signals);
    let res: Response;
    try {
      res = await this.opts.fetch(`${this.opts.baseUrl}${path}`, init);
    } catch (err) {
      // A kept-alive connection the server closed just as it was reused fails at once; a GET or HEAD
      // (nothing sent that could have been half-applied) goes once more on a new one.
      const idempotent = init.method === 'GET' || init.method === 'HEAD';
      if (!idempotent || init.signal?.aborted) throw networkError(init.method, path, err);
      try {
        res = await this.opts.fetch(`${this.opts.baseUrl}${path}`, init);
      } catch (again) {
        throw networkError(init.method, path, again);
      }
    }
    if (res.ok || res.status === 304) return res;
    throw await errorOf(res);
  }

  /** A JSON call; the answer is checked against `schema` when one is given. */
  async json<T>(path: string, call: CallOptions = {}, schema?: z.ZodType<T>): Promise<T> {
    const res = await this.raw(path, call);
    let body: unknown;
    try {
      body = await res.json();
    } catch (err) {
      throw new MominaiError(ClientErrorCode.BadResponse, `${path}: the answer is not JSON`, { status: res.status, cause: err });
    }
    if (!schema) return body as T;
    const parsed = schema.safeParse(body);
    if (!parsed.success) throw new MominaiError(ClientErrorCode.BadResponse, `${path}: unexpected answer`, { status: res.status, details: parsed.error.issues.slice(0, 5) });
    return parsed.data;
  }
}

function networkError(method: string | undefined, path: string, err: unknown): MominaiError {
  return new MominaiError(ClientErrorCode.NetworkError, `${method} ${path} failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
}

async function errorOf(res: Response): Promise<MominaiError> {
  let body: unknown;
  try {
    body = await res.json();
  } catch {
    body = undefined;
  }
  const parsed = ErrorEnvelope.safeParse(body);
  if (parsed.success) return MominaiError.fromBody(parsed.data.error, res.status);
  return new MominaiError(ClientErrorCode.BadResponse, `HTTP ${res.status} without an error body`, { status: res.status });
}
