/**
 * The one client of the real edge for end-to-end tests and benchmarks: users
 * and accounts, REST calls with their token (`api` for a stack, `call` for a
 * bare base URL), and the session WebSocket (`TestSocket`), which keeps every
 * frame for the tests or, for a benchmark, none (`history: false`: 100 MiB of
 * output would otherwise be held and searched) while stamping each frame with
 * its arrival time.
 */
import http from 'node:http';
import WebSocket from 'ws';
import { decodeBinaryFrame } from '../../shared/protocol/binary';
import type { TestStack } from './stack';

export interface TestUser {
  id: string;
  email: string;
  username: string;
  token: string;
}

export interface ApiResponse<T = unknown> {
  status: number;
  body: T;
  headers: Headers;
}

export interface ErrorBody {
  error: { code: string; message: string; details?: unknown };
}

export interface AuthBody {
  message: string;
  token: string;
  user: { id: string; email: string; username: string };
}

export interface RequestOptions {
  method?: string;
  headers?: Record<string, string>;
  /** A value to send as JSON (Content-Type: application/json unless headers say otherwise). */
  json?: unknown;
  /** Raw bytes or text, sent as is with only the headers given. */
  raw?: BodyInit;
  token?: string;
  /** Gives up after this long (default: `call` 30 s; `api` never, its test's own limit applies: an exec may run minutes). */
  timeoutMs?: number;
}

/** The one fetch behind `call` and `api`: the status, the headers and the body as text. */
async function send(baseUrl: string, path: string, opts: RequestOptions): Promise<{ res: Response; text: string }> {
  const headers: Record<string, string> = {};
  if (opts.json !== undefined) headers['Content-Type'] = 'application/json';
  if (opts.token !== undefined) headers.Authorization = `Bearer ${opts.token}`;
  Object.assign(headers, opts.headers);
  const init: RequestInit & { duplex?: 'half' } = {
    method: opts.method ?? (opts.json !== undefined || opts.raw !== undefined ? 'POST' : 'GET'),
    headers,
    ...(opts.timeoutMs !== undefined ? { signal: AbortSignal.timeout(opts.timeoutMs) } : {}),
  };
  if (opts.json !== undefined) init.body = JSON.stringify(opts.json);
  if (opts.raw !== undefined) {
    init.body = opts.raw;
    if (opts.raw instanceof ReadableStream) init.duplex = 'half';
  }
  const res = await fetch(`${baseUrl}${path}`, init);
  return { res, text: await res.text() };
}

/** A REST call to a base URL; the body is parsed when the answer says it is JSON, else kept as text. */
export async function call<T = unknown>(baseUrl: string, path: string, opts: RequestOptions = {}): Promise<ApiResponse<T>> {
  const { res, text } = await send(baseUrl, path, { timeoutMs: 30_000, ...opts });
  let body: unknown = text;
  if ((res.headers.get('Content-Type') ?? '').includes('json') && text) body = JSON.parse(text);
  return { status: res.status, headers: res.headers, body: body as T };
}

