/**
 * The agent's side of one session's preview traffic (the wire contract is
 * shared/protocol/preview.ts): plain HTTP requests and WebSockets relayed to
 * the session's dev servers, listening-port detection, and the port requests
 * of the Session DO. Every connection goes through TargetGuard: the
 * container's own address and a declared or listening port, nothing else.
 *
 * Ordering on the data socket: the answer to http.request (an HttpHead frame)
 * or ws.open (a `res`) must reach the DO before the first body or message
 * frame of the response. The HttpHead frame is sent before the body pump
 * starts; the dispatcher sends ws.open's `res` in the microtasks that follow
 * the handler's return, so queued messages start on the next setImmediate,
 * which runs only once those microtasks are done.
 */
import type { Readable } from 'node:stream';
import { z } from 'zod';
import { AppError, ErrorCode, fromUnknown } from '../../../shared/errors';
import { FrameFlag, FrameKind, type BinaryFrame } from '../../../shared/protocol/binary';
import {
  declaredContentLength,
  encodeHttpHead,
  HttpRequestParams,
  INLINE_BODY_MAX,
  PortsDeclareParams,
  PortsWaitParams,
  WsCloseEvent,
  WsOpenParams,
  type HttpResponseHead,
} from '../../../shared/protocol/preview';
import type { Dispatcher } from '../../connection/dispatcher';
import type { Logger } from '../../logger';
import { metrics } from '../../metrics/agent-metrics';
import type { ByteStreams } from '../streams/byte-streams';
import { HttpRelay, upstreamFailure } from './http-relay';
import { PortWatcher } from './port-watcher';
import { waitForPort } from './port-wait';
import { TargetGuard, type SessionTarget } from './target-guard';
import { WsRelay } from './ws-relay';

export interface PreviewServiceOptions {
  sessionId: string;
  logger: Logger;
  /** Shared with the session's other byte streams. */
  streams: ByteStreams;
  /** Agent → DO events (`port`, `ws.close`, `http.error`). */
  events: { send(event: string, data: unknown): boolean };
  /** The session's container address (IP) and declared ports, looked up fresh (changes after a restart). */
  target(): Promise<SessionTarget | null>;
  /** TCP ports listening inside the session (see ./proc-net.ts execListListening). */
  listListening(): Promise<number[]>;
  /** Port detection interval (default 1000 ms). */
  pollMs?: number;
  /** Bytes queued on the data socket; when given, WebSockets from a fast dev server pause for a slow client. */
  dataBuffered?: () => number;
  /** Whether the target may be a loopback address (default true, for the local runtime; pass false with Docker). */
  allowLoopback?: boolean;
  /** Most relayed requests and WebSockets open at once (MAX_PREVIEW_SOCKETS_PER_SESSION, default 256); more are refused with limit_exceeded. */
  maxActive?: number;
  /** Most `ports.wait` (start_preview) waits at once (MAX_PREVIEW_WAITS_PER_SESSION, default 8); more are refused with limit_exceeded. */
  maxWaits?: number;
  /** Response-head and WebSocket-handshake limit (default 60 s). */
  headersTimeoutMs?: number;
}

interface Exchange {
  streamBase: number;
  /** The request body and, once the head is in, the response body: destroyed when the exchange ends. */
  bodies: Readable[];
}

/** The highest streamBase whose response stream (streamBase + 1) is still a u32. */
const MAX_STREAM_BASE = 0xffffffff - 1;
const PortsListParams = z.object({}).nullish();

export class PreviewService {
  private readonly log: Logger;
  private readonly watcher: PortWatcher;
  private readonly guard: TargetGuard;
  private readonly http: HttpRelay;
  private readonly sockets = new Map<number, WsRelay>();
  /** Relayed HTTP requests by streamBase, from their start until their response body is sent or dropped. */
  private readonly exchanges = new Map<number, Exchange>();
  private readonly waits = new Set<AbortController>();
  private readonly maxActive: number;
  private readonly maxWaits: number;
  private readonly headersTimeoutMs: number;
  /** Bumped by stop(): work that was waiting on a lookup when the service stopped must not connect. */
  private epoch = 0;

  constructor(private readonly opts: PreviewServiceOptions) {
    this.log = opts.logger.child({ service: 'preview' });
    this.maxActive = opts.maxActive ?? 256;
    this.maxWaits = opts.maxWaits ?? 8;
    this.headersTimeoutMs = opts.headersTimeoutMs ?? 60_000;
    this.watcher = new PortWatcher({
      list: () => opts.listListening(),
      pollMs: opts.pollMs ?? 1_000,
      logger: this.log,
      onChange: (port, state) => opts.events.send('port', { port, state }),
    });
    this.guard = new TargetGuard({
      target: () => opts.target(),
      watcher: this.watcher,
      ...(opts.allowLoopback === undefined ? {} : { allowLoopback: opts.allowLoopback }),
    });
    this.http = new HttpRelay({ logger: this.log, headersTimeoutMs: this.headersTimeoutMs });
  }

