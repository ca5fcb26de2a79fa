/**
 * The agent's side of one session's preview traffic (the wire contract is
 * shared/protocol/preview.ts): plain HTTP requests and WebSockets relayed to
 * the session's dev servers, listening-port detection, and the port requests
 * of the Session DO. Every connection goes through TargetGuard: the
 * container's own address and a declared or listening port, nothing else.
 *
 * Ordering on the data socket: the `res` to http.request or ws.open must
 * reach the DO before the first body or message frame of the response. The
 * dispatcher sends that `res` in the microtasks that follow the handler's
 * return, so body pumps and queued messages start on the next setImmediate,
 * which runs only once those microtasks are done.
 */
import type { Readable } from 'node:stream';
import { z } from 'zod';
import { AppError, ErrorCode, fromUnknown } from '../../../shared/errors';
import { FrameKind, type BinaryFrame } from '../../../shared/protocol/binary';
import {
  HttpRequestParams,
  PortsDeclareParams,
  PortsWaitParams,
  WsCloseEvent,
  WsOpenParams,
  type HttpResponseHead,
} from '../../../shared/protocol/preview';
import type { Dispatcher } from '../../connection/dispatcher';
import type { Logger } from '../../logger';
import type { ByteStreams } from '../streams/byte-streams';
import { HttpRelay } from './http-relay';
import { PortWatcher } from './port-watcher';
import { waitForPort } from './port-wait';
import { TargetGuard, type SessionTarget } from './target-guard';
import { WsRelay } from './ws-relay';

export interface PreviewServiceOptions {
  sessionId: string;
  logger: Logger;
  /** Shared with the session's other byte streams. */
  streams: ByteStreams;
  /** Agent → DO events (`port`, `ws.close`). */
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
  /** Most relayed requests and WebSockets open at once (default 512); more are refused with rate_limited. */
  maxActive?: number;
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
  private readonly headersTimeoutMs: number;
  /** Bumped by stop(): work that was waiting on a lookup when the service stopped must not connect. */
  private epoch = 0;

  constructor(private readonly opts: PreviewServiceOptions) {
    this.log = opts.logger.child({ service: 'preview' });
    this.maxActive = opts.maxActive ?? 512;
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
      .on('http.request', HttpRequestParams, (p) => this.httpRequest(p))
      .on('ws.open', WsOpenParams, (p) => this.wsOpen(p))
      .on('ports.list', PortsListParams, () => this.portsList())
      .on('ports.wait', PortsWaitParams, (p) => this.portsWait(p.port, p.timeoutMs))
      .on('ports.declare', PortsDeclareParams, async (p) => {
        this.guard.declare(p.ports);
        return { ports: [...new Set(p.ports)].sort((a, b) => a - b) };
      });
  }

  /** Handles `ws.close` from the DO; true if the event was for this service. */
  onEvent(event: string, data: unknown): boolean {
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
      throw new AppError(ErrorCode.RateLimited, `the session already has ${this.maxActive} preview connections open`);
    }
  }

  private async httpRequest(p: HttpRequestParams): Promise<HttpResponseHead> {
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
      setImmediate(() => void this.pumpBody(x, res.body));
      return res.head;
    } catch (err) {
      reqBody?.destroy();
      this.exchanges.delete(p.streamBase);
      if (fromUnknown(err).code === ErrorCode.Internal) this.log.error('preview request failed', { port: p.port, error: err });
      throw err;
    }
  }

  private async pumpBody(x: Exchange, body: Readable): Promise<void> {
    try {
      await this.opts.streams.send(x.streamBase + 1, FrameKind.HttpBody, body);
    } catch (err) {
      // No End frame goes out: a body cut short must not reach the browser as a complete one.
      this.log.debug('preview response body not relayed to the end', { streamBase: x.streamBase, error: err });
    } finally {
      for (const b of x.bodies) b.destroy();
      if (this.exchanges.get(x.streamBase) === x) this.exchanges.delete(x.streamBase);
    }
  }

  private async wsOpen(p: WsOpenParams): Promise<{ protocol: string }> {
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
