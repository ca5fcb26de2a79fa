/**
 * SessionLink keeps one session's data socket to its Session DO open
 * (`/agent/sessions/<id>`), redialling with jittered backoff until closed.
 * Requests on it go to a per-session Dispatcher; events and binary frames go
 * to the handlers given. While a socket is open the handlers get a DataSink
 * to send on.
 */
import WebSocket from 'ws';
import { Backoff } from '../../shared/backoff';
import { decodeBinaryFrame, FrameDecodeError, type BinaryFrame } from '../../shared/protocol/binary';
import { EdgeToAgentFrame, parseFrame, type AgentToEdgeFrame } from '../../shared/protocol/tunnel';
import { MAX_FRAME_BYTES } from '../../shared/protocol/version';
import type { Logger } from '../logger';
import { metrics } from '../metrics/agent-metrics';
import type { Dispatcher } from './dispatcher';

export interface DataSink {
  sendBinary(bytes: Uint8Array): boolean;
  sendEvent(event: string, data: unknown): boolean;
  readonly bufferedAmount: number;
}

export interface SessionLinkHandlers {
  onAttach(sink: DataSink): void;
  onDetach(): void;
  onEvent(event: string, data: unknown): void;
  onBinary(frame: BinaryFrame): void;
}

export interface SessionLinkOptions {
  edgeUrl: string;
  token: string;
  sessionId: string;
  dispatcher: Dispatcher;
  handlers: SessionLinkHandlers;
  logger: Logger;
  backoff?: Backoff;
}

export class SessionLink {
  private ws: WebSocket | undefined;
  private closed = false;
  private timer: NodeJS.Timeout | undefined;
  private pingTimer: NodeJS.Timeout | undefined;
  private readonly backoff: Backoff;

  constructor(private readonly opts: SessionLinkOptions) {
    this.backoff = opts.backoff ?? new Backoff({ baseMs: 250, capMs: 5_000 });
  }

  start(): void {
    if (!this.ws && !this.timer && !this.closed) this.dial();
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.pingTimer) clearInterval(this.pingTimer);
    this.timer = undefined;
    this.ws?.close(1000, 'session closed on the agent');
  }

  get open(): boolean {
    return this.ws?.readyState === WebSocket.OPEN;
  }

  private dial(): void {
    const { edgeUrl, token, sessionId, logger } = this.opts;
    const ws = new WebSocket(`${edgeUrl}/agent/sessions/${sessionId}`, {
      headers: { Authorization: `Bearer ${token}` },
      maxPayload: MAX_FRAME_BYTES + 64,
      // Compression costs more than it saves here and delays every keystroke.
      perMessageDeflate: false,
      handshakeTimeout: 10_000,
    });
    this.ws = ws;
    let attached = false;
    ws.on('open', () => {
      attached = true;
      this.backoff.reset();
      logger.debug('session data socket open', { sessionId });
      this.pingTimer = setInterval(() => ws.readyState === WebSocket.OPEN && ws.ping(), 15_000);
      this.pingTimer.unref();
      this.opts.handlers.onAttach({
        sendBinary: (bytes) => this.send(ws, bytes),
        sendEvent: (event, data) => this.send(ws, JSON.stringify({ type: 'event', event, data } satisfies AgentToEdgeFrame)),
        get bufferedAmount() {
          return ws.bufferedAmount;
        },
      });
    });
    ws.on('message', (data, isBinary) => {
      const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
      if (isBinary) {
        metrics.relayedBytes.inc({ direction: 'from_edge' }, buf.byteLength);
        try {
          this.opts.handlers.onBinary(decodeBinaryFrame(buf));
        } catch (err) {
          if (!(err instanceof FrameDecodeError)) throw err;
          this.send(ws, JSON.stringify({ type: 'error', error: { code: 'protocol_error', message: err.message } } satisfies AgentToEdgeFrame));
        }
        return;
      }
      const parsed = parseFrame(EdgeToAgentFrame, buf.toString('utf8'));
      if (!parsed.ok) {
        this.send(ws, JSON.stringify({ type: 'error', ...(parsed.id ? { id: parsed.id } : {}), error: parsed.error.toBody() } satisfies AgentToEdgeFrame));
        return;
      }
      const f = parsed.frame;
      if (f.type === 'req') void this.opts.dispatcher.handle(f).then((res) => this.send(ws, JSON.stringify(res)));
      else if (f.type === 'event') this.opts.handlers.onEvent(f.event, f.data);
      else if (f.type === 'error') logger.warn('edge reported an error on a data socket', { sessionId, error: f.error });
    });
    ws.on('unexpected-response', (_req, res) => {
      logger.warn('edge refused a session data socket', { sessionId, status: res.statusCode });
      ws.terminate();
      // A session the edge no longer places here will not come back: stop trying after a refusal that says so.
      if (res.statusCode === 403 || res.statusCode === 404) this.closed = true;
    });
    ws.on('error', (err) => logger.debug('session data socket error', { sessionId, error: err.message }));
    ws.on('close', () => {
      if (this.pingTimer) clearInterval(this.pingTimer);
      this.pingTimer = undefined;
      if (this.ws === ws) this.ws = undefined;
      if (attached) this.opts.handlers.onDetach();
      if (this.closed) return;
      const wait = this.backoff.next();
      this.timer = setTimeout(() => {
        this.timer = undefined;
        if (!this.closed) this.dial();
      }, wait);
      this.timer.unref();
    });
  }

  private send(ws: WebSocket, data: string | Uint8Array): boolean {
    if (ws.readyState !== WebSocket.OPEN) return false;
    if (typeof data !== 'string') metrics.relayedBytes.inc({ direction: 'to_edge' }, data.byteLength);
    ws.send(data, { binary: typeof data !== 'string' });
    return true;
  }
}