  register(dispatcher: Dispatcher): void {
    dispatcher
      .on('ws.open', WsOpenParams, (p) => this.wsOpen(p))
      .on('ports.list', PortsListParams, () => this.portsList())
      .on('ports.wait', PortsWaitParams, (p) => this.portsWait(p.port, p.timeoutMs))
      .on('ports.declare', PortsDeclareParams, async (p) => {
        this.guard.declare(p.ports);
        return { ports: [...new Set(p.ports)].sort((a, b) => a - b) };
      });
  }

  /** Handles `http.request` and `ws.close` from the DO; true if the event was for this service. */
  onEvent(event: string, data: unknown): boolean {
    if (event === 'http.request') {
      this.httpEvent(data);
      return true;
    }
    if (event !== 'ws.close') return false;
    const parsed = WsCloseEvent.safeParse(data);
    if (!parsed.success) {
      this.log.warn('bad ws.close from the edge', { data });
      return true;
    }
    this.sockets.get(parsed.data.streamBase)?.close(parsed.data.code, parsed.data.reason, false);
    return true;
  }

  /** Takes a client → container WebSocket message; true if it belongs to a relayed socket. */
  onBinary(frame: BinaryFrame): boolean {
    if (frame.kind !== FrameKind.WsMessage) return false;
    const relay = this.sockets.get(frame.streamId);
    if (!relay) return false;
    relay.onClientFrame(frame);
    return true;
  }

  start(): void {
    this.watcher.start();
  }

  /** Stops port detection and drops every relayed request, socket and pooled connection. */
  stop(): void {
    this.epoch++;
    this.watcher.stop();
    for (const w of this.waits) w.abort();
    for (const relay of [...this.sockets.values()]) relay.terminate(1001, 'the preview relay stopped');
    for (const x of this.exchanges.values()) for (const b of x.bodies) b.destroy();
    void this.http.close();
  }

  /** Open relayed HTTP requests and WebSockets (for /health previews.active). */
  activeCount(): number {
    return this.exchanges.size + this.sockets.size;
  }

  /** Checks a new exchange or socket can take `streamBase`; synchronous, so nothing is awaited before a body stream is claimed. */
  private checkNew(streamBase: number): void {
    if (streamBase > MAX_STREAM_BASE) throw new AppError(ErrorCode.ValidationFailed, `streamBase must be at most ${MAX_STREAM_BASE}`);
    if (this.exchanges.has(streamBase) || this.sockets.has(streamBase)) {
      throw new AppError(ErrorCode.Conflict, `stream ${streamBase} is already in use`);
    }
    if (this.activeCount() >= this.maxActive) {
      throw new AppError(ErrorCode.LimitExceeded, `the session already has ${this.maxActive} preview connections open (MAX_PREVIEW_SOCKETS_PER_SESSION)`);
    }
  }

  /**
   * `http.request`: answered by an HttpHead frame on streamBase + 1, or by an
   * `http.error` event when no response head can be had. A request that does
   * not validate is refused the same way when it names its streamBase.
   */
  private httpEvent(data: unknown): void {
    const parsed = HttpRequestParams.safeParse(data);
    if (!parsed.success) {
      this.log.warn('bad http.request from the edge', { issues: parsed.error.issues.slice(0, 3).map((i) => i.message) });
      const named = HttpRequestParams.pick({ streamBase: true }).safeParse(data);
      if (named.success && named.data.streamBase <= MAX_STREAM_BASE) this.httpError(named.data.streamBase, new AppError(ErrorCode.ValidationFailed, 'bad http.request parameters'));
      return;
    }
    const p = parsed.data;
    const timed = metrics.previewStarted();
    this.httpRequest(p).then(
      (answer) => (timed('ok'), this.answer(p, answer)),
      (err: unknown) => (timed('error'), this.httpError(p.streamBase, fromUnknown(err))),
    );
  }

  private httpError(streamBase: number, err: AppError): void {
    this.opts.events.send('http.error', { streamBase, error: err.toBody() });
  }

  /** Sends the head (with the body when it is already whole), then pumps the rest of the body. */
  private answer(p: HttpRequestParams, a: { x: Exchange; head: HttpResponseHead; inline: Uint8Array | undefined; body: Readable }): void {
    try {
      this.opts.streams.frame(p.streamBase + 1, FrameKind.HttpHead, 0, encodeHttpHead(a.head, a.inline), a.inline ? FrameFlag.End : 0);
    } catch (err) {
      // The socket closed (nobody waits then), or the frame could not be built: the DO must not wait for it.
      this.log.debug('preview response head not sent', { streamBase: p.streamBase, error: err });
      this.httpError(p.streamBase, fromUnknown(err));
      this.finish(a.x);
      return;
    }
    if (a.inline) this.finish(a.x);
    else void this.pumpBody(a.x, a.body);
  }