/** A REST call to a stack; a string body goes as is, anything else as JSON; a body that parses as JSON is parsed whatever its type says. */
export async function api<T = Record<string, unknown>>(
  stack: TestStack,
  method: string,
  path: string,
  opts: { token?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<ApiResponse<T>> {
  const headers: Record<string, string> = {};
  if (opts.body !== undefined) headers['Content-Type'] = 'application/json';
  Object.assign(headers, opts.headers);
  const body = opts.body === undefined ? {} : typeof opts.body === 'string' ? { raw: opts.body } : { raw: JSON.stringify(opts.body) };
  const { res, text } = await send(stack.baseUrl, path, { method, headers, ...body, ...(opts.token ? { token: opts.token } : {}) });
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // Not JSON: keep the text.
  }
  return { status: res.status, body: parsed as T, headers: res.headers };
}

let counter = 0;

/** A fresh, valid registration (unique per call in this process). */
export function newAccount(tag = 'user'): { email: string; password: string; username: string } {
  counter += 1;
  const n = `${Date.now().toString(36)}${counter}`;
  return { email: `${tag}-${n}@example.com`, password: `pw-${n}-long-enough`, username: `${tag}_${n}`.slice(0, 32) };
}

/** Registers a fresh user (password `correct horse battery`) and returns it with its token. */
export async function registerUser(stack: TestStack, prefix = 'user'): Promise<TestUser> {
  counter += 1;
  const tag = `${prefix}${process.pid}x${counter}${Math.random().toString(36).slice(2, 6)}`;
  const account = { email: `${tag}@example.test`, password: 'correct horse battery', username: tag.slice(0, 32) };
  const res = await call<AuthBody>(stack.baseUrl, '/api/auth/register', { json: account });
  if (res.status !== 201) throw new Error(`register failed: ${res.status} ${JSON.stringify(res.body)}`);
  return { ...res.body.user, token: res.body.token };
}

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export interface Frame {
  type: string;
  id?: string | number;
  payload: Record<string, unknown>;
}

type Listener = (frame: Frame, at: bigint) => void;

export interface SocketOptions {
  output?: 'text' | 'binary';
  /** Keep every frame in `frames` for `waitFor` to search (default true; benchmarks turn it off). */
  history?: boolean;
  /** Acknowledge output every MiB a stream, as a well-behaved client does (default true). */
  autoAck?: boolean;
  /** Resolve `open` only once the session's `ready` frame came, within `timeoutMs` (default false). */
  waitReady?: boolean;
  timeoutMs?: number;
}

/** A session socket that records frames (unless told not to) and lets a test or benchmark wait for one. */
export class TestSocket {
  readonly frames: Frame[] = [];
  private readonly listeners = new Set<Listener>();
  closed: { code: number; reason: string } | undefined;
  private nextId = 1;
  /** Acknowledge output as it arrives (every ACK_EVERY bytes a stream), as a well-behaved client does. */
  autoAck: boolean;
  private readonly history: boolean;
  private readonly received = new Map<string, { end: number; acked: number }>();

  /** Binary output mode: stream id → what `output_stream` announced for it. */
  private readonly outputStreams = new Map<number, { processId: string; stream: string }>();
  /** Binary frames whose stream was never announced (a protocol failure the tests check for). */
  readonly unannounced: number[] = [];

  private constructor(
    readonly ws: WebSocket,
    opts: SocketOptions,
  ) {
    this.history = opts.history ?? true;
    this.autoAck = opts.autoAck ?? true;
    ws.on('message', (data: Buffer, isBinary) => {
      const at = process.hrtime.bigint();
      let frame: Frame;
      if (isBinary) {
        // Binary output: shown as a command_output frame with the raw `bytes` (a view of the message, no copy).
        const bin = decodeBinaryFrame(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
        const known = this.outputStreams.get(bin.streamId);
        if (!known) {
          this.unannounced.push(bin.streamId);
          return;
        }
        const bytes = Buffer.from(bin.payload.buffer, bin.payload.byteOffset, bin.payload.byteLength);
        frame = { type: 'command_output', payload: { ...known, offset: bin.offset, length: bytes.byteLength, bytes, binary: true } };
      } else {
        frame = JSON.parse(data.toString()) as Frame;
        if (frame.type === 'output_stream') {
          this.outputStreams.set(Number(frame.payload.streamId), { processId: String(frame.payload.processId), stream: String(frame.payload.stream) });
        }
      }
      if (this.history) this.frames.push(frame);
      if (frame.type === 'command_output') this.noteOutput(frame);
      for (const l of this.listeners) l(frame, at);
    });
    ws.on('close', (code, reason) => {
      this.closed = { code, reason: reason.toString() };
      for (const l of this.listeners) l({ type: '__closed', payload: {} }, process.hrtime.bigint());
    });
  }

  private noteOutput(f: Frame): void {
    const key = `${String(f.payload.processId)}:${String(f.payload.stream)}`;
    const r = this.received.get(key) ?? { end: 0, acked: Number(f.payload.offset) };
    r.end = Number(f.payload.offset) + Number(f.payload.length);
    this.received.set(key, r);
    if (this.autoAck && r.end - r.acked >= 1024 * 1024) this.ackNow();
  }

  /** Acknowledges everything received so far. */
  ackNow(): void {
    for (const [key, r] of this.received) {
      if (r.end <= r.acked) continue;
      const [processId, stream] = key.split(':');
      this.send('ack', { processId, stream, offset: r.end }, null);
      r.acked = r.end;
    }
  }

  static async open(stack: TestStack, token: string, sessionId?: string, opts: SocketOptions = {}): Promise<TestSocket> {
    const q = new URLSearchParams({ token, ...(sessionId ? { sessionId } : {}), ...(opts.output ? { output: opts.output } : {}) });
    const ws = new WebSocket(`${stack.wsUrl}/ws?${q}`);
    const sock = new TestSocket(ws, opts);
    const timeoutMs = opts.timeoutMs ?? 30_000;
    const ready = opts.waitReady ? sock.waitFor((f) => f.type === 'ready', timeoutMs, 'the ready frame') : undefined;
    ready?.catch(() => undefined); // awaited below; a failed open must not leave it unhandled
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`opening the session socket timed out after ${timeoutMs} ms`)), timeoutMs);
      ws.once('open', () => (clearTimeout(timer), resolve()));
      ws.once('unexpected-response', (_req, res) => (clearTimeout(timer), reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode }))));
      ws.once('error', (err) => (clearTimeout(timer), reject(err)));
    });
    await ready;
    return sock;
  }

  /** Calls `listener` with every frame from now on and its arrival time; returns the unsubscribe. */
  on(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  send(type: string, payload?: unknown, id: string | number | null = `c${this.nextId++}`): string | number | undefined {
    const frame: Record<string, unknown> = { type };
    if (id !== null) frame.id = id;
    if (payload !== undefined) frame.payload = payload;
    this.ws.send(JSON.stringify(frame));
    return id ?? undefined;
  }

  /** Sends a request and resolves with the reply that echoes its id (an `error` reply included). */
  async request(type: string, payload?: unknown, timeoutMs = 30_000): Promise<Frame> {
    const id = `c${this.nextId++}`;
    const reply = this.waitFor((f) => f.id === id, timeoutMs, `the reply to ${type}`);
    reply.catch(() => undefined); // awaited below; a failed send must not leave it unhandled
    this.send(type, payload, id);
    return reply;
  }

  /** A request whose `error` reply rejects. */
  async requestOk(type: string, payload?: unknown, timeoutMs = 30_000): Promise<Frame> {
    const frame = await this.request(type, payload, timeoutMs);
    if (frame.type === 'error') throw new Error(`${type} failed: ${JSON.stringify(frame.payload)}`);
    return frame;
  }

  /** The first recorded frame that matches, or the first to come (rejects when the socket closes first). */
  async waitFor(pred: (f: Frame) => boolean, timeoutMs = 30_000, what = 'the awaited frame'): Promise<Frame> {
    const found = this.frames.find(pred);
    if (found) return found;
    return (await this.waitForTimed(pred, timeoutMs, what)).frame;
  }

  /** The first frame from now on that matches, with its arrival time. */
  waitForTimed(pred: (f: Frame) => boolean, timeoutMs: number, what = 'the awaited frame'): Promise<{ frame: Frame; at: bigint }> {
    return new Promise((resolve, reject) => {
      const fail = (msg: string) => {
        off();
        clearTimeout(timer);
        reject(new Error(msg));
      };
      const timer = setTimeout(
        () => fail(`timed out after ${timeoutMs} ms waiting for ${what}${this.history ? `; frames so far: ${JSON.stringify(this.frames.map((f) => f.type))}` : ''}`),
        timeoutMs,
      );
      const off = this.on((frame, at) => {
        if (frame.type === '__closed') fail(`socket closed (${this.closed?.code} ${this.closed?.reason}) before ${what}`);
        else if (pred(frame)) {
          off();
          clearTimeout(timer);
          resolve({ frame, at });
        }
      });
      if (this.closed) fail(`socket closed (${this.closed.code} ${this.closed.reason}) before ${what}`);
    });
  }

  close(): void {
    if (!this.closed) this.ws.close();
  }
}

