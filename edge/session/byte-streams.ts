/**
 * The edge's end of one-shot byte streams (../../shared/protocol/byte-streams.ts)
 * inside a Session DO: bytes from the agent become a ReadableStream that
 * acknowledges as its consumer (an HTTP response, a WebSocket) pulls; a
 * ReadableStream to the agent is sent in frames, waiting for the agent's acks
 * when the window is full. Memory per stream stays within one window.
 */
import { AppError, ErrorCode } from '../../shared/errors';
import { BINARY_HEADER_BYTES, encodeBinaryFrame, FrameFlag, MAX_BINARY_PAYLOAD, writeBinaryHeader, type BinaryFrame, type FrameKind } from '../../shared/protocol/binary';
import { joinBytes } from '../../shared/bytes';
import { BYTE_STREAM_CHUNK, BYTE_STREAM_WINDOW } from '../../shared/protocol/byte-streams';
import type { SessionEvent, SessionEventSender } from '../../shared/protocol/session-channel';
import { drain } from '../relay/body';

export interface StreamSink extends SessionEventSender {
  sendBinary(bytes: Uint8Array): boolean;
}

interface Incoming {
  controller: ReadableStreamDefaultController<Uint8Array>;
  received: number;
  delivered: number;
  acked: number;
  queue: Uint8Array[];
  ended: boolean;
}

/** An incoming stream of known length, written straight into a FixedLengthStream (no JS stream to pump). */
interface Sized {
  writer: WritableStreamDefaultWriter<Uint8Array>;
  received: number;
  /** Bytes the reader has taken (their writes resolved). */
  delivered: number;
  acked: number;
  ended: boolean;
  gone: boolean;
}

interface Outgoing {
  acked: number;
  wake: (() => void) | undefined;
  failed: AppError | undefined;
}

export class EdgeByteStreams {
  private readonly incoming = new Map<number, Incoming>();
  private readonly sized = new Map<number, Sized>();
  private readonly outgoing = new Map<number, Outgoing>();

  constructor(
    private readonly sink: () => StreamSink | undefined,
    private readonly window = BYTE_STREAM_WINDOW,
  ) {}

  /** A stream of the bytes the agent will send on `streamId`. */
  receive(streamId: number): ReadableStream<Uint8Array> {
    return new ReadableStream<Uint8Array>(
      {
        start: (controller) => {
          this.incoming.set(streamId, { controller, received: 0, delivered: 0, acked: 0, queue: [], ended: false });
        },
        pull: () => this.deliver(streamId),
        cancel: () => {
          const s = this.incoming.get(streamId);
          this.incoming.delete(streamId);
          // The consumer left before the end (a browser closed a download): the agent stops sending.
          if (s && !s.ended) this.sink()?.sendEvent('stream.abort', { streamId });
        },
      },
      { highWaterMark: 0 },
    );
  }

  /**
   * Like `receive`, for a body whose length is known: the response keeps its
   * Content-Length (workerd sends chunked for a stream of unknown length), and
   * frames are written straight into a native stream. A write resolves once the
   * reader took it; acks follow in steps of a chunk, as for `receive`. A stream
   * that ends short of `length` errors, so a cut body never looks complete.
   */
  receiveSized(streamId: number, length: number): ReadableStream<Uint8Array> {
    const fixed = new FixedLengthStream(length);
    const s: Sized = { writer: fixed.writable.getWriter(), received: 0, delivered: 0, acked: 0, ended: false, gone: false };
    this.sized.set(streamId, s);
    return fixed.readable;
  }

  private onSizedFrame(streamId: number, s: Sized, frame: BinaryFrame): void {
    if (frame.offset !== s.received) {
      this.dropSized(streamId, s, new AppError(ErrorCode.ProtocolError, `stream ${streamId}: bytes out of order`));
      return;
    }
    const n = frame.payload.byteLength;
    s.received += n;
    if (frame.flags & FrameFlag.End) s.ended = true;
    if (n > 0) {
      s.writer.write(frame.payload).then(
        () => {
          s.delivered += n;
          if (s.delivered - s.acked >= BYTE_STREAM_CHUNK && !s.ended) {
            s.acked = s.delivered;
            this.sink()?.sendEvent('ack', { streamId, offset: s.delivered });
          }
        },
        // The reader went away (the browser left): the agent stops sending.
        () => this.dropSized(streamId, s, undefined),
      );
    }
    if (s.ended) {
      this.sized.delete(streamId);
      s.writer.close().catch(() => undefined);
    }
  }

