/**
 * The edge's end of one-shot byte streams (../../shared/protocol/byte-streams.ts)
 * inside a Session DO: bytes from the agent become a ReadableStream that
 * acknowledges as its consumer (an HTTP response, a WebSocket) pulls; a
 * ReadableStream to the agent is sent in frames, waiting for the agent's acks
 * when the window is full. Memory per stream stays within one window.
 */
import { AppError, ErrorCode } from '../../shared/errors';
import { encodeBinaryFrame, FrameFlag, type BinaryFrame, type FrameKind } from '../../shared/protocol/binary';
import { joinBytes } from '../../shared/bytes';
import { BYTE_STREAM_CHUNK, BYTE_STREAM_WINDOW } from '../../shared/protocol/byte-streams';

export interface StreamSink {
  sendBinary(bytes: Uint8Array): boolean;
  sendEvent(event: string, data: unknown): boolean;
}

interface Incoming {
  controller: ReadableStreamDefaultController<Uint8Array>;
  received: number;
  delivered: number;
  acked: number;
  queue: Uint8Array[];
  ended: boolean;
}

interface Outgoing {
  acked: number;
  wake: (() => void) | undefined;
  failed: AppError | undefined;
}

export class EdgeByteStreams {
  private readonly incoming = new Map<number, Incoming>();
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
          this.incoming.delete(streamId);
        },
      },
      { highWaterMark: 0 },
    );
  }

  private deliver(streamId: number): void {
    const s = this.incoming.get(streamId);
    if (!s) return;
    const next = s.queue.shift();
    if (next) {
      s.controller.enqueue(next);
      s.delivered += next.byteLength;
      // Ack in steps of a chunk, not on every pull.
      if (s.delivered - s.acked >= BYTE_STREAM_CHUNK || (s.ended && s.queue.length === 0)) {
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
    const s = this.incoming.get(frame.streamId);
    if (!s) return false;
    if (frame.offset !== s.received) {
      s.controller.error(new AppError(ErrorCode.ProtocolError, `stream ${frame.streamId}: bytes out of order`));
      this.incoming.delete(frame.streamId);
      return true;
    }
    s.received += frame.payload.byteLength;
    if (frame.payload.byteLength > 0) s.queue.push(frame.payload.slice());
    if (frame.flags & FrameFlag.End) s.ended = true;
    if (s.controller.desiredSize !== null && s.controller.desiredSize >= 0) this.deliver(frame.streamId);
    return true;
  }

  onAck(streamId: number, offset: number): boolean {
    const o = this.outgoing.get(streamId);
    if (!o) return false;
    o.acked = Math.max(o.acked, offset);
    o.wake?.();
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
      if (body) {
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
    const sink = this.sink();
    if (!sink?.sendBinary(encodeBinaryFrame({ kind, flags, streamId, offset, payload }))) {
      throw new AppError(ErrorCode.AgentUnavailable, 'the session\'s agent is not connected');
    }
  }
}

/** Bytes of an unwanted body read and dropped before giving up on it (see drain). */
const DRAIN_LIMIT = 16 * 1024 * 1024;

/**
 * Reads and discards what is left of a refused request body, up to a bound,
 * then cancels it. Answering before the client has finished sending breaks
 * the connection in some HTTP proxies (wrangler dev's among them), so a
 * refusal of a modest upload still reaches the client cleanly.
 */
export async function drain(reader: ReadableStreamDefaultReader<Uint8Array>, limit = DRAIN_LIMIT): Promise<void> {
  let dropped = 0;
  try {
    while (dropped < limit) {
      const { done, value } = await reader.read();
      if (done) return;
      dropped += value.byteLength;
    }
    await reader.cancel();
  } catch {
    // The body failed on its own: nothing left to drain.
  }
}
