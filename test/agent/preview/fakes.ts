/**
 * The Session DO's side of a session's preview traffic, in memory: a
 * PreviewService wired to a real ByteStreams whose DataSink decodes every
 * frame the agent sends and plays the DO (acks, uploads, WebSocket messages).
 * Everything the agent sends is logged in order, so tests can check that a
 * `res` precedes the body frames it announces. `http.request` is an event
 * whose answer is an HttpHead frame or an `http.error` event; `call` turns
 * either into a `res` like any other request's, logged where the answer came.
 */
import { createHash } from 'node:crypto';
import { decodeBinaryFrame, encodeBinaryFrame, FrameFlag, FrameKind, type BinaryFrame } from '../../../shared/protocol/binary';
import { BYTE_STREAM_CHUNK, BYTE_STREAM_WINDOW } from '../../../shared/protocol/byte-streams';
import { decodeHttpHead, HttpErrorEvent } from '../../../shared/protocol/preview';
import { AckEvent } from '../../../shared/protocol/session-data';
import type { ResponseFrame } from '../../../shared/protocol/tunnel';
import { Dispatcher } from '../../../agent/connection/dispatcher';
import { memoryLogger } from '../../../agent/logger';
import { ByteStreams } from '../../../agent/services/streams/byte-streams';
import { PreviewService, type PreviewServiceOptions } from '../../../agent/services/preview/preview-service';

export type Logged =
  | { type: 'res'; id: string; frame: ResponseFrame }
  | { type: 'binary'; frame: BinaryFrame }
  | { type: 'event'; event: string; data: unknown };

export interface Downloaded {
  sha256: string;
  bytes: number;
  maxOutstanding: number;
  /** The body itself, when asked to keep it. */
  body: Buffer;
}

interface Download {
  hash: ReturnType<typeof createHash>;
  kept: Buffer[] | undefined;
  bytes: number;
  acked: number;
  maxOutstanding: number;
  done: (r: Downloaded) => void;
  fail: (e: Error) => void;
}

export class DoPeer {
  readonly logger = memoryLogger();
  readonly streams = new ByteStreams();
  readonly dispatcher = new Dispatcher(this.logger);
  readonly log: Logged[] = [];
  readonly service: PreviewService;
  /** Delay before the DO acks bytes it received (models a slow browser). */
  ackDelayMs = 0;
  private nextId = 1;
  private readonly downloads = new Map<number, Download>();
  private readonly uploadAcks = new Map<number, { acked: number; wake?: () => void }>();
  private readonly waiters = new Set<() => void>();
  /** http.request calls waiting for their HttpHead frame or http.error, by streamBase. */
  private readonly httpCalls = new Map<number, { id: string; done: (f: ResponseFrame) => void }>();

  constructor(opts: Omit<PreviewServiceOptions, 'sessionId' | 'logger' | 'streams' | 'events'>) {
    this.streams.attach({
      sendBinary: (bytes) => {
        this.onAgentBinary(decodeBinaryFrame(bytes));
        return true;
      },
      sendEvent: (event, data) => {
        this.onAgentEvent(event, data);
        return true;
      },
      bufferedAmount: 0,
    });
    this.service = new PreviewService({
      ...opts,
      sessionId: 'ses_test',
      logger: this.logger,
      streams: this.streams,
      events: { send: (event, data) => (this.onAgentEvent(event, data), true) },
    });
    this.service.register(this.dispatcher);
  }

  /** A request as the session link runs it: the `res` is logged when the dispatcher answers. */
  async call(method: string, params: unknown): Promise<ResponseFrame> {
    const id = `r${this.nextId++}`;
    if (method === 'http.request') {
      const streamBase = (params as { streamBase?: unknown } | null)?.streamBase;
      const answer = new Promise<ResponseFrame>((done) => {
        if (typeof streamBase === 'number') this.httpCalls.set(streamBase, { id, done });
      });
      if (!this.service.onEvent('http.request', params)) throw new Error('the service took no http.request');
      return answer;
    }
    return this.dispatcher.handle({ type: 'req', id, method, params }).then((frame) => {
      this.log.push({ type: 'res', id, frame });
      this.changed();
      return frame;
    });
  }

  /** Collects the body the agent sends on `streamId`, acking like the DO does; `keep` holds on to the bytes. */
  download(streamId: number, keep = false): Promise<Downloaded> {
    return new Promise((done, fail) => {
      this.downloads.set(streamId, { hash: createHash('sha256'), kept: keep ? [] : undefined, bytes: 0, acked: 0, maxOutstanding: 0, done, fail });
    });
  }

