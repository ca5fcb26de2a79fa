/**
 * The wire between the agent and the session daemon (./main.ts), over the
 * Unix socket in the session's host folder. Both ends import this module;
 * the daemon's copy is bundled into daemon.cjs.
 *
 * Framing: every frame is a 4-byte big-endian length, then that many bytes:
 *   0x01 JSON        UTF-8 JSON of one message below
 *   0x02 Output      daemon → agent: u32 ref, u8 stream (0 stdout, 1 stderr, 2 pty), f64 offset, bytes
 *   0x03 Input       agent → daemon: u32 ref, bytes (stdin, in order)
 *
 * Flow of a connection:
 *   daemon → agent  {t:'hello', version, nonce, pty}
 *   agent → daemon  {t:'auth', mac: HMAC(secret, 'agent:'+nonce), nonce: agentNonce}
 *   daemon → agent  {t:'welcome', mac: HMAC(secret, 'daemon:'+agentNonce)}   (or closes the socket)
 * The secret never crosses the socket, so a listener that took the socket's
 * path learns nothing and cannot answer the agent's nonce. Then requests
 * `{t:'req', id, m, p}` are answered by `{t:'res', id, ok, r | error}`, and
 * the daemon sends Output frames and `{t:'exit'}` events; the agent sends
 * `{t:'ack'}` events (the edge holds every byte below the offset) and Input.
 *
 * A process's exit is sent only after every Output byte it produced, so the
 * agent can end its streams at the exit's offsets. A newer authenticated
 * connection replaces an older one (the agent restarted); the new agent
 * learns what runs with `list` and resumes each stream with `attach`.
 */
import { createHmac } from 'node:crypto';
import { z } from 'zod';

export const DAEMON_PROTOCOL_VERSION = 1;
/** Where the session folder is mounted in the container, and the daemon bundle. */
export const DAEMON_RUN_DIR = '/run/mominai';
export const DAEMON_BUNDLE_PATH = '/opt/mominai/daemon.cjs';
export const DAEMON_SOCKET_NAME = 'daemon.sock';
/** Written by the container's entry command when the image has no usable Node: the agent uses docker exec. */
export const NO_DAEMON_MARK = 'no-daemon';
/** The secret the daemon reads and unlinks before it listens. */
export const SECRET_FILE_NAME = 'secret';

/** Largest frame body either side accepts. */
export const MAX_DAEMON_FRAME = 1024 * 1024 + 64;
export const FrameType = { Json: 1, Output: 2, Input: 3 } as const;
export const STREAM_CODES = ['stdout', 'stderr', 'pty'] as const;
export type DaemonStream = (typeof STREAM_CODES)[number];

const Ref = z.number().int().nonnegative().max(0xffffffff);
const Offset = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);
const Hex = z.string().regex(/^[0-9a-f]{16,128}$/);
const Signal = z.string().regex(/^SIG[A-Z0-9]{2,8}$/);
const StreamName = z.enum(STREAM_CODES);

/** What the agent attaches to a process so a restarted agent knows it again (opaque to the daemon). */
export const ProcessTag = z.object({
  processId: z.string().max(80),
  streamBase: z.number().int().nonnegative().max(0xffffffff),
  command: z.array(z.string().max(32_768)).max(1024),
  /** Epoch ms after which the agent kills it for its timeout. */
  deadline: z.number().int().positive().optional(),
});
export type ProcessTag = z.infer<typeof ProcessTag>;

export const SpawnParams = z.object({
  argv: z.array(z.string().max(32_768)).min(1).max(1024),
  cwd: z.string().max(4096),
  env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/), z.string().max(32_768)),
  tty: z.boolean(),
  cols: z.number().int().min(1).max(1000).optional(),
  rows: z.number().int().min(1).max(1000).optional(),
  tag: ProcessTag.optional(),
});
export type SpawnParams = z.infer<typeof SpawnParams>;

const RefParams = z.object({ ref: Ref });
export const Requests = {
  spawn: SpawnParams,
  list: z.object({}),
  attach: z.object({ ref: Ref, from: z.partialRecord(StreamName, Offset) }),
  kill: z.object({ ref: Ref, signals: z.array(Signal).min(1).max(4) }),
  resize: z.object({ ref: Ref, cols: z.number().int().min(1).max(1000), rows: z.number().int().min(1).max(1000) }),
  closeStdin: RefParams,
  ports: z.object({}),
} as const;
export type Method = keyof typeof Requests;

export const ExitInfoSchema = z.object({
  exitCode: z.number().int().nullable(),
  signal: Signal.optional(),
  reason: z.enum(['exit', 'killed', 'oom', 'lost']),
});

export const StreamState = z.object({ start: Offset, end: Offset, acked: Offset });
export const ProcessEntry = z.object({
  ref: Ref,
  tty: z.boolean(),
  startedAt: z.number().int().nonnegative(),
  tag: ProcessTag.optional(),
  streams: z.partialRecord(StreamName, StreamState),
  exit: ExitInfoSchema.extend({ ends: z.partialRecord(StreamName, Offset) }).optional(),
});
export type ProcessEntry = z.infer<typeof ProcessEntry>;

export const Results = {
  spawn: z.object({ ref: Ref }),
  list: z.object({ processes: z.array(ProcessEntry).max(10_000) }),
  attach: z.object({}),
  kill: z.object({}),
  resize: z.object({}),
  closeStdin: z.object({}),
  ports: z.object({ text: z.string().max(8 * 1024 * 1024) }),
} as const;

