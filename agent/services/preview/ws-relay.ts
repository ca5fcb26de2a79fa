/**
 * One relayed WebSocket: a `ws` client connected to the dev server in the
 * container, its messages carried over the session's data socket as
 * WsMessage frames (shared/protocol/preview.ts). Container → client messages
 * go on streamBase + 1, client → container ones arrive on streamBase; the
 * frame offset counts messages from 0 in each direction. Either side ends it
 * with `ws.close {streamBase, code, reason}`; the side that receives that
 * event does not echo it.
 */
import WebSocket from 'ws';
import { AppError, ErrorCode } from '../../../shared/errors';
import { FrameFlag, FrameKind, MAX_BINARY_PAYLOAD, type BinaryFrame } from '../../../shared/protocol/binary';
import type { WsOpenParams } from '../../../shared/protocol/preview';
import type { Logger } from '../../logger';
import type { ByteStreams } from '../streams/byte-streams';
import { toNodeHeaders, upstreamOrigin, upstreamRequestHeaders } from './headers';
import { upstreamFailure } from './http-relay';

/** Above this many bytes queued towards the dev server the relay gives up with 1013 (try again later). */
export const WS_MAX_BUFFERED = 4 * 1024 * 1024;
/** While the data socket holds more than this, reading from the dev server pauses. */
export const WS_PAUSE_ABOVE = 4 * 1024 * 1024;
const WS_RESUME_BELOW = 1024 * 1024;
const WS_DRAIN_CHECK_MS = 25;

export interface WsRelayDeps {
  streams: ByteStreams;
  events: { send(event: string, data: unknown): boolean };
  logger: Logger;
  /** Bytes queued on the data socket, if known: lets a fast dev server be paused for a slow client. */
  dataBuffered?: () => number;
  handshakeTimeoutMs: number;
  /** Called once, when the relay is over for any reason. */
  onDone(relay: WsRelay): void;
}

export class WsRelay {
  readonly streamBase: number;
  private ws: WebSocket | undefined;
  private opened = false;
  private done = false;
  private toClient = 0;
  private fromClient = 0;
  /** Messages from the container that arrived before the `res` to ws.open went out. */
  private early: Array<{ data: Buffer; text: boolean }> | undefined = [];
  private drainTimer: NodeJS.Timeout | undefined;
  /** A close of our own making (protocol error, overflow, stop), reported instead of what `ws` saw. */
  private local: { code: number; reason: string } | undefined;
  /** The DO has been told the socket is over, or knows already (it asked, the open failed, the data socket is gone). */
  private quiet = false;
  /** A close that happened before start(): told to the DO after the messages that preceded it. */
  private pendingClose: { code: number; reason: string } | undefined;

  constructor(
    private readonly p: WsOpenParams,
    private readonly deps: WsRelayDeps,
  ) {
    this.streamBase = p.streamBase;
  }

  /** Connects to the dev server; resolves with the subprotocol it chose ('' for none). */
  open(address: string): Promise<{ protocol: string }> {
    const { p } = this;
    if (this.done || this.local) return Promise.reject(new AppError(ErrorCode.AgentUnavailable, 'the preview relay closed'));
    const drop = (n: string) => n === 'origin' || n === 'content-length' || n.startsWith('sec-websocket-');
    const { headers, host } = upstreamRequestHeaders(p.headers, p.port, drop);
    const url = `ws://${address.includes(':') ? `[${address}]` : address}:${p.port}${p.path}`;
    return new Promise((resolve, reject) => {
      let ws: WebSocket;
      try {
        const origin = upstreamOrigin(p.headers, host);
        ws = new WebSocket(url, p.protocols, {
          headers: toNodeHeaders(headers),
          // See upstreamOrigin: only the preview's own origin is mapped to the one the dev server expects.
          ...(origin === undefined ? {} : { origin }),
          perMessageDeflate: false,
          maxPayload: MAX_BINARY_PAYLOAD,
          handshakeTimeout: this.deps.handshakeTimeoutMs,
          followRedirects: false,
        });
      } catch (err) {
        this.done = true;
        reject(new AppError(ErrorCode.ValidationFailed, `cannot open the WebSocket: ${(err as Error).message}`));
        return;
      }
      this.ws = ws;
      let refusedWith: number | undefined;
      let openError: (Error & { code?: string }) | undefined;
      ws.on('unexpected-response', (_req, res) => {
        refusedWith = res.statusCode;
        res.resume();
        ws.terminate();
      });
      ws.on('error', (err: Error & { code?: string }) => {
        if (!this.opened) openError ??= err;
        else {
          const code = receiverErrorCode(err.code);
          if (code !== undefined) this.local ??= { code, reason: err.message };
          this.deps.logger.debug('preview websocket error', { streamBase: this.streamBase, error: err.message });
        }
      });
      ws.once('open', () => {
        this.opened = true;
        resolve({ protocol: ws.protocol });
      });
      ws.on('message', (data: Buffer, isBinary: boolean) => this.onUpstream(data, !isBinary));
      ws.on('close', (code: number, reason: Buffer) => {
        if (!this.opened) {
          // The DO hears of a failed open from the error answer to ws.open, not from ws.close.
          this.quiet = true;
          if (refusedWith !== undefined) {
            reject(new AppError(ErrorCode.BadRequest, `the server on port ${p.port} refused the WebSocket upgrade with status ${refusedWith}`, { upstreamStatus: refusedWith }));
          } else if (this.local) {
            reject(new AppError(ErrorCode.AgentUnavailable, 'the preview relay closed'));
          } else {
            reject(openFailure(openError, p.port, this.deps.handshakeTimeoutMs));
          }
        }
        this.finish(this.local?.code ?? code, this.local?.reason ?? reason.toString('utf8'));
      });
    });
  }

