/**
 * A session's WebSocket that stays connected: `GET /ws?token&sessionId&output=binary`.
 *
 * One socket at a time. After a drop it redials with jittered exponential
 * backoff (shared/backoff.ts) and, once the edge says `ready`, re-announces
 * what it follows: `resume {processId, offsets}` with the next offset it
 * expects on every stream of every process it has not seen end, and `watch`
 * for every watch, then `changes_since` the last change version it saw, so
 * file changes made while it was away are delivered too (or a `resync`
 * when the edge's change journal no longer reaches back). Requests get an
 * `id` and settle on the frame that echoes it; a request unanswered when the
 * socket drops fails with `connection_lost` (retryable), one made while
 * offline waits for the next socket.
 *
 * A heartbeat (`ping` every `heartbeatMs`) notices a socket that went quiet
 * without closing and replaces it.
 */
import { Backoff } from '../../shared/backoff';
import { decodeBinaryFrame, FrameDecodeError, FrameKind } from '../../shared/protocol/binary';
import type { SessionView } from '../../shared/api/containers';
import type { SetPreviewScriptPayload } from '../../shared/protocol/preview-script';
import { Emitter } from './emitter';
import { ClientErrorCode, MominaiError } from './errors';
import { toBase64 } from './bytes';
import {
  CommandExit,
  CommandOutput,
  ContainerStatus,
  ErrorPayload,
  FileChanged,
  FlowPaused,
  Gap,
  IdleWarning,
  OutputStreamAnnounce,
  PortEvent,
  PreviewMessagePayload,
  PreviewReady,
  PreviewScriptSettings,
  ServerFrameSchema,
  ServerReady,
  SessionEnvelope,
} from './protocol';
import { ProcessHandle, type ProcessLink } from './process';
import { ConnectionFiles, WatchSet } from './connection-files';
import { ConnectionProcesses } from './connection-processes';
import type { ConnectionEvents, ConnectionState, ConnectOptions, WebSocketConstructor, WebSocketLike } from './connection-types';

export type { ConnectionEvents, ConnectionState, ConnectOptions, WebSocketConstructor, WebSocketLike };

interface Pending {
  resolve(frame: { type: string; payload: unknown }): void;
  reject(err: MominaiError): void;
  timer: ReturnType<typeof setTimeout>;
  sent: boolean;
  frame: string;
}

export class SessionConnection {
  private socketNow: WebSocketLike | undefined;
  private stateNow: ConnectionState = 'connecting';
  private readonly events = new Emitter<ConnectionEvents>();
  private readonly pending = new Map<string, Pending>();
  private nextId = 1;
  private readonly backoff: Backoff;
  private redialTimer: ReturnType<typeof setTimeout> | undefined;
  private heartbeat: ReturnType<typeof setInterval> | undefined;
  private lastFrameAt = 0;
  private opened = false;
  private readonly requestTimeoutMs: number;
  private readonly heartbeatMs: number;
  private readyWaiters: Array<{ resolve(): void; reject(e: unknown): void }> = [];
  readonly processes: ConnectionProcesses;
  readonly files: ConnectionFiles;
  private readonly watches: WatchSet;
  /** Number of times the socket was replaced after a drop. */
  reconnects = 0;
  private sessionNow: SessionView | undefined;

  constructor(
    readonly sessionId: string,
    private readonly url: () => string,
    private readonly WebSocketImpl: WebSocketConstructor,
    opts: ConnectOptions = {},
  ) {
    this.backoff = new Backoff({ baseMs: 250, capMs: 5_000, ...opts.backoff });
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 30_000;
    this.heartbeatMs = opts.heartbeatMs ?? 15_000;
    const link: ProcessLink = {
      ack: (processId, stream, offset) => this.sendEvent('ack', { processId, stream, offset }),
      stdin: async (processId, data) => {
        // One frame stays under 1 MiB: text in pieces of 256 Ki UTF-16 units (never splitting a pair), bytes in 512 KiB.
        if (typeof data === 'string') {
          for (let at = 0; at < data.length || at === 0; ) {
            let end = Math.min(data.length, at + 256 * 1024);
            if (end < data.length && /[\uDC00-\uDFFF]/.test(data[end]!)) end -= 1;
            await this.request('stdin', { processId, data: data.slice(at, end) });
            at = end;
            if (at >= data.length) break;
          }
        } else {
          for (let at = 0; at < data.byteLength || at === 0; at += 512 * 1024) {
            await this.request('stdin', { processId, data: toBase64(data.subarray(at, at + 512 * 1024)), encoding: 'base64' });
            if (at + 512 * 1024 >= data.byteLength) break;
          }
        }
      },
      resize: async (processId, cols, rows) => void (await this.request('resize', { processId, cols, rows })),
      kill: async (processId, signal) => void (await this.request('kill', { processId, ...(signal ? { signal } : {}) })),
      forget: (processId) => this.processes.forget(processId),
    };
    this.processes = new ConnectionProcesses(this, link);
    this.watches = new WatchSet((c) => this.events.emit('file-change', c), () => this.events.emit('resync'));
    this.files = new ConnectionFiles(this, this.watches);
    this.dial();
  }