  /** Ends a sized stream early: with `err` its reader fails; the agent is told to stop unless it had finished. */
  private dropSized(streamId: number, s: Sized, err: AppError | undefined): void {
    if (s.gone) return;
    s.gone = true;
    this.sized.delete(streamId);
    if (err) s.writer.abort(err).catch(() => undefined);
    if (!s.ended) this.sink()?.sendEvent('stream.abort', { streamId });
  }

  private deliver(streamId: number): void {
    const s = this.incoming.get(streamId);
    if (!s) return;
    const next = s.queue.shift();
    if (next) {
      s.controller.enqueue(next);
      s.delivered += next.byteLength;
      // Ack in steps of a chunk, not on every pull, and not at the end: the sender is done then.
      if (s.delivered - s.acked >= BYTE_STREAM_CHUNK && !(s.ended && s.queue.length === 0)) {
        s.acked = s.delivered;
        this.sink()?.sendEvent('ack', { streamId, offset: s.delivered });
      }
    }
    if (s.ended && s.queue.length === 0) {
      s.controller.close();
      this.incoming.delete(streamId);
    }
  }

  onBinary(frame: BinaryFrame): boolean {
    const sized = this.sized.get(frame.streamId);
    if (sized) {
      this.onSizedFrame(frame.streamId, sized, frame);
      return true;
    }
    const s = this.incoming.get(frame.streamId);
    if (!s) return false;
    if (frame.offset !== s.received) {
      s.controller.error(new AppError(ErrorCode.ProtocolError, `stream ${frame.streamId}: bytes out of order`));
      this.incoming.delete(frame.streamId);
      return true;
    }
    s.received += frame.payload.byteLength;
    // The payload is a view of this message's own buffer (a fresh one per message): kept as is, not copied.
    if (frame.payload.byteLength > 0) s.queue.push(frame.payload);
    if (frame.flags & FrameFlag.End) s.ended = true;
    if (s.controller.desiredSize !== null && s.controller.desiredSize >= 0) this.deliver(frame.streamId);
    return true;
  }

  /** Stream events from the agent (`ack`, `stream.abort`); true when the event is one of them. */
  onEvent(e: SessionEvent): boolean {
    if (e.event === 'ack') return void this.onAck(e.data.streamId, e.data.offset), true;
    if (e.event === 'stream.abort') return void this.abortIncoming(e.data.streamId), true;
    return false;
  }

  onAck(streamId: number, offset: number): boolean {
    const o = this.outgoing.get(streamId);
    if (!o) return false;
    o.acked = Math.max(o.acked, offset);
    o.wake?.();
    return true;
  }

  /** The agent gave up on a stream it was sending (its source failed): the reader fails, never sees an end. */
  abortIncoming(streamId: number): boolean {
    const err = new AppError(ErrorCode.AgentUnavailable, 'the agent could not send the whole body');
    const sized = this.sized.get(streamId);
    if (sized) {
      sized.ended = true; // nothing to tell the agent
      this.dropSized(streamId, sized, err);
      return true;
    }
    const s = this.incoming.get(streamId);
    if (!s) return false;
    this.incoming.delete(streamId);
    try {
      s.controller.error(err);
    } catch {
      // already closed
    }
    return true;
  }

  /** Stops sending a stream (the receiver refused it). */
  abortOutgoing(streamId: number): void {
    const o = this.outgoing.get(streamId);
    if (!o) return;
    o.failed = new AppError(ErrorCode.BadRequest, 'the agent refused the upload');
    o.wake?.();
  }

  /** Fails every stream: the data socket is gone. */
  failAll(): void {
    const err = new AppError(ErrorCode.AgentUnavailable, 'the agent\'s data socket closed mid-stream');
    for (const s of this.incoming.values()) {
      try {
        s.controller.error(err);
      } catch {
        // already closed
      }
    }
    this.incoming.clear();
    for (const s of [...this.sized.values()]) {
      s.gone = true;
      s.writer.abort(err).catch(() => undefined);
    }
    this.sized.clear();
    for (const o of this.outgoing.values()) {
      o.failed = err;
      o.wake?.();
    }
  }