/**
 * Joins a process's `command_output` frames by stream, insisting on exact,
 * gap-free, duplicate-free offsets. Binary-mode frames are joined as latin1
 * (one character a byte), so `Buffer.from(out.stdout, 'latin1')` is the bytes.
 */
export function assembleOutput(
  frames: Frame[],
  processId: string,
  from: Partial<Record<'stdout' | 'stderr' | 'pty', number>> = {},
): { stdout: string; stderr: string; pty: string; problems: string[] } {
  const out = { stdout: '', stderr: '', pty: '' } as Record<'stdout' | 'stderr' | 'pty', string>;
  const next = { stdout: 0, stderr: 0, pty: 0, ...from } as Record<'stdout' | 'stderr' | 'pty', number>;
  const problems: string[] = [];
  for (const f of frames) {
    if (f.payload.processId !== processId) continue;
    if (f.type === 'gap') {
      problems.push(`gap ${JSON.stringify(f.payload)}`);
      continue;
    }
    if (f.type !== 'command_output') continue;
    const stream = f.payload.stream as 'stdout' | 'stderr' | 'pty';
    const offset = Number(f.payload.offset);
    if (offset !== next[stream]) problems.push(`${stream}: expected offset ${next[stream]}, got ${offset}`);
    out[stream] += f.payload.bytes ? Buffer.from(f.payload.bytes as Uint8Array).toString('latin1') : String(f.payload.data);
    next[stream] = offset + Number(f.payload.length);
  }
  return { ...out, problems };
}

/** What `rawRequest` got back. */
export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** A request to a local port with any Host header (fetch would not let us set it). */
export function rawRequest(port: number, opts: { path: string; host?: string; method?: string; headers?: Record<string, string>; body?: string | Buffer }): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: opts.path, method: opts.method ?? 'GET', headers: { ...(opts.host ? { Host: opts.host } : {}), ...opts.headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}