  private async httpRequest(p: HttpRequestParams): Promise<{ x: Exchange; head: HttpResponseHead; inline: Uint8Array | undefined; body: Readable }> {
    this.checkNew(p.streamBase);
    // Claim the request body's stream before anything is awaited: its first frames may be
    // the very next messages on the data socket.
    const reqBody = p.hasBody ? this.opts.streams.receive(p.streamBase) : undefined;
    const x: Exchange = { streamBase: p.streamBase, bodies: reqBody ? [reqBody] : [] };
    this.exchanges.set(p.streamBase, x);
    try {
      const epoch = this.epoch;
      const address = await this.guard.resolve(p.port);
      if (epoch !== this.epoch) throw new AppError(ErrorCode.AgentUnavailable, 'the preview relay closed');
      const res = await this.http.request(p, address, reqBody).catch((err: unknown) => {
        if (err instanceof AppError && err.code === ErrorCode.AgentUnavailable) this.guard.invalidate();
        throw err;
      });
      x.bodies.push(res.body);
      const inline = await readWholeIfSmall(p.method, res.head, res.body);
      return { x, head: res.head, inline, body: res.body };
    } catch (err) {
      this.finish(x);
      const e = err instanceof AppError ? err : upstreamFailure(err, p.port, this.headersTimeoutMs);
      if (e.code === ErrorCode.Internal) this.log.error('preview request failed', { port: p.port, error: err });
      throw e;
    }
  }

  private finish(x: Exchange): void {
    for (const b of x.bodies) b.destroy();
    if (this.exchanges.get(x.streamBase) === x) this.exchanges.delete(x.streamBase);
  }

  private async pumpBody(x: Exchange, body: Readable): Promise<void> {
    try {
      await this.opts.streams.send(x.streamBase + 1, FrameKind.HttpBody, body);
    } catch (err) {
      // No End frame goes out: a body cut short must not reach the browser as a complete one.
      this.log.debug('preview response body not relayed to the end', { streamBase: x.streamBase, error: err });
    } finally {
      this.finish(x);
    }
  }

  private async wsOpen(p: WsOpenParams): Promise<{ protocol: string }> {
    metrics.previewRequests.inc({ kind: 'websocket', outcome: 'ok' });
    this.checkNew(p.streamBase);
    const relay = new WsRelay(p, {
      streams: this.opts.streams,
      events: this.opts.events,
      logger: this.log,
      handshakeTimeoutMs: this.headersTimeoutMs,
      ...(this.opts.dataBuffered ? { dataBuffered: this.opts.dataBuffered } : {}),
      onDone: (r) => {
        if (this.sockets.get(r.streamBase) === r) this.sockets.delete(r.streamBase);
      },
    });
    // Reserved before the first await, so stop() and activeCount() see it while it connects.
    this.sockets.set(p.streamBase, relay);
    try {
      const address = await this.guard.resolve(p.port);
      const result = await relay.open(address);
      setImmediate(() => relay.start());
      return result;
    } catch (err) {
      if (this.sockets.get(p.streamBase) === relay) this.sockets.delete(p.streamBase);
      relay.terminate(1011, 'open failed');
      throw err;
    }
  }

  private async portsList(): Promise<{ ports: Array<{ port: number; declared: boolean; open: boolean }> }> {
    const [target, listening] = await Promise.all([this.guard.target().catch(() => null), this.watcher.refresh(250)]);
    const declared = this.guard.declared(target);
    const all = [...new Set([...declared, ...listening])].sort((a, b) => a - b);
    return { ports: all.map((port) => ({ port, declared: declared.has(port), open: listening.has(port) })) };
  }

  private async portsWait(port: number, timeoutMs: number): Promise<{ port: number }> {
    if (this.waits.size >= this.maxWaits) {
      throw new AppError(ErrorCode.LimitExceeded, `the session already waits for ${this.maxWaits} ports (MAX_PREVIEW_WAITS_PER_SESSION)`);
    }
    const abort = new AbortController();
    this.waits.add(abort);
    try {
      await waitForPort({ port, timeoutMs, signal: abort.signal, address: async () => (await this.guard.target())?.address });
      return { port };
    } finally {
      this.waits.delete(abort);
    }
  }
}

/**
 * The whole body when the response has none (HEAD, 1xx, 204, 304) or declares
 * a Content-Length up to INLINE_BODY_MAX: it then travels inside the head's
 * frame. Otherwise undefined, and the body streams (a response of unknown
 * length, such as server-sent events, must not wait for its end).
 */
async function readWholeIfSmall(method: string, head: HttpResponseHead, body: Readable): Promise<Uint8Array | undefined> {
  const bodiless = method === 'HEAD' || head.status < 200 || head.status === 204 || head.status === 304;
  const declared = declaredContentLength(head.headers);
  if (!bodiless && (declared === undefined || declared > INLINE_BODY_MAX)) return undefined;
  const parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    const b = chunk as Buffer;
    size += b.byteLength;
    // undici holds the server to its Content-Length; this bound is only a backstop.
    if (size > INLINE_BODY_MAX) throw new AppError(ErrorCode.AgentUnavailable, 'the response body is longer than it declared');
    parts.push(b);
  }
  if (bodiless) return new Uint8Array(0);
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts, size);
}
