/**
 * The rules of one-shot byte streams (./byte-streams.ts), written once for both
 * ends of a data socket. The edge (edge/session/byte-streams.ts, workerd
 * streams) and the agent (agent/services/streams/byte-streams.ts, Node streams)
 * wrap their platform's streams around this and keep nothing else of the
 * protocol. No Node or workerd type here: shared/ is compiled for both.
 *
 * - Sending: `openOutgoing` gives a stream's OutgoingWindow; the sender awaits
 *   `room(offset)` before each frame, which returns once fewer than a window of
 *   bytes before `offset` are unacknowledged and throws once the stream failed
 *   (the receiver gave up, the socket closed). Acks move the window.
 * - Receiving: `openIncoming` gives a stream's IncomingWindow, holding the
 *   platform's end of the reader (its IncomingPort). `accept` takes a frame only
 *   at the exact next offset; `deliver` counts what the consumer took and
 *   returns the offset to acknowledge when the side's AckPolicy says an ack is due.
 * - `failAll`: the data socket is gone, every stream in flight fails.
 */
import { AppError, ErrorCode } from '../errors';
import { FrameFlag, type BinaryFrame } from './binary';
import { BYTE_STREAM_WINDOW } from './byte-streams';

/** When a receiver acknowledges the bytes its consumer took. */
export interface AckPolicy {
  /** Delivered, unacknowledged bytes that make an ack due (1: every delivery is acknowledged). */
  every: number;
  /**
   * Whether deliveries are still acknowledged once the End frame has arrived.
   * The sender needs none then (it waits for room only before data frames, and
   * End is its last), so `false` saves the messages.
   */
  afterEnd: boolean;
}

/** The platform's end of an incoming stream's reader. */
export interface IncomingPort {
  /** The reader fails with `err` (and never sees an end). */
  fail(err: AppError): void;
}

/** One stream this side sends: how far the receiver has acknowledged, and whether the stream failed. */
export class OutgoingWindow {
  private acked = 0;
  private wake: (() => void) | undefined;
  private failure: AppError | undefined;

  constructor(
    readonly streamId: number,
    private readonly size: number,
    /** Called when the receiver gives up on the stream (not when the socket closes). */
    readonly onAbort?: (err: AppError) => void,
  ) {}

  /** Why the stream failed, once it has. */
  get failed(): AppError | undefined {
    return this.failure;
  }

  /** The receiver has taken every byte before `offset`; a lower offset than one already seen changes nothing. */
  ack(offset: number): void {
    this.acked = Math.max(this.acked, offset);
    this.wake?.();
  }

  /** The stream fails: a sender waiting in `room` throws `err`, and so does every later call. */
  fail(err: AppError): void {
    this.failure = err;
    this.wake?.();
  }

  /** Waits until the window has room past `offset`; throws once the stream failed. */
  async room(offset: number): Promise<void> {
    while (offset - this.acked >= this.size && !this.failure) await new Promise<void>((r) => (this.wake = r));
    this.wake = undefined;
    if (this.failure) throw this.failure;
  }
}

/** One stream this side receives: bytes received in order, bytes its consumer took, and the acks they earn. */
export class IncomingWindow<P extends IncomingPort = IncomingPort> {
  private receivedBytes = 0;
  private deliveredBytes = 0;
  private acked = 0;
  private endSeen = false;

  constructor(
    readonly streamId: number,
    readonly port: P,
    private readonly policy: AckPolicy,
  ) {}

  /** Bytes accepted so far: the offset the next frame must carry. */
  get received(): number {
    return this.receivedBytes;
  }

  /** Bytes the consumer has taken. */
  get delivered(): number {
    return this.deliveredBytes;
  }

  /** The End frame has arrived: the sender has sent everything. */
  get ended(): boolean {
    return this.endSeen;
  }

  /** The End frame has arrived and the consumer has taken every byte before it. */
  get complete(): boolean {
    return this.endSeen && this.deliveredBytes === this.receivedBytes;
  }

