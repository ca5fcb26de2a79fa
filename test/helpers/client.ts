/**
 * A small client of the real edge for end-to-end tests: users, REST calls
 * with their token, and session WebSockets that collect frames.
 */
import WebSocket from 'ws';
import { decodeBinaryFrame } from '../../shared/protocol/binary';
import type { TestStack } from './stack';

export interface TestUser {
  id: string;
  email: string;
  username: string;
  token: string;
}

let counter = 0;

export async function registerUser(stack: TestStack, prefix = 'user'): Promise<TestUser> {
  counter += 1;
  const tag = `${prefix}${process.pid}x${counter}${Math.random().toString(36).slice(2, 6)}`;
  const res = await fetch(`${stack.baseUrl}/api/auth/register`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ email: `${tag}@example.test`, password: 'correct horse battery', username: tag.slice(0, 32) }),
  });
  if (res.status !== 201) throw new Error(`register failed: ${res.status} ${await res.text()}`);
  const body = (await res.json()) as { token: string; user: { id: string; email: string; username: string } };
  return { ...body.user, token: body.token };
}

export interface ApiResponse<T = Record<string, unknown>> {
  status: number;
  body: T;
  headers: Headers;
}

export async function api<T = Record<string, unknown>>(
  stack: TestStack,
  method: string,
  path: string,
  opts: { token?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<ApiResponse<T>> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.token) headers.Authorization = `Bearer ${opts.token}`;
  if (opts.body !== undefined) headers['Content-Type'] ??= 'application/json';
  const res = await fetch(`${stack.baseUrl}${path}`, {
    method,
    headers,
    ...(opts.body !== undefined ? { body: typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body) } : {}),
  });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // Not JSON: keep the text.
  }
  return { status: res.status, body: body as T, headers: res.headers };
}

export interface Frame {
  type: string;
  id?: string | number;
  payload: Record<string, unknown>;
}

/** A session socket that records every frame and lets a test wait for one. */
export class TestSocket {
  readonly frames: Frame[] = [];
  private readonly waiters = new Set<() => void>();
  closed: { code: number; reason: string } | undefined;
  private nextId = 1;
  /** Acknowledge output as it arrives (every ACK_EVERY bytes a stream), as a well-behaved client does. */
  autoAck = true;
  private readonly received = new Map<string, { end: number; acked: number }>();

  /** Binary output mode: stream id → what `output_stream` announced for it. */
  private readonly outputStreams = new Map<number, { processId: string; stream: string }>();
  /** Binary frames whose stream was never announced (a protocol failure the tests check for). */
  readonly unannounced: number[] = [];

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer, isBinary) => {
      let frame: Frame;
      if (isBinary) {
        // Binary output: shown to the tests as a command_output frame with the raw `bytes`.
        const bin = decodeBinaryFrame(new Uint8Array(data));
        const known = this.outputStreams.get(bin.streamId);
        if (!known) {
          this.unannounced.push(bin.streamId);
          return;
        }
        const bytes = Buffer.from(bin.payload);
        frame = { type: 'command_output', payload: { ...known, offset: bin.offset, length: bytes.byteLength, bytes, binary: true } };
      } else {
        frame = JSON.parse(data.toString()) as Frame;
        if (frame.type === 'output_stream') {
          this.outputStreams.set(Number(frame.payload.streamId), { processId: String(frame.payload.processId), stream: String(frame.payload.stream) });
        }
      }
      this.frames.push(frame);
      if (frame.type === 'command_output') this.noteOutput(frame);
      for (const w of this.waiters) w();
    });
    ws.on('close', (code, reason) => {
      this.closed = { code, reason: reason.toString() };
      for (const w of this.waiters) w();
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

  static open(stack: TestStack, token: string, sessionId?: string, opts: { output?: 'text' | 'binary' } = {}): Promise<TestSocket> {
    const q = new URLSearchParams({ token, ...(sessionId ? { sessionId } : {}), ...(opts.output ? { output: opts.output } : {}) });
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`${stack.wsUrl}/ws?${q}`);
      const sock = new TestSocket(ws);
      ws.once('open', () => resolve(sock));
      ws.once('unexpected-response', (_req, res) => reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode })));
      ws.once('error', reject);
    });
  }

  send(type: string, payload?: unknown, id: string | number | null = `c${this.nextId++}`): string | number | undefined {
    const frame: Record<string, unknown> = { type };
    if (id !== null) frame.id = id;
    if (payload !== undefined) frame.payload = payload;
    this.ws.send(JSON.stringify(frame));
    return id ?? undefined;
  }

  /** Sends a request and resolves with the reply that echoes its id. */
  async request(type: string, payload?: unknown, timeoutMs = 30_000): Promise<Frame> {
    const id = this.send(type, payload);
    return this.waitFor((f) => f.id === id, timeoutMs);
  }

  waitFor(pred: (f: Frame) => boolean, timeoutMs = 30_000): Promise<Frame> {
    const found = this.frames.find(pred);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const check = () => {
        const f = this.frames.find(pred);
        if (f) {
          cleanup();
          resolve(f);
        } else if (this.closed) {
          cleanup();
          reject(new Error(`socket closed (${this.closed.code} ${this.closed.reason}) before the awaited frame`));
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out; frames so far: ${JSON.stringify(this.frames.map((f) => f.type))}`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
    });
  }

  close(): void {
    this.ws.close();
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