/** Messages the agent sends. */
export const AgentMessage = z.discriminatedUnion('t', [
  z.object({ t: z.literal('auth'), mac: Hex, nonce: Hex }),
  z.object({ t: z.literal('req'), id: z.number().int().nonnegative(), m: z.enum(Object.keys(Requests) as [Method, ...Method[]]), p: z.unknown() }),
  z.object({ t: z.literal('ack'), ref: Ref, stream: StreamName, offset: Offset }),
]);
export type AgentMessage = z.infer<typeof AgentMessage>;

/** Messages the daemon sends. */
export const DaemonMessage = z.discriminatedUnion('t', [
  z.object({ t: z.literal('hello'), version: z.number().int(), nonce: Hex, pty: z.boolean() }),
  z.object({ t: z.literal('welcome'), mac: Hex }),
  z.object({
    t: z.literal('res'),
    id: z.number().int().nonnegative(),
    ok: z.boolean(),
    r: z.unknown().optional(),
    error: z.object({ code: z.string().max(64), message: z.string().max(4096) }).optional(),
  }),
  z.object({ t: z.literal('exit'), ref: Ref, ends: z.partialRecord(StreamName, Offset) }).extend(ExitInfoSchema.shape),
]);
export type DaemonMessage = z.infer<typeof DaemonMessage>;

export type DecodedFrame =
  | { type: 'json'; text: string }
  | { type: 'output'; ref: number; stream: DaemonStream; offset: number; payload: Buffer }
  | { type: 'input'; ref: number; payload: Buffer };

export function encodeJson(message: unknown): Buffer {
  const body = Buffer.from(JSON.stringify(message), 'utf8');
  const out = Buffer.allocUnsafe(5 + body.byteLength);
  out.writeUInt32BE(body.byteLength + 1, 0);
  out[4] = FrameType.Json;
  body.copy(out, 5);
  return out;
}

export function encodeOutput(ref: number, stream: DaemonStream, offset: number, payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(4 + 14 + payload.byteLength);
  out.writeUInt32BE(14 + payload.byteLength, 0);
  out[4] = FrameType.Output;
  out.writeUInt32BE(ref, 5);
  out[9] = STREAM_CODES.indexOf(stream);
  out.writeDoubleBE(offset, 10);
  out.set(payload, 18);
  return out;
}

export function encodeInput(ref: number, payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(4 + 5 + payload.byteLength);
  out.writeUInt32BE(5 + payload.byteLength, 0);
  out[4] = FrameType.Input;
  out.writeUInt32BE(ref, 5);
  out.set(payload, 9);
  return out;
}

export class DaemonFrameError extends Error {
  override readonly name = 'DaemonFrameError';
}

/**
 * Cuts a byte stream into frames. `push` returns the frames completed by the
 * chunk; a frame over MAX_DAEMON_FRAME or of an unknown type throws.
 */
export class FrameReader {
  private parts: Buffer[] = [];
  private size = 0;

  push(chunk: Buffer): DecodedFrame[] {
    this.parts.push(chunk);
    this.size += chunk.byteLength;
    const frames: DecodedFrame[] = [];
    for (;;) {
      if (this.size < 4) break;
      const head = this.peek(4);
      const len = head.readUInt32BE(0);
      if (len < 1 || len > MAX_DAEMON_FRAME) throw new DaemonFrameError(`frame of ${len} bytes`);
      if (this.size < 4 + len) break;
      const whole = this.take(4 + len);
      frames.push(decodeBody(whole.subarray(4)));
    }
    return frames;
  }

  private peek(n: number): Buffer {
    if (this.parts[0]!.byteLength < n) this.parts = [Buffer.concat(this.parts)];
    return this.parts[0]!.subarray(0, n);
  }

  private take(n: number): Buffer {
    if (this.parts[0]!.byteLength < n) this.parts = [Buffer.concat(this.parts)];
    const first = this.parts[0]!;
    const out = first.subarray(0, n);
    if (first.byteLength === n) this.parts.shift();
    else this.parts[0] = first.subarray(n);
    this.size -= n;
    return out;
  }
}

function decodeBody(body: Buffer): DecodedFrame {
  const type = body[0];
  if (type === FrameType.Json) return { type: 'json', text: body.subarray(1).toString('utf8') };
  if (type === FrameType.Output) {
    if (body.byteLength < 14) throw new DaemonFrameError('short output frame');
    const stream = STREAM_CODES[body[5]!];
    const offset = body.readDoubleBE(6);
    if (!stream || !Number.isSafeInteger(offset) || offset < 0) throw new DaemonFrameError('bad output frame header');
    return { type: 'output', ref: body.readUInt32BE(1), stream, offset, payload: body.subarray(14) };
  }
  if (type === FrameType.Input) {
    if (body.byteLength < 5) throw new DaemonFrameError('short input frame');
    return { type: 'input', ref: body.readUInt32BE(1), payload: body.subarray(5) };
  }
  throw new DaemonFrameError(`unknown frame type ${String(type)}`);
}

/** Parses one JSON frame with a schema; undefined when it does not fit. */
export function parseMessage<T>(schema: z.ZodType<T>, text: string): T | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return undefined;
  }
  const parsed = schema.safeParse(raw);
  return parsed.success ? parsed.data : undefined;
}

/** The proof each side gives that it holds the session's secret, over the other side's nonce. */
export function mac(secret: Buffer, role: 'agent' | 'daemon', nonce: string): string {
  return createHmac('sha256', secret).update(`${role}:${nonce}`).digest('hex');
}
