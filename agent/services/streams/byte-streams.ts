/**
 * The agent's end of one-shot byte streams (../../../shared/protocol/byte-streams.ts):
 * incoming streams become Node Readables that acknowledge what their consumer
 * takes; outgoing Readables are sent in frames, waiting for acks when the
 * window is full, so neither side buffers more than a window. The window and
 * ack bookkeeping is ../../../shared/protocol/byte-window.ts; this file holds
 * the Node streams around it.
 */
import { Readable } from 'node:stream';
import { AppError, ErrorCode } from '../../../shared/errors';
import { BINARY_HEADER_BYTES, encodeBinaryFrame, encodeBinaryFrameFromParts, FrameFlag, type BinaryFrame, type FrameKind } from '../../../shared/protocol/binary';
import { BYTE_STREAM_CHUNK, BYTE_STREAM_WINDOW } from '../../../shared/protocol/byte-streams';
import { ByteWindows, type AckPolicy, type IncomingPort, type IncomingWindow } from '../../../shared/protocol/byte-window';
import type { DataSink } from '../../connection/session-link';

/** An incoming stream's Readable, fed as its consumer asks. */
class Fed implements IncomingPort {
  /** Frames not yet asked for; at most a window, as the edge sends no more unacknowledged. */
  readonly queue: Buffer[] = [];
  /** The Readable asked for more and has been given none since. */
  wanted = false;
  /** The Readable has been given its end. */
  finished = false;
  constructor(readonly readable: Readable) {}
  fail(err: AppError): void {
    this.readable.destroy(err);
  }
}

/**
 * The agent's ack policy: every delivery is acknowledged, the last included,
 * since the Readable's own buffer holds about a chunk (the edge acknowledges
 * in steps of a chunk instead: edge/session/byte-streams.ts).
 */
const AGENT_ACKS: AckPolicy = { every: 1, afterEnd: true };

export class ByteStreams {
  private sink: DataSink | undefined;
  private readonly windows: ByteWindows<Fed>;

  constructor(window = BYTE_STREAM_WINDOW) {
    this.windows = new ByteWindows(AGENT_ACKS, window);
  }

  attach(sink: DataSink): void {
    this.sink = sink;
  }

  /** The socket is gone: every stream in flight fails. */
  detach(): void {
    this.sink = undefined;
    this.windows.failAll(new AppError(ErrorCode.AgentUnavailable, 'the data socket closed mid-stream'));
  }

  /**
   * A Readable of the bytes the edge will send on `streamId`. Frames enter it
   * only when its consumer asks (Node calls `read`), and each delivery is
   * acknowledged, so the edge sends more exactly as fast as the consumer takes.
   */
  receive(streamId: number): Readable {
    const port: Fed = new Fed(
      new Readable({
        highWaterMark: BYTE_STREAM_CHUNK,
        read: () => {
          port.wanted = true;
          this.deliver(w);
        },
      }),
    );
    const w = this.windows.openIncoming(streamId, port);
    port.readable.once('close', () => this.windows.closeIncoming(w));
    // A consumer sees a failed stream through its own reads; one that already
    // gave up (or has not started yet) must not turn an abort into a crash.
    port.readable.on('error', () => undefined);
    return port.readable;
  }

  /** Hands queued frames to the Readable while it wants more; acknowledges what it took. */
  private deliver(w: IncomingWindow<Fed>): void {
    if (!this.windows.isOpen(w)) return;
    const s = w.port;
    let bytes = 0;
    while (s.wanted && s.queue.length > 0) {
      const chunk = s.queue.shift()!;
      bytes += chunk.byteLength;
      s.wanted = s.readable.push(chunk);
    }
    const offset = w.deliver(bytes);
    if (w.complete && !s.finished) {
      s.finished = true;
      s.readable.push(null);
    }
    if (offset !== undefined) this.sink?.sendEvent('ack', { streamId: w.streamId, offset });
  }

  /** The sender gave up on a stream: its reader fails. */
  abortIncoming(streamId: number): void {
    this.windows.abortIncoming(streamId, new AppError(ErrorCode.BadRequest, 'upload interrupted'));
  }

