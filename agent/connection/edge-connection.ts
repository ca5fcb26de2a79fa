/**
 * EdgeConnection owns exactly one control socket to the edge: it dials, says
 * hello, waits for welcome, heartbeats, sends frames and hands received frames
 * on. It never redials; ./reconnect-loop.ts does that.
 */
import { EventEmitter } from 'node:events';
import WebSocket from 'ws';
import { z } from 'zod';
import { jsonText } from '../../shared/json-text';
import {
  EdgeToAgentFrame,
  parseFrame,
  type AgentToEdgeFrame,
  type HelloFrame,
  type WelcomeFrame,
} from '../../shared/protocol/tunnel';
import { MAX_FRAME_BYTES } from '../../shared/protocol/version';
import type { Logger } from '../logger';

export interface EdgeConnectionOptions {
  url: string;
  token: string;
  hello: () => Promise<HelloFrame>;
  heartbeat: () => Omit<Extract<AgentToEdgeFrame, { type: 'heartbeat' }>, 'type' | 'seq'>;
  logger: Logger;
  /** How long to wait for the socket to open and the welcome to arrive. */
  connectTimeoutMs?: number;
  WebSocketImpl?: typeof WebSocket;
}

/** Why a connection attempt failed; `permanent` failures (bad token) are still retried, just logged louder. */
export class ConnectError extends Error {
  override readonly name = 'ConnectError';
  constructor(
    message: string,
    readonly status?: number,
    readonly code?: string,
  ) {
    super(message);
  }
}

export interface EdgeConnectionEvents {
  frame: [EdgeToAgentFrame];
  binary: [Uint8Array];
  close: [{ code: number; reason: string }];
}

export class EdgeConnection extends EventEmitter<EdgeConnectionEvents> {
  private ws: WebSocket | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private seq = 0;
  private lastAckSeq = 0;
  private closed = false;
  welcome: WelcomeFrame | undefined;

  constructor(private readonly opts: EdgeConnectionOptions) {
    super();
  }

  /** Resolves once the edge has welcomed us; rejects with a ConnectError saying why not. */
  async connect(): Promise<WelcomeFrame> {
    const { url, token, logger, connectTimeoutMs = 10_000, WebSocketImpl = WebSocket } = this.opts;
    const hello = await this.opts.hello();
    return new Promise<WelcomeFrame>((resolve, reject) => {
      const ws = new WebSocketImpl(`${url}/agent/connect`, {
        headers: { Authorization: `Bearer ${token}` },
        maxPayload: MAX_FRAME_BYTES + 64,
        // Compression costs more than it saves on loopback and LAN links and delays every keystroke.
        perMessageDeflate: false,
        handshakeTimeout: connectTimeoutMs,
      });
      this.ws = ws;
      let settled = false;
      const fail = (err: ConnectError) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        ws.removeAllListeners();
        ws.on('error', () => undefined);
        ws.terminate();
        this.closed = true;
        reject(err);
      };
      const timer = setTimeout(() => fail(new ConnectError('timed out waiting for the edge to welcome us')), connectTimeoutMs);

      ws.on('unexpected-response', (_req, res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.length < 16 && chunks.push(c));
        res.on('end', () => {
          const body = Buffer.concat(chunks).toString('utf8');
          const parsed = readErrorBody(body);
          fail(
            new ConnectError(
              `edge refused the connection (${res.statusCode}): ${parsed?.message ?? (body.slice(0, 200) || 'no reason given')}`,
              res.statusCode,
              parsed?.code,
            ),
          );
        });
        res.on('error', () => fail(new ConnectError(`edge refused the connection (${res.statusCode})`, res.statusCode)));
      });
      ws.on('error', (err) => fail(new ConnectError(`cannot reach the edge: ${err.message}`)));
      ws.on('open', () => ws.send(JSON.stringify(hello)));
      ws.on('close', (code, reasonBuf) => {
        const reason = reasonBuf.toString('utf8');
        if (!settled) return fail(new ConnectError(`edge closed the socket before welcome (${code}${reason ? `: ${reason}` : ''})`, undefined, String(code)));
        this.onClosed(code, reason);
      });
      ws.on('message', (data, isBinary) => {
        if (isBinary) {
          const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
          this.emit('binary', new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
          return;
        }
        const parsed = parseFrame(EdgeToAgentFrame, data.toString());
        if (!parsed.ok) {
          logger.warn('bad frame from edge', { code: parsed.error.code, message: parsed.error.message });
          this.send({ type: 'error', ...(parsed.id ? { id: parsed.id } : {}), error: parsed.error.toBody() });
          return;
        }
        const frame = parsed.frame;
        if (!settled) {
          if (frame.type === 'welcome') {
            settled = true;
            clearTimeout(timer);
            this.welcome = frame;
            this.startHeartbeat(frame.heartbeatIntervalMs);
            resolve(frame);
          } else if (frame.type === 'error') {
            fail(new ConnectError(`edge rejected hello: ${frame.error.message}`, undefined, frame.error.code));
          }
          return;
        }
        if (frame.type === 'heartbeat_ack') {
          this.lastAckSeq = Math.max(this.lastAckSeq, frame.seq);
          return;
        }
        this.emit('frame', frame);
      });
    });
  }

  send(frame: AgentToEdgeFrame): boolean {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(JSON.stringify(frame));
    return true;
  }

  sendBinary(bytes: Uint8Array): boolean {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(bytes, { binary: true });
    return true;
  }

  get bufferedAmount(): number {
    return this.ws?.bufferedAmount ?? 0;
  }

  /** Closes the socket; the 'close' event follows. */
  close(code = 1000, reason = 'agent shutting down'): void {
    this.stopHeartbeat();
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.close(code, reason);
    else this.ws?.terminate();
  }

  private startHeartbeat(intervalMs: number): void {
    this.stopHeartbeat();
    this.heartbeatTimer = setInterval(() => {
      // Two unanswered heartbeats mean the path is dead even if TCP has not noticed.
      if (this.seq - this.lastAckSeq >= 2) {
        this.opts.logger.warn('edge stopped answering heartbeats; dropping the connection', { seq: this.seq, lastAck: this.lastAckSeq });
        this.ws?.terminate();
        return;
      }
      this.seq += 1;
      this.send({ type: 'heartbeat', seq: this.seq, ...this.opts.heartbeat() });
    }, intervalMs);
    this.heartbeatTimer.unref();
  }

  private stopHeartbeat(): void {
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = undefined;
  }

  private onClosed(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.stopHeartbeat();
    this.emit('close', { code, reason });
  }
}

/** An error answer's `{error: {code, message}}`, as far as its two strings. */
const ErrorAnswer = jsonText(z.object({ error: z.object({ code: z.unknown(), message: z.unknown() }).partial() }));

function readErrorBody(body: string): { code?: string; message?: string } | undefined {
  // Not JSON, or not an error answer: the caller shows the raw text.
  const parsed = ErrorAnswer.safeParse(body);
  if (!parsed.success) return undefined;
  const { code, message } = parsed.data.error;
  return {
    ...(typeof code === 'string' ? { code } : {}),
    ...(typeof message === 'string' ? { message } : {}),
  };
}

