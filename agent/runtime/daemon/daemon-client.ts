/**
 * The agent's end of one session daemon's socket (../../daemon/protocol.ts):
 * mutual authentication over nonces, typed requests, and the routing of
 * Output frames and exit events to the process handles they belong to.
 *
 * Everything the daemon sends is untrusted input (it runs inside the user's
 * container): frames are size-bounded, every message goes through its zod
 * schema, and a daemon that breaks the protocol loses its connection, which
 * ends its processes as `lost`.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import net from 'node:net';
import { AppError, ErrorCode } from '../../../shared/errors';
import {
  DaemonMessage,
  DAEMON_PROTOCOL_VERSION,
  encodeInput,
  encodeJson,
  FrameReader,
  mac,
  parseMessage,
  Results,
  type DaemonStream,
  type Method,
} from '../../daemon/protocol';
import type { Requests } from '../../daemon/protocol';
import type { Logger } from '../../logger';
import type { z } from 'zod';
import type { ExitInfo } from '../runtime';

/** What a process handle learns from the connection. */
export interface ProcessSink {
  output(stream: DaemonStream, offset: number, bytes: Buffer): void;
  exit(info: ExitInfo): void;
  lost(): void;
}

const REQUEST_TIMEOUT_MS = 30_000;


/** Results by method, as a mapped type: indexing it with a generic method keeps the method's own result type. */
const ResultSchemas: { [K in Method]: z.ZodType<z.infer<(typeof Results)[K]>> } = Results;

export class DaemonClient {
  /** The daemon can give a PTY (`script` is in the image). */
  pty = false;
  private readonly sinks = new Map<number, ProcessSink>();
  /**
   * Frames of a process whose handle does not exist yet: the spawn's answer
   * and its first output can arrive in one read, and the handle is made only
   * when the answer's promise settles. Bounded; handed over by `register`.
   */
  private readonly early = new Map<number, Array<ReturnType<FrameReader['push']>[number]>>();
  private earlyBytes = 0;
  private readonly pending = new Map<number, { resolve(v: unknown): void; reject(e: unknown): void; timer: NodeJS.Timeout }>();
  private nextId = 1;
  private closedFlag = false;
  private readonly closeListeners: Array<() => void> = [];

  private constructor(
    private readonly sock: net.Socket,
    private readonly log: Logger,
  ) {}