  /** The `res` to ws.open is out: messages may flow to the client now, then a close that came early. */
  start(): void {
    const early = this.early;
    this.early = undefined;
    for (const m of early ?? []) this.forward(m.data, m.text);
    const pending = this.pendingClose;
    this.pendingClose = undefined;
    if (pending) this.sendClose(pending.code, pending.reason);
  }

  /** A WsMessage frame from the client. */
  onClientFrame(frame: BinaryFrame): void {
    const ws = this.ws;
    if (this.done || !ws || ws.readyState !== WebSocket.OPEN) return;
    if (frame.offset !== this.fromClient) {
      this.deps.logger.warn('preview websocket message out of order', { streamBase: this.streamBase, expected: this.fromClient, got: frame.offset });
      this.close(1002, 'messages out of order', true);
      return;
    }
    this.fromClient++;
    const payload = Buffer.from(frame.payload.buffer, frame.payload.byteOffset, frame.payload.byteLength);
    ws.send(payload, { binary: (frame.flags & FrameFlag.Text) === 0 });
    if (ws.bufferedAmount > WS_MAX_BUFFERED) this.close(1013, 'the server is not reading its WebSocket', true);
  }

  /**
   * Ends the relay: a close handshake towards the dev server, or a plain drop
   * when it has stopped reading (1013) and would never answer one. With
   * `tellClient` the DO hears of it at once; without (the DO asked) it is not
   * echoed back.
   */
  close(code: number, reason: string, tellClient: boolean): void {
    if (this.done) return;
    if (tellClient) this.tellClient(code, reason);
    else this.quiet = true;
    this.local ??= { code, reason };
    const ws = this.ws;
    if (ws?.readyState === WebSocket.OPEN && code !== 1013) ws.close(sendableCode(code), truncateReason(reason));
    else ws?.terminate();
  }

  /** Drops the connection at once, telling the DO (the service is stopping). */
  terminate(code: number, reason: string): void {
    if (this.done) return;
    this.local ??= { code, reason };
    this.ws?.terminate();
  }

  private onUpstream(data: Buffer, text: boolean): void {
    if (this.done) return;
    if (this.early) this.early.push({ data, text });
    else this.forward(data, text);
  }

  private forward(data: Buffer, text: boolean): void {
    try {
      this.deps.streams.frame(this.streamBase + 1, FrameKind.WsMessage, this.toClient++, data, text ? FrameFlag.Text : 0);
    } catch {
      // The data socket is gone, and with it the DO's side of this socket.
      this.quiet = true;
      this.ws?.terminate();
      return;
    }
    const buffered = this.deps.dataBuffered;
    if (!this.done && buffered && buffered() > WS_PAUSE_ABOVE && !this.drainTimer) {
      this.ws?.pause();
      this.drainTimer = setInterval(() => {
        if (buffered() >= WS_RESUME_BELOW) return;
        clearInterval(this.drainTimer);
        this.drainTimer = undefined;
        this.ws?.resume();
      }, WS_DRAIN_CHECK_MS);
    }
  }

  private finish(code: number, reason: string): void {
    if (this.done) return;
    this.done = true;
    clearInterval(this.drainTimer);
    this.drainTimer = undefined;
    this.tellClient(code, reason);
    this.deps.onDone(this);
  }

  /** Tells the DO, once, that the socket is over; before start(), only after the messages queued for it. */
  private tellClient(code: number, reason: string): void {
    if (this.quiet) return;
    this.quiet = true;
    if (this.opened && this.early) this.pendingClose = { code, reason };
    else this.sendClose(code, reason);
  }

  private sendClose(code: number, reason: string): void {
    this.deps.events.send('ws.close', { streamBase: this.streamBase, code: sendableCode(code), reason: truncateReason(reason) });
  }
}

function openFailure(err: unknown, port: number, timeoutMs: number): AppError {
  const message = (err as Error | undefined)?.message ?? '';
  if (/handshake has timed out/i.test(message)) {
    return new AppError(ErrorCode.Timeout, `the server on port ${port} did not accept the WebSocket within ${timeoutMs / 1000} s`);
  }
  return upstreamFailure(err, port);
}

/** Close codes that `ws` raises for a malformed or oversized message from the dev server. */
function receiverErrorCode(code: string | undefined): number | undefined {
  if (code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') return 1009;
  if (code === 'WS_ERR_INVALID_UTF8') return 1007;
  return code?.startsWith('WS_ERR_') ? 1002 : undefined;
}

/**
 * A code that may travel in a close frame. 1005 (no code given) reads as a
 * normal close; 1006 and 1015 (the connection dropped) as 1011, so the
 * client learns the server side went away abnormally.
 */
export function sendableCode(code: number): number {
  if (code === 1000 || (code >= 1001 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) || (code >= 3000 && code <= 4999)) return code;
  return code === 1005 ? 1000 : 1011;
}

/** A close reason fits in 123 bytes of UTF-8; cut on a character boundary. */
export function truncateReason(reason: string): string {
  if (Buffer.byteLength(reason) <= 123) return reason;
  let out = '';
  for (const ch of reason) {
    if (Buffer.byteLength(out + ch) > 123) break;
    out += ch;
  }
  return out;
}