  /** Sends a body to the agent; resolves with its length once the last frame is handed over. */
  async send(streamId: number, kind: FrameKind, body: ReadableStream<Uint8Array> | null, maxBytes = Number.MAX_SAFE_INTEGER): Promise<number> {
    const o: Outgoing = { acked: 0, wake: undefined, failed: undefined };
    this.outgoing.set(streamId, o);
    let offset = 0;
    try {
      const byob = body ? byobReader(body) : undefined;
      if (byob) {
        // Read each frame's payload straight into place behind its header: one read
        // and no copy per chunk, where the default reader hands over small pieces.
        for (;;) {
          // A fresh buffer each time: WebSocket.send keeps what it is given until it is written.
          // Frames as large as frames go: a request body is read at the client's pace, not the
          // agent's, and each frame costs a read, a message and an ack.
          const buf = new Uint8Array(BINARY_HEADER_BYTES + MAX_BINARY_PAYLOAD);
          const { value, done } = await byob.readAtLeast(MAX_BINARY_PAYLOAD, buf.subarray(BINARY_HEADER_BYTES));
          const n = value?.byteLength ?? 0;
          if (n > 0) {
            if (offset + n > maxBytes) {
              await drain(byob);
              throw new AppError(ErrorCode.PayloadTooLarge, `body is larger than ${maxBytes} bytes`, { maxBytes });
            }
            while (offset - o.acked >= this.window && !o.failed) await new Promise<void>((r) => (o.wake = r));
            o.wake = undefined;
            if (o.failed) throw o.failed;
            // The read moved the buffer: the header goes in front of the filled view, in the same memory.
            const framed = new Uint8Array(value!.buffer, value!.byteOffset - BINARY_HEADER_BYTES, BINARY_HEADER_BYTES + n);
            writeBinaryHeader(framed, { kind, flags: 0, streamId, offset }, n);
            this.sendFramed(framed);
            offset += n;
          }
          // Fewer than asked for only at the end of the body.
          if (done) break;
        }
      } else if (body) {
        const reader = body.getReader();
        // Request bodies arrive in small pieces; frames of up to a chunk cost far less per byte.
        let pending: Uint8Array[] = [];
        let pendingBytes = 0;
        const flush = async () => {
          if (pendingBytes === 0) return;
          const piece = pending.length === 1 ? pending[0]! : joinBytes(pending, pendingBytes);
          pending = [];
          pendingBytes = 0;
          while (offset - o.acked >= this.window && !o.failed) await new Promise<void>((r) => (o.wake = r));
          o.wake = undefined;
          if (o.failed) throw o.failed;
          this.frame(streamId, kind, offset, piece, 0);
          offset += piece.byteLength;
        };
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          if (offset + pendingBytes + value.byteLength > maxBytes) {
            await drain(reader);
            throw new AppError(ErrorCode.PayloadTooLarge, `body is larger than ${maxBytes} bytes`, { maxBytes });
          }
          for (let at = 0; at < value.byteLength; ) {
            const take = Math.min(value.byteLength - at, BYTE_STREAM_CHUNK - pendingBytes);
            pending.push(value.subarray(at, at + take));
            pendingBytes += take;
            at += take;
            if (pendingBytes >= BYTE_STREAM_CHUNK) await flush();
          }
        }
        await flush();
      }
      this.frame(streamId, kind, offset, new Uint8Array(), FrameFlag.End);
      return offset;
    } finally {
      this.outgoing.delete(streamId);
    }
  }

  frame(streamId: number, kind: FrameKind, offset: number, payload: Uint8Array, flags: number): void {
    this.sendFramed(encodeBinaryFrame({ kind, flags, streamId, offset, payload }));
  }

  private sendFramed(bytes: Uint8Array): void {
    if (!this.sink()?.sendBinary(bytes)) throw new AppError(ErrorCode.AgentUnavailable, 'the session\'s agent is not connected');
  }
}

/** A BYOB reader with workerd's `readAtLeast`, when the stream is a byte stream (request bodies are); else undefined. */
function byobReader(body: ReadableStream<Uint8Array>): ReadableStreamBYOBReader | undefined {
  try {
    const reader = body.getReader({ mode: 'byob' });
    // workerd's BYOB readers have readAtLeast; a runtime without it gets the default reader.
    if (typeof reader.readAtLeast === 'function') return reader;
    reader.releaseLock();
  } catch {
    // Not a byte stream: the default reader it is.
  }
  return undefined;
}