  /** Sends a body to the agent on `streamId` in chunks, never more than a window past its acks. */
  async upload(streamId: number, chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Promise<number> {
    const state: { acked: number; wake?: () => void } = { acked: 0 };
    this.uploadAcks.set(streamId, state);
    let offset = 0;
    for await (const chunk of chunks) {
      for (let at = 0; at < chunk.byteLength; at += BYTE_STREAM_CHUNK) {
        const piece = chunk.subarray(at, Math.min(chunk.byteLength, at + BYTE_STREAM_CHUNK));
        while (offset - state.acked >= BYTE_STREAM_WINDOW) await new Promise<void>((r) => (state.wake = r));
        this.toAgent({ kind: FrameKind.HttpBody, flags: 0, streamId, offset, payload: piece });
        offset += piece.byteLength;
      }
    }
    this.toAgent({ kind: FrameKind.HttpBody, flags: FrameFlag.End, streamId, offset, payload: new Uint8Array() });
    return offset;
  }

  /** A client → container WebSocket message, through the service as the session host routes it. */
  wsSend(streamBase: number, offset: number, data: string | Uint8Array): boolean {
    const text = typeof data === 'string';
    const payload = text ? Buffer.from(data) : data;
    const frame = decodeBinaryFrame(encodeBinaryFrame({ kind: FrameKind.WsMessage, flags: text ? FrameFlag.Text : 0, streamId: streamBase, offset, payload }));
    return this.service.onBinary(frame);
  }

  /** WsMessage frames the agent sent on `streamId`, in order. */
  wsMessages(streamId: number): BinaryFrame[] {
    return this.log.flatMap((l) => (l.type === 'binary' && l.frame.kind === FrameKind.WsMessage && l.frame.streamId === streamId ? [l.frame] : []));
  }

  events(name: string): unknown[] {
    return this.log.flatMap((l) => (l.type === 'event' && l.event === name ? [l.data] : []));
  }

  /** Resolves once `check` holds, re-checked on every frame the agent sends; fails after `timeoutMs`. */
  async until<T>(check: () => T | undefined | false, what: string, timeoutMs = 5_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = check();
      if (v) return v;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(wake, Math.min(left, 50));
        function wake() {
          clearTimeout(t);
          resolve();
        }
        this.waiters.add(wake);
      });
    }
  }

  private toAgent(frame: BinaryFrame): void {
    const decoded = decodeBinaryFrame(encodeBinaryFrame(frame));
    if (!this.streams.onBinary(decoded)) throw new Error(`agent took no frame for stream ${frame.streamId}`);
  }

  private onAgentBinary(frame: BinaryFrame): void {
    if (frame.kind === FrameKind.HttpHead) return this.onHead(frame);
    this.log.push({ type: 'binary', frame: { ...frame, payload: frame.kind === FrameKind.WsMessage ? frame.payload.slice() : new Uint8Array() } });
    const d = this.downloads.get(frame.streamId);
    if (d && frame.kind === FrameKind.HttpBody) {
      if (frame.offset !== d.bytes) d.fail(new Error(`stream ${frame.streamId}: offset ${frame.offset}, expected ${d.bytes}`));
      d.hash.update(frame.payload);
      d.kept?.push(Buffer.from(frame.payload));
      d.bytes += frame.payload.byteLength;
      d.maxOutstanding = Math.max(d.maxOutstanding, d.bytes - d.acked);
      const upTo = d.bytes;
      const ack = () => {
        d.acked = Math.max(d.acked, upTo);
        this.streams.onAck(frame.streamId, upTo);
      };
      if (this.ackDelayMs > 0) setTimeout(ack, this.ackDelayMs);
      else setImmediate(ack);
      if (frame.flags & FrameFlag.End) {
        this.downloads.delete(frame.streamId);
        d.done({ sha256: d.hash.digest('hex'), bytes: d.bytes, maxOutstanding: d.maxOutstanding, body: Buffer.concat(d.kept ?? []) });
      }
    }
    this.changed();
  }

  /** An answer to http.request: logged as its `res`; an inline body (End) completes its download. */
  private onHead(frame: BinaryFrame): void {
    const { head, body } = decodeHttpHead(frame.payload);
    const call = this.httpCalls.get(frame.streamId - 1);
    const id = call?.id ?? 'none';
    const res: ResponseFrame = { type: 'res', id, ok: true, result: head };
    this.log.push({ type: 'res', id, frame: res });
    this.httpCalls.delete(frame.streamId - 1);
    call?.done(res);
    const d = this.downloads.get(frame.streamId);
    if (d && frame.flags & FrameFlag.End) {
      this.downloads.delete(frame.streamId);
      d.hash.update(body);
      d.kept?.push(Buffer.from(body));
      d.bytes = body.byteLength;
      d.maxOutstanding = body.byteLength;
      d.done({ sha256: d.hash.digest('hex'), bytes: d.bytes, maxOutstanding: d.maxOutstanding, body: Buffer.concat(d.kept ?? []) });
    }
    this.changed();
  }

  private onAgentEvent(event: string, data: unknown): void {
    if (event === 'http.error') {
      const e = HttpErrorEvent.parse(data);
      const call = this.httpCalls.get(e.streamBase);
      this.httpCalls.delete(e.streamBase);
      const res: ResponseFrame = { type: 'res', id: call?.id ?? 'none', ok: false, error: e.error };
      this.log.push({ type: 'res', id: res.id, frame: res });
      call?.done(res);
      this.changed();
      return;
    }
    if (event === 'ack') {
      const ack = AckEvent.parse(data);
      const u = this.uploadAcks.get(ack.streamId);
      if (u) {
        u.acked = Math.max(u.acked, ack.offset);
        u.wake?.();
      }
      return;
    }
    this.log.push({ type: 'event', event, data });
    this.changed();
  }

  private changed(): void {
    for (const w of this.waiters) w();
    this.waiters.clear();
  }
}

/** Deterministic bytes (xorshift32), so a sender and a checker can make the same stream apart. */
export function* pseudoRandom(totalBytes: number, chunkBytes = 64 * 1024, seed = 0x9e3779b9): Generator<Buffer> {
  let x = seed >>> 0 || 1;
  for (let sent = 0; sent < totalBytes; sent += chunkBytes) {
    const n = Math.min(chunkBytes, totalBytes - sent);
    const words = new Uint32Array(Math.ceil(n / 4));
    for (let i = 0; i < words.length; i++) {
      x ^= x << 13;
      x >>>= 0;
      x ^= x >>> 17;
      x ^= x << 5;
      x >>>= 0;
      words[i] = x;
    }
    yield Buffer.from(words.buffer, 0, n);
  }
}

export function sha256Of(chunks: Iterable<Uint8Array>): string {
  const h = createHash('sha256');
  for (const c of chunks) h.update(c);
  return h.digest('hex');
}