  get state(): ConnectionState {
    return this.stateNow;
  }

  /** The session as the edge last described it (`ready`, `container_status`). */
  get session(): SessionView | undefined {
    return this.sessionNow;
  }

  /** The socket in use now (undefined between sockets). Closing it is how tests simulate a network drop. */
  get socket(): WebSocketLike | undefined {
    return this.socketNow;
  }

  on<K extends keyof ConnectionEvents>(event: K, listener: (...args: ConnectionEvents[K]) => void): () => void {
    return this.events.on(event, listener);
  }

  /** Resolves once the edge has said `ready` on the current socket. */
  ready(): Promise<void> {
    if (this.stateNow === 'open') return Promise.resolve();
    if (this.stateNow === 'closed') return Promise.reject(new MominaiError(ClientErrorCode.Closed, 'the connection is closed'));
    return new Promise((resolve, reject) => this.readyWaiters.push({ resolve, reject }));
  }

  /**
   * Sends a request and resolves with the reply that echoes its id (an
   * `error` reply rejects). Made while offline, it waits for the next socket.
   */
  request(type: string, payload?: unknown, timeoutMs = this.requestTimeoutMs): Promise<{ type: string; payload: unknown }> {
    if (this.stateNow === 'closed') return Promise.reject(new MominaiError(ClientErrorCode.Closed, 'the connection is closed'));
    const id = `c${this.nextId++}`;
    const frame = JSON.stringify({ type, id, ...(payload === undefined ? {} : { payload }) });
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new MominaiError('timeout', `no answer to ${type} within ${timeoutMs} ms`));
      }, timeoutMs);
      const p: Pending = { resolve, reject, timer, sent: false, frame };
      this.pending.set(id, p);
      if (this.stateNow === 'open') this.transmit(p);
    });
  }

  /** Sends a frame that expects no answer (acks); dropped while offline, since resume re-establishes the state. */
  sendEvent(type: string, payload: unknown): void {
    if (this.stateNow !== 'open') return;
    try {
      this.socketNow?.send(JSON.stringify({ type, payload }));
    } catch {
      // The socket is closing; its close event starts the redial.
    }
  }

  /** Closes the socket and stays away (what follows and watches is kept) until `reconnect()`. */
  disconnect(): void {
    if (this.stateNow === 'closed') return;
    this.stateNow = 'offline';
    this.dropSocket(1000, 'client went offline');
  }

  /** Dials again now (after `disconnect()`, or to cut a backoff wait short). */
  reconnect(): void {
    if (this.stateNow === 'closed' || this.socketNow) return;
    if (this.redialTimer) clearTimeout(this.redialTimer);
    this.redialTimer = undefined;
    this.stateNow = 'connecting';
    this.dial();
  }

  /** Ends the connection for good: requests and unread process output fail with `closed`. */
  close(): void {
    if (this.stateNow === 'closed') return;
    this.stateNow = 'closed';
    if (this.redialTimer) clearTimeout(this.redialTimer);
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(new MominaiError(ClientErrorCode.Closed, 'the connection was closed'));
    }
    this.pending.clear();
    this.dropSocket(1000, 'client closed');
    for (const w of this.readyWaiters) w.reject(new MominaiError(ClientErrorCode.Closed, 'the connection is closed'));
    this.readyWaiters = [];
    this.processes.closeAll();
  }

  /* ---- processes, files (the parts live in ./connection-processes.ts and ./connection-files.ts) ---- */

  /** Runs `sh -c command` in /workspace (or `cwd`). */
  run(command: string, opts?: Parameters<ConnectionProcesses['run']>[1]): Promise<ProcessHandle> {
    return this.processes.run(command, opts);
  }

  /** Runs a program with arguments, in a PTY with `tty: true`. */
  exec(command: string, args: string[] = [], opts?: Parameters<ConnectionProcesses['exec']>[2]): Promise<ProcessHandle> {
    return this.processes.exec(command, args, opts);
  }

  /** An interactive shell in a PTY (bash where the image has it, else sh). */
  openTerminal(opts?: Parameters<ConnectionProcesses['openTerminal']>[0]): Promise<ProcessHandle> {
    return this.processes.openTerminal(opts);
  }

  /** Follows a process this connection did not start (another tab's, or after a page reload) from the given offsets. */
  attach(processId: string, opts?: Parameters<ConnectionProcesses['attach']>[1]): Promise<ProcessHandle> {
    return this.processes.attach(processId, opts);
  }

  /** `start_preview {port}` → `{port, url, pathUrl}` once the port accepts connections. */
  async startPreview(port: number): Promise<{ port: number; url: string; pathUrl?: string }> {
    const reply = await this.request('start_preview', { port }, 120_000);
    const p = PreviewReady.safeParse(reply.payload);
    if (!p.success) throw new MominaiError(ClientErrorCode.BadResponse, 'unexpected preview_ready');
    return p.data;
  }

  /**
   * `set_preview_script`: the script the edge puts first in `<head>` of this
   * session's preview pages, and whether their errors come back as
   * `preview-message` events; fields left out keep what the session has
   * (`script: null` removes it). Resolves with what the session keeps now.
   */
  async setPreviewScript(settings: SetPreviewScriptPayload): Promise<PreviewScriptSettings> {
    const reply = await this.request('set_preview_script', settings);
    const p = PreviewScriptSettings.safeParse(reply.payload);
    if (!p.success) throw new MominaiError(ClientErrorCode.BadResponse, 'unexpected preview_script_set');
    return p.data;
  }

  /* ---- the socket ---- */

  private dial(): void {
    let ws: WebSocketLike;
    try {
      ws = new this.WebSocketImpl(this.url());
    } catch (err) {
      this.events.emit('error', new MominaiError(ClientErrorCode.NetworkError, `cannot open the WebSocket: ${String(err)}`, { cause: err }));
      return this.scheduleRedial();
    }
    ws.binaryType = 'arraybuffer';
    this.socketNow = ws;
    this.lastFrameAt = Date.now();
    ws.onmessage = (ev) => {
      if (ws !== this.socketNow) return;
      this.lastFrameAt = Date.now();
      this.onMessage(ev.data);
    };
    ws.onclose = (ev) => {
      if (ws !== this.socketNow) return;
      this.socketGone(ev.code, ev.reason);
    };
    ws.onerror = () => {
      // A close event follows; that is where the redial starts.
    };
  }

  private dropSocket(code: number, reason: string): void {
    const ws = this.socketNow;
    if (!ws) return;
    try {
      ws.close(code, reason);
    } catch {
      // already closing
    }
    this.socketGone(1006, reason);
  }

  private socketGone(code: number, reason: string): void {
    this.socketNow = undefined;
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = undefined;
    for (const [id, p] of this.pending) {
      if (!p.sent) continue;
      clearTimeout(p.timer);
      this.pending.delete(id);
      p.reject(new MominaiError(ClientErrorCode.ConnectionLost, 'the connection dropped before the answer came; it reconnects by itself'));
    }
    this.events.emit('close', { code, reason });
    if (this.stateNow === 'open' || this.stateNow === 'connecting') {
      this.stateNow = 'connecting';
      this.scheduleRedial();
    }
  }

  private scheduleRedial(): void {
    if (this.stateNow !== 'connecting' || this.redialTimer) return;
    this.redialTimer = setTimeout(() => {
      this.redialTimer = undefined;
      if (this.stateNow === 'connecting' && !this.socketNow) this.dial();
    }, this.backoff.next());
  }

  private onReady(payload: unknown): void {
    const parsed = SessionEnvelope.safeParse(payload);
    if (!parsed.success) return this.protocolError('ready without a session');
    this.sessionNow = parsed.data.session;
    const reconnect = this.opened;
    if (reconnect) this.reconnects += 1;
    this.opened = true;
    this.stateNow = 'open';
    this.backoff.reset();
    this.heartbeat = setInterval(() => this.beat(), this.heartbeatMs);
    // Re-announce first, then let waiting requests go: a resumed stream must not miss what they cause.
    this.processes.resumeAll();
    this.watches.resubscribe(this);
    for (const p of this.pending.values()) if (!p.sent) this.transmit(p);
    this.events.emit('open', { session: parsed.data.session, reconnect });
    for (const w of this.readyWaiters) w.resolve();
    this.readyWaiters = [];
  }

  private beat(): void {
    if (Date.now() - this.lastFrameAt > 2 * this.heartbeatMs) {
      this.dropSocket(4000, 'heartbeat missed');
      return;
    }
    this.request('ping', undefined, this.heartbeatMs * 2).catch(() => undefined);
  }

  private transmit(p: Pending): void {
    try {
      this.socketNow?.send(p.frame);
      p.sent = true;
    } catch {
      // Closing: the request waits for the next socket.
    }
  }

  private onMessage(data: unknown): void {
    if (typeof data !== 'string') {
      const bytes = data instanceof ArrayBuffer ? data : ArrayBuffer.isView(data) ? data : undefined;
      if (!bytes) return;
      try {
        const frame = decodeBinaryFrame(bytes);
        if (frame.kind === FrameKind.Output) this.processes.onBinary(frame.streamId, frame.offset, frame.payload);
      } catch (err) {
        if (!(err instanceof FrameDecodeError)) throw err;
        this.protocolError(err.message);
      }
      return;
    }
    let json: unknown;
    try {
      json = JSON.parse(data);
    } catch {
      return this.protocolError('a text frame that is not JSON');
    }
    const parsed = ServerFrameSchema.safeParse(json);
    if (!parsed.success) return this.protocolError('a frame without a type');
    const { type, id, payload } = parsed.data;
    if (id !== undefined) {
      const p = this.pending.get(String(id));
      if (p) {
        this.pending.delete(String(id));
        clearTimeout(p.timer);
        if (type === 'error') {
          const e = ErrorPayload.safeParse(payload);
          p.reject(e.success ? MominaiError.fromBody(e.data) : new MominaiError(ClientErrorCode.BadResponse, 'an error frame without code'));
        } else {
          p.resolve({ type, payload });
        }
        return;
      }
    }
    this.onEvent(type, payload);
  }

  private onEvent(type: string, payload: unknown): void {
    const check = <T>(schema: { safeParse(v: unknown): { success: true; data: T } | { success: false } }, then: (v: T) => void) => {
      const r = schema.safeParse(payload);
      if (r.success) then(r.data);
      else this.protocolError(`a ${type} frame that does not match its schema`);
    };
    switch (type) {
      case 'ready':
        return this.onReady(payload);
      case 'output_stream':
        return check(OutputStreamAnnounce, (p) => this.processes.announce(p.processId, p.stream, p.streamId));
      case 'command_output':
        return check(CommandOutput, (p) => this.processes.onText(p.processId, p.stream, p.offset, p.data));
      case 'command_exit':
        return check(CommandExit, (p) => this.processes.onExit(p));
      case 'gap':
        return check(Gap, (p) => {
          this.processes.onGap(p);
          this.events.emit('gap', p);
        });
      case 'flow_paused':
        return check(FlowPaused, (p) => this.events.emit('flow-paused', p));
      case 'file_changed':
        return check(FileChanged, (p) => this.watches.onChange(p));
      case 'container_status':
        return check(ContainerStatus, (p) => {
          this.sessionNow = p.session ?? (this.sessionNow ? { ...this.sessionNow, status: p.status } : undefined);
          this.events.emit('status', p);
          // A deleted session has nothing left to reconnect to.
          if (p.status === 'destroyed') this.close();
        });
      case 'idle_warning':
        return check(IdleWarning, (p) => this.events.emit('idle-warning', p));
      case 'port':
        return check(PortEvent, (p) => this.events.emit('port', p));
      case 'server-ready':
        return check(ServerReady, (p) => this.events.emit('server-ready', p));
      case 'preview_message':
        return check(PreviewMessagePayload, (p) => this.events.emit('preview-message', p));
      case 'error':
        return check(ErrorPayload, (p) => this.events.emit('error', MominaiError.fromBody(p)));
      default:
        // Frames this SDK version does not know (newer edges) are ignored.
        return;
    }
  }

  private protocolError(message: string): void {
    this.events.emit('error', new MominaiError(ClientErrorCode.BadResponse, message));
  }
}