  /** Connects and authenticates; rejects when the socket refuses or the daemon cannot prove the secret. */
  static connect(socketPath: string, secret: Buffer, log: Logger, timeoutMs = 5_000): Promise<DaemonClient> {
    return new Promise((resolve, reject) => {
      const sock = net.createConnection(socketPath);
      const client = new DaemonClient(sock, log);
      const reader = new FrameReader();
      const ourNonce = randomBytes(16).toString('hex');
      let stage: 'hello' | 'welcome' | 'open' = 'hello';
      const fail = (err: Error) => {
        clearTimeout(timer);
        sock.destroy();
        reject(err);
      };
      const timer = setTimeout(() => fail(new Error('the session daemon did not answer')), timeoutMs);
      sock.once('error', (err) => stage !== 'open' && fail(err));
      sock.on('data', (chunk: Buffer) => {
        let frames;
        try {
          frames = reader.push(chunk);
        } catch (err) {
          log.warn('session daemon broke the framing; disconnecting', { error: String(err) });
          return void sock.destroy();
        }
        for (const f of frames) {
          if (stage === 'open') {
            client.onFrame(f);
            continue;
          }
          const m = f.type === 'json' ? parseMessage(DaemonMessage, f.text) : undefined;
          if (stage === 'hello' && m?.t === 'hello' && m.version === DAEMON_PROTOCOL_VERSION) {
            client.pty = m.pty;
            sock.write(encodeJson({ t: 'auth', mac: mac(secret, 'agent', m.nonce), nonce: ourNonce }));
            stage = 'welcome';
          } else if (stage === 'welcome' && m?.t === 'welcome' && sameHex(m.mac, mac(secret, 'daemon', ourNonce))) {
            stage = 'open';
            clearTimeout(timer);
            resolve(client);
          } else {
            return fail(new Error('the session daemon failed the handshake'));
          }
        }
      });
      sock.once('close', () => {
        if (stage !== 'open') fail(new Error('the session daemon closed the connection'));
        else client.closedByPeer();
      });
    });
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  whenClosed(listener: () => void): void {
    if (this.closedFlag) listener();
    else this.closeListeners.push(listener);
  }

  /** Routes a process's Output frames and exit to `sink` from now on. */
  register(ref: number, sink: ProcessSink): void {
    if (this.closedFlag) return sink.lost();
    this.sinks.set(ref, sink);
    const held = this.early.get(ref);
    this.early.delete(ref);
    for (const f of held ?? []) {
      if (f.type === 'output') this.earlyBytes -= f.payload.byteLength;
      this.onFrame(f);
    }
  }

  async request<M extends Method>(method: M, params: z.input<(typeof Requests)[M]>): Promise<z.infer<(typeof Results)[M]>> {
    if (this.closedFlag) throw new AppError(ErrorCode.Conflict, 'the session is not running');
    const id = this.nextId++;
    const raw = await new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new AppError(ErrorCode.Timeout, `the session daemon did not answer ${method}`));
      }, REQUEST_TIMEOUT_MS);
      this.pending.set(id, { resolve, reject, timer });
      this.sock.write(encodeJson({ t: 'req', id, m: method, p: params }));
    });
    const parsed = ResultSchemas[method].safeParse(raw);
    if (!parsed.success) throw new AppError(ErrorCode.ProtocolError, `the session daemon answered ${method} with something else`);
    return parsed.data;
  }

  input(ref: number, bytes: Uint8Array): void {
    if (this.closedFlag) return;
    for (let at = 0; at < bytes.byteLength; at += 512 * 1024) this.sock.write(encodeInput(ref, bytes.subarray(at, at + 512 * 1024)));
  }

  ack(ref: number, stream: DaemonStream, offset: number): void {
    if (!this.closedFlag) this.sock.write(encodeJson({ t: 'ack', ref, stream, offset }));
  }

  /** Disconnects without touching the processes: they keep running in the container. */
  close(): void {
    this.sock.destroy();
  }

  private onFrame(f: ReturnType<FrameReader['push']>[number]): void {
    if (f.type === 'output') {
      const sink = this.sinks.get(f.ref);
      if (sink) return sink.output(f.stream, f.offset, f.payload);
      return this.hold(f.ref, f, f.payload.byteLength);
    }
    if (f.type !== 'json') return;
    const m = parseMessage(DaemonMessage, f.text);
    if (!m) return this.log.warn('unreadable message from a session daemon');
    if (m.t === 'res') {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      clearTimeout(p.timer);
      if (m.ok) p.resolve(m.r);
      else p.reject(daemonError(m.error));
    } else if (m.t === 'exit') {
      const sink = this.sinks.get(m.ref);
      if (!sink) return this.hold(m.ref, f, 0);
      this.sinks.delete(m.ref);
      sink?.exit({ exitCode: m.exitCode, reason: m.reason, ...(m.signal !== undefined ? { signal: m.signal } : {}) });
    }
  }

  private hold(ref: number, f: ReturnType<FrameReader['push']>[number], bytes: number): void {
    if (this.earlyBytes + bytes > 8 * 1024 * 1024 || this.early.size > 1024) {
      this.log.warn('dropping frames of a process no handle claimed', { ref });
      return;
    }
    this.earlyBytes += bytes;
    const list = this.early.get(ref) ?? [];
    list.push(f);
    this.early.set(ref, list);
  }

  private closedByPeer(): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(new AppError(ErrorCode.Conflict, 'the session daemon went away (the container stopped)'));
    }
    this.pending.clear();
    const sinks = [...this.sinks.values()];
    this.sinks.clear();
    for (const s of sinks) s.lost();
    for (const l of this.closeListeners.splice(0)) l();
  }
}

function sameHex(a: string, b: string): boolean {
  const x = Buffer.from(a, 'hex');
  const y = Buffer.from(b, 'hex');
  return x.byteLength === y.byteLength && timingSafeEqual(x, y);
}

function daemonError(e: { code: string; message: string } | undefined): AppError {
  const code = e?.code === 'not_found' ? ErrorCode.NotFound : e?.code === 'validation_failed' ? ErrorCode.ValidationFailed : ErrorCode.Internal;
  return new AppError(code, `session daemon: ${e?.message ?? 'failed'}`);
}