  /**
   * Takes a frame's bytes (counted as received, not delivered) if it carries
   * exactly the next offset; otherwise counts nothing and returns the protocol
   * error the stream fails with.
   */
  accept(frame: Pick<BinaryFrame, 'flags' | 'offset' | 'payload'>): AppError | undefined {
    if (frame.offset !== this.receivedBytes) {
      return new AppError(ErrorCode.ProtocolError, `stream ${this.streamId}: expected offset ${this.receivedBytes}, got ${frame.offset}`);
    }
    this.receivedBytes += frame.payload.byteLength;
    if (frame.flags & FrameFlag.End) this.endSeen = true;
    return undefined;
  }

  /** Counts `bytes` more taken by the consumer; returns the offset to acknowledge when an ack is due. */
  deliver(bytes: number): number | undefined {
    this.deliveredBytes += bytes;
    if (this.deliveredBytes - this.acked < this.policy.every) return undefined;
    if (this.endSeen && !this.policy.afterEnd) return undefined;
    this.acked = this.deliveredBytes;
    return this.acked;
  }
}

/** Every byte stream in flight on one data socket, both directions, by stream id. */
export class ByteWindows<P extends IncomingPort = IncomingPort> {
  private readonly outgoing = new Map<number, OutgoingWindow>();
  private readonly incoming = new Map<number, IncomingWindow<P>>();

  constructor(
    private readonly ackPolicy: AckPolicy,
    private readonly window = BYTE_STREAM_WINDOW,
  ) {}

  /** Starts sending `streamId`; `closeOutgoing` it once its last frame is out or it failed. */
  openOutgoing(streamId: number, onAbort?: (err: AppError) => void): OutgoingWindow {
    const o = new OutgoingWindow(streamId, this.window, onAbort);
    this.outgoing.set(streamId, o);
    return o;
  }

  /** The sender is done with `o`: acks and aborts for its id are no longer its. */
  closeOutgoing(o: OutgoingWindow): void {
    if (this.outgoing.get(o.streamId) === o) this.outgoing.delete(o.streamId);
  }

  /** Takes an ack; false when no stream this side sends has the id. */
  onAck(streamId: number, offset: number): boolean {
    const o = this.outgoing.get(streamId);
    if (!o) return false;
    o.ack(offset);
    return true;
  }

  /** The receiver gave up on a stream this side sends: its sender fails with `err`. False when there is none. */
  abortOutgoing(streamId: number, err: AppError): boolean {
    const o = this.outgoing.get(streamId);
    if (!o) return false;
    o.fail(err);
    o.onAbort?.(err);
    return true;
  }

  /** Starts receiving `streamId` into `port`. */
  openIncoming(streamId: number, port: P): IncomingWindow<P> {
    const w = new IncomingWindow(streamId, port, this.ackPolicy);
    this.incoming.set(streamId, w);
    return w;
  }

  /** The open incoming stream with the id, if any. */
  incomingStream(streamId: number): IncomingWindow<P> | undefined {
    return this.incoming.get(streamId);
  }

  /** Whether `w` is still open (not closed, failed or aborted). */
  isOpen(w: IncomingWindow<P>): boolean {
    return this.incoming.get(w.streamId) === w;
  }

  /** Forgets an incoming stream; true when it was still open. */
  closeIncoming(w: IncomingWindow<P>): boolean {
    if (!this.isOpen(w)) return false;
    this.incoming.delete(w.streamId);
    return true;
  }

  /** Closes an incoming stream and fails its reader with `err`; false when no stream has the id. */
  abortIncoming(streamId: number, err: AppError): boolean {
    const w = this.incoming.get(streamId);
    if (!w) return false;
    this.incoming.delete(streamId);
    w.port.fail(err);
    return true;
  }

  /** The data socket is gone: every reader fails and every sender throws `err`. */
  failAll(err: AppError): void {
    const readers = [...this.incoming.values()];
    this.incoming.clear();
    for (const w of readers) w.port.fail(err);
    for (const o of this.outgoing.values()) o.fail(err);
  }
}
