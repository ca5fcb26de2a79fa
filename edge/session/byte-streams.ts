/**
 * The edge's end of one-shot byte streams (../../shared/protocol/byte-streams.ts)
 * inside a Session DO: bytes from the agent become a ReadableStream that
 * acknowledges as its consumer (an HTTP response, a WebSocket) pulls; a
 * ReadableStream to the agent is sent in frames, waiting for the agent's acks
 * when the window is full. Memory per stream stays within one window. The
 * window and ack bookkeeping is ../../shared/protocol/byte-window.ts; this file
 * holds the workerd streams around it.
 */
import { AppError, ErrorCode } from '../../shared/errors';
import { BINARY_HEADER_BYTES, encodeBinaryFrame, FrameFlag, MAX_BINARY_PAYLOAD, writeBinaryHeader, type BinaryFrame, type FrameKind } from '../../shared/protocol/binary';
import { joinBytes } from '../../shared/bytes';
import { BYTE_STREAM_CHUNK, BYTE_STREAM_WINDOW } from '../../shared/protocol/byte-streams';
import { ByteWindows, type AckPolicy, type IncomingPort, type IncomingWindow } from '../../shared/protocol/byte-window';
import type { SessionEvent, SessionEventSender } from '../../shared/protocol/session-channel';
import { drain } from '../relay/body';

export interface StreamSink extends SessionEventSender {
  sendBinary(bytes: Uint8Array): boolean;
}

/** An incoming stream read by pulls: frames wait in `queue` until its consumer asks for the next. */
class Pulled implements IncomingPort {
  readonly queue: Uint8Array[] = [];
  constructor(readonly controller: ReadableStreamDefaultController<Uint8Array>) {}
  fail(err: AppError): void {
    try {
      this.controller.error(err);
    } catch {
      // already closed
    }
  }
}

/** An incoming stream of known length, written straight into a FixedLengthStream (no JS stream to pump). */
class Sized implements IncomingPort {
  constructor(readonly writer: WritableStreamDefaultWriter<Uint8Array>) {}
  fail(err: AppError): void {
    this.writer.abort(err).catch(() => undefined);
  }
}

type EdgePort = Pulled | Sized;

/**
 * The edge's ack policy: in steps of a chunk, not on every pull (each ack is a
 * message to the agent), and none once the End frame has arrived: the sender
 * is done then. (The agent acknowledges every delivery: agent/services/streams/byte-streams.ts.)
 */
const EDGE_ACKS: AckPolicy = { every: BYTE_STREAM_CHUNK, afterEnd: false };

export class EdgeByteStreams {
  private readonly windows: ByteWindows<EdgePort>;

  constructor(
    private readonly sink: () => StreamSink | undefined,
    window = BYTE_STREAM_WINDOW,
  ) {
    this.windows = new ByteWindows(EDGE_ACKS, window);
  }

  /** A stream of the bytes the agent will send on `streamId`. */
  receive(streamId: number): ReadableStream<Uint8Array> {
    let w: IncomingWindow<EdgePort> | undefined;
    let port: Pulled | undefined;
    return new ReadableStream<Uint8Array>(
      {
        start: (controller) => {
          port = new Pulled(controller);
          w = this.windows.openIncoming(streamId, port);
        },
        pull: () => {
          if (w && port) this.deliver(w, port);
        },
        cancel: () => {
          // The consumer left before the end (a browser closed a download): the agent stops sending.
          if (w && this.windows.closeIncoming(w) && !w.ended) this.sink()?.sendEvent('stream.abort', { streamId });
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
    this.windows.openIncoming(streamId, new Sized(fixed.writable.getWriter()));
    return fixed.readable;
  }

  private onSizedFrame(w: IncomingWindow<EdgePort>, port: Sized, payload: Uint8Array): void {
    const n = payload.byteLength;
    if (n > 0) {
      port.writer.write(payload).then(
        // Delivered once the reader has taken it (the write resolved).
        () => this.ack(w.streamId, w.deliver(n)),
        // The reader went away (the browser left): the agent stops sending.
        () => this.dropSized(w, port, undefined),
      );
    }
    if (w.ended) {
      this.windows.closeIncoming(w);
      port.writer.close().catch(() => undefined);
    }
  }

  /** Ends a sized stream early: with `err` its reader fails; the agent is told to stop unless it had finished. */
  private dropSized(w: IncomingWindow<EdgePort>, port: Sized, err: AppError | undefined): void {
    if (!this.windows.closeIncoming(w)) return;
    if (err) port.fail(err);
    if (!w.ended) this.sink()?.sendEvent('stream.abort', { streamId: w.streamId });
  }

  private deliver(w: IncomingWindow<EdgePort>, { queue, controller }: Pulled): void {
    if (!this.windows.isOpen(w)) return;
    const next = queue.shift();
    if (next) {
      controller.enqueue(next);
      this.ack(w.streamId, w.deliver(next.byteLength));
    }
    if (w.complete) {
      controller.close();
      this.windows.closeIncoming(w);
    }
  }

  private ack(streamId: number, offset: number | undefined): void {
    if (offset !== undefined) this.sink()?.sendEvent('ack', { streamId, offset });
  }

  onBinary(frame: BinaryFrame): boolean {
    const w = this.windows.incomingStream(frame.streamId);
    if (!w) return false;
    const { port } = w;
    const outOfOrder = w.accept(frame);
    if (port instanceof Sized) {
      if (outOfOrder) this.dropSized(w, port, outOfOrder);
      else this.onSizedFrame(w, port, frame.payload);
      return true;
    }
    if (outOfOrder) return this.windows.abortIncoming(frame.streamId, outOfOrder);
    // The payload is a view of this message's own buffer (a fresh one per message): kept as is, not copied.
    if (frame.payload.byteLength > 0) port.queue.push(frame.payload);
    const { desiredSize } = port.controller;
    if (desiredSize !== null && desiredSize >= 0) this.deliver(w, port);
    return true;
  }

  /** Stream events from the agent (`ack`, `stream.abort`); true when the event is one of them. */
  onEvent(e: SessionEvent): boolean {
    if (e.event === 'ack') return void this.onAck(e.data.streamId, e.data.offset), true;
    if (e.event === 'stream.abort') return void this.abortIncoming(e.data.streamId), true;
    return false;
  }

  onAck(streamId: number, offset: number): boolean {
    return this.windows.onAck(streamId, offset);
  }

  /** The agent gave up on a stream it was sending (its source failed): the reader fails, never sees an end; nothing to tell the agent. */
  abortIncoming(streamId: number): boolean {
    return this.windows.abortIncoming(streamId, new AppError(ErrorCode.AgentUnavailable, 'the agent could not send the whole body'));
  }

  /** Stops sending a stream (the receiver refused it). */
  abortOutgoing(streamId: number): void {
    this.windows.abortOutgoing(streamId, new AppError(ErrorCode.BadRequest, 'the agent refused the upload'));
  }

  /** Fails every stream: the data socket is gone. */
  failAll(): void {
    this.windows.failAll(new AppError(ErrorCode.AgentUnavailable, 'the agent\'s data socket closed mid-stream'));
  }

  /** Sends a body to the agent; resolves with its length once the last frame is handed over. */
  async send(streamId: number, kind: FrameKind, body: ReadableStream<Uint8Array> | null, maxBytes = Number.MAX_SAFE_INTEGER): Promise<number> {
    const o = this.windows.openOutgoing(streamId);
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
            await o.room(offset);
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
          await o.room(offset);
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
      this.windows.closeOutgoing(o);
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