  /** The receiver gave up on a stream this side sends (a download the browser left): its sender fails. */
  abortOutgoing(streamId: number): boolean {
    return this.windows.abortOutgoing(streamId, new AppError(ErrorCode.BadRequest, 'the receiver gave up on the stream'));
  }

  /** Takes a binary frame if it belongs to an incoming stream. */
  onBinary(frame: BinaryFrame): boolean {
    const w = this.windows.incomingStream(frame.streamId);
    if (!w) return false;
    const outOfOrder = w.accept(frame);
    if (outOfOrder) {
      w.port.fail(outOfOrder);
      return true;
    }
    if (frame.payload.byteLength > 0) w.port.queue.push(Buffer.from(frame.payload));
    this.deliver(w);
    return true;
  }

  /** Takes an ack if it belongs to an outgoing stream. */
  onAck(streamId: number, offset: number): boolean {
    return this.windows.onAck(streamId, offset);
  }

  /** Sends a Readable as frames of `kind`, the last one flagged End; resolves with the byte count. */
  async send(streamId: number, kind: FrameKind, source: AsyncIterable<Uint8Array | string>, extraFlags = 0): Promise<number> {
    // A Readable source ends at once when the edge gives up, so a sender waiting for its next chunk (a quiet event stream) stops too.
    const o = this.windows.openOutgoing(streamId, source instanceof Readable ? (err) => source.destroy(err) : undefined);
    let offset = 0;
    try {
      for await (const raw of source) {
        if (o.failed) throw o.failed;
        const chunk = typeof raw === 'string' ? Buffer.from(raw) : raw;
        // What the source already holds joins this chunk, up to a frame: fewer, larger
        // frames when the reader falls behind, and no waiting for more when it does not.
        // The pieces are copied once, straight into the frame.
        if (source instanceof Readable && chunk.byteLength < BYTE_STREAM_CHUNK && source.readableLength > 0) {
          const parts = gather(source, chunk);
          await o.room(offset);
          const size = this.send1(encodeBinaryFrameFromParts({ kind, flags: extraFlags, streamId, offset }, parts, Buffer.allocUnsafe));
          offset += size;
          continue;
        }
        for (let at = 0; at < chunk.byteLength; at += BYTE_STREAM_CHUNK) {
          const piece = chunk.subarray(at, Math.min(chunk.byteLength, at + BYTE_STREAM_CHUNK));
          await o.room(offset);
          this.frame(streamId, kind, offset, piece, extraFlags);
          offset += piece.byteLength;
        }
      }
      this.frame(streamId, kind, offset, new Uint8Array(), FrameFlag.End | extraFlags);
      return offset;
    } catch (err) {
      // The source failed (a dev server that hung up mid-body): the receiver must not wait for an End.
      if (!o.failed) this.sink?.sendEvent('stream.abort', { streamId });
      throw err;
    } finally {
      this.windows.closeOutgoing(o);
    }
  }

  /** One frame outside any stream bookkeeping (a relayed WebSocket message). */
  frame(streamId: number, kind: FrameKind, offset: number, payload: Uint8Array, flags = 0): void {
    this.send1(encodeBinaryFrame({ kind, flags, streamId, offset, payload }, Buffer.allocUnsafe));
  }

  /** Sends an encoded frame; returns its payload size. */
  private send1(bytes: Uint8Array): number {
    if (!this.sink?.sendBinary(bytes)) throw new AppError(ErrorCode.AgentUnavailable, 'the data socket is closed');
    return bytes.byteLength - BINARY_HEADER_BYTES;
  }
}

/** `first` plus whatever `source` has buffered (read synchronously), up to BYTE_STREAM_CHUNK bytes in all. */
function gather(source: Readable, first: Uint8Array): Uint8Array[] {
  const parts: Uint8Array[] = [first];
  let size = first.byteLength;
  while (size < BYTE_STREAM_CHUNK && source.readableLength > 0) {
    const more = source.read(Math.min(source.readableLength, BYTE_STREAM_CHUNK - size)) as Uint8Array | string | null;
    if (more === null) break;
    const bytes = typeof more === 'string' ? Buffer.from(more) : more;
    parts.push(bytes);
    size += bytes.byteLength;
  }
  return parts;
}
