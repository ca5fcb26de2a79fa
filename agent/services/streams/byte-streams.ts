/**
 * The agent's end of one-shot byte streams (../../../shared/protocol/byte-streams.ts):
 * incoming streams become Node Readables that acknowledge what their consumer
 * takes; outgoing Readables are sent in frames, waiting for acks when the
 * window is full, so neither side buffers more than a window.
 */
import { Readable } from 'node:stream';
import { AppError, ErrorCode } from '../../../shared/errors';
import { BINARY_HEADER_BYTES, encodeBinaryFrame, encodeBinaryFrameFromParts, FrameFlag, type BinaryFrame, type FrameKind } from '../../../shared/protocol/binary';
import { BYTE_STREAM_CHUNK, BYTE_STREAM_WINDOW } from '../../../shared/protocol/byte-streams';
import type { DataSink } from '../../connection/session-link';

interface Incoming {
  readable: Readable;
  received: number;
  /** Bytes handed to the Readable; acknowledged as they go, since its own buffer holds about a chunk. */
  delivered: number;
  /** Frames not yet asked for; at most a window, as the edge sends no more unacknowledged. */
  queue: Buffer[];
  ended: boolean;
  /** The Readable asked for more and has been given none since. */
  wanted: boolean;
}

interface Outgoing {
  acked: number;
  wake: (() => void) | undefined;
  failed: AppError | undefined;
  /** Ends a Readable source at once, so a sender waiting for its next chunk (a quiet event stream) stops too. */
  stopSource: ((err: AppError) => void) | undefined;
}

export class ByteStreams {
  private sink: DataSink | undefined;
  private readonly incoming = new Map<number, Incoming>();
  private readonly outgoing = new Map<number, Outgoing>();

  constructor(private readonly window = BYTE_STREAM_WINDOW) {}

  attach(sink: DataSink): void {
    this.sink = sink;
  }

  /** The socket is gone: every stream in flight fails. */
  detach(): void {
    this.sink = undefined;
    const err = new AppError(ErrorCode.AgentUnavailable, 'the data socket closed mid-stream');
    for (const [id, s] of this.incoming) {
      s.readable.destroy(err);
      this.incoming.delete(id);
    }
    for (const o of this.outgoing.values()) {
      o.failed = err;
      o.wake?.();
    }
  }

  /**
   * A Readable of the bytes the edge will send on `streamId`. Frames enter it
   * only when its consumer asks (Node calls `read`), and each delivery is
   * acknowledged, so the edge sends more exactly as fast as the consumer takes.
   */
  receive(streamId: number): Readable {
    const state: Incoming = {
      received: 0,
      delivered: 0,
      queue: [],
      ended: false,
      wanted: false,
      readable: new Readable({
        highWaterMark: BYTE_STREAM_CHUNK,
        read: () => {
          state.wanted = true;
          this.deliver(streamId);
        },
      }),
    };
    state.readable.once('close', () => this.incoming.delete(streamId));
    // A consumer sees a failed stream through its own reads; one that already
    // gave up (or has not started yet) must not turn an abort into a crash.
    state.readable.on('error', () => undefined);
    this.incoming.set(streamId, state);
    return state.readable;
  }

  private deliver(streamId: number): void {
    const s = this.incoming.get(streamId);
    if (!s) return;
    const before = s.delivered;
    while (s.wanted && s.queue.length > 0) {
      const chunk = s.queue.shift()!;
      s.delivered += chunk.byteLength;
      s.wanted = s.readable.push(chunk);
    }
    if (s.ended && s.queue.length === 0) {
      s.ended = false;
      s.readable.push(null);
    }
    if (s.delivered > before) this.sink?.sendEvent('ack', { streamId, offset: s.delivered });
  }

  /** The sender gave up on a stream: its reader fails. */
  abortIncoming(streamId: number): void {
    const s = this.incoming.get(streamId);
    if (!s) return;
    this.incoming.delete(streamId);
    s.readable.destroy(new AppError(ErrorCode.BadRequest, 'upload interrupted'));
  }

  /** The receiver gave up on a stream this side sends (a download the browser left): its sender fails. */
  abortOutgoing(streamId: number): boolean {
    const o = this.outgoing.get(streamId);
    if (!o) return false;
    o.failed = new AppError(ErrorCode.BadRequest, 'the receiver gave up on the stream');
    o.wake?.();
    o.stopSource?.(o.failed);
    return true;
  }

  /** Takes a binary frame if it belongs to an incoming stream. */
  onBinary(frame: BinaryFrame): boolean {
    const s = this.incoming.get(frame.streamId);
    if (!s) return false;
    if (frame.offset !== s.received) {
      s.readable.destroy(new AppError(ErrorCode.ProtocolError, `stream ${frame.streamId}: expected offset ${s.received}, got ${frame.offset}`));
      return true;
    }
    s.received += frame.payload.byteLength;
    if (frame.payload.byteLength > 0) s.queue.push(Buffer.from(frame.payload));
    if (frame.flags & FrameFlag.End) s.ended = true;
    this.deliver(frame.streamId);
    return true;
  }

  /** Takes an ack if it belongs to an outgoing stream. */
  onAck(streamId: number, offset: number): boolean {
    const o = this.outgoing.get(streamId);
    if (!o) return false;
    o.acked = Math.max(o.acked, offset);
    o.wake?.();
    return true;
  }

  /** Sends a Readable as frames of `kind`, the last one flagged End; resolves with the byte count. */
  async send(streamId: number, kind: FrameKind, source: AsyncIterable<Uint8Array | string>, extraFlags = 0): Promise<number> {
    const o: Outgoing = { acked: 0, wake: undefined, failed: undefined, stopSource: source instanceof Readable ? (err) => source.destroy(err) : undefined };
    this.outgoing.set(streamId, o);
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
          await this.roomFor(o, offset);
          const size = this.send1(encodeBinaryFrameFromParts({ kind, flags: extraFlags, streamId, offset }, parts, Buffer.allocUnsafe));
          offset += size;
          continue;
        }
        for (let at = 0; at < chunk.byteLength; at += BYTE_STREAM_CHUNK) {
          const piece = chunk.subarray(at, Math.min(chunk.byteLength, at + BYTE_STREAM_CHUNK));
          await this.roomFor(o, offset);
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
      this.outgoing.delete(streamId);
    }
  }

  /** Waits until the window has room past `offset`; throws once the stream failed. */
  private async roomFor(o: Outgoing, offset: number): Promise<void> {
    while (offset - o.acked >= this.window && !o.failed) await new Promise<void>((r) => (o.wake = r));
    o.wake = undefined;
    if (o.failed) throw o.failed;
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
