/** Small HTTP helpers for end-to-end tests of the edge's REST API. */
export interface ApiResponse<T = unknown> {
  status: number;
  headers: Headers;
  body: T;
}

export interface ErrorBody {
  error: { code: string; message: string; details?: unknown };
}

export interface RequestOptions {
  method?: string;
  headers?: Record<string, string>;
  /** A value to send as JSON (Content-Type: application/json unless headers say otherwise). */
  json?: unknown;
  /** Raw bytes or text, sent as is with only the headers given. */
  raw?: BodyInit;
  token?: string;
}

export async function call<T = unknown>(baseUrl: string, path: string, opts: RequestOptions = {}): Promise<ApiResponse<T>> {
  const headers: Record<string, string> = {};
  if (opts.json !== undefined) headers['Content-Type'] = 'application/json';
  if (opts.token !== undefined) headers.Authorization = `Bearer ${opts.token}`;
  Object.assign(headers, opts.headers);
  const init: RequestInit & { duplex?: 'half' } = {
    method: opts.method ?? (opts.json !== undefined || opts.raw !== undefined ? 'POST' : 'GET'),
    headers,
    signal: AbortSignal.timeout(30_000),
  };
  if (opts.json !== undefined) init.body = JSON.stringify(opts.json);
  if (opts.raw !== undefined) {
    init.body = opts.raw;
    if (opts.raw instanceof ReadableStream) init.duplex = 'half';
  }
  const res = await fetch(`${baseUrl}${path}`, init);
  const text = await res.text();
  let body: unknown = text;
  if ((res.headers.get('Content-Type') ?? '').includes('json') && text) body = JSON.parse(text);
  return { status: res.status, headers: res.headers, body: body as T };
}

export interface AuthBody {
  message: string;
  token: string;
  user: { id: string; email: string; username: string };
}

let counter = 0;
/** A fresh, valid registration (unique per call in this process). */
export function newAccount(tag = 'user'): { email: string; password: string; username: string } {
  counter += 1;
  const n = `${Date.now().toString(36)}${counter}`;
  return { email: `${tag}-${n}@example.com`, password: `pw-${n}-long-enough`, username: `${tag}_${n}`.slice(0, 32) };
}

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}
