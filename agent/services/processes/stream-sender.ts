/**
 * One output stream of one process: its source, its ring, and where the
 * current data socket stands.
 *
 *   acked ≤ sent ≤ produced      (offsets in the stream)
 *
 * Sending never goes past acked + window. Reading pauses the source once
 * produced − acked exceeds window + slack and resumes it at window or less,
 * so a stalled or absent socket blocks the process instead of growing memory:
 * one stream holds at most max(ringBytes, window + slack + one read chunk).
 * Once the process has exited the source is drained without pausing (the
 * pipe holds only what the process wrote before it ended), up to one more
 * window; past that a left-behind child is flooding it and reading stops.
 */
import type { Readable } from 'node:stream';
import { encodeBinaryFrame, FrameKind } from '../../../shared/protocol/binary';
import type { StreamName } from '../../../shared/protocol/session-data';
import { OutputRing } from './output-ring';
import { metrics } from '../../metrics/agent-metrics';
import type { DataSink } from './types';
import { utf8ChunkEnd } from '../../../shared/protocol/utf8-boundary';

export interface StreamSenderOptions {
  ringBytes: number;
  windowBytes: number;
  chunkBytes: number;
  /** Where the stream starts (default 0): the edge's last acknowledged offset of a process found after an agent restart. */
  startOffset?: number;
  onData(sender: StreamSender): void;
  onEnd(sender: StreamSender): void;
}

export type SendResult = 'sent' | 'idle' | 'failed';

/** Bytes read past the window before the source is paused; also the resume hysteresis. */
export function pauseSlack(windowBytes: number): number {
  return Math.min(256 * 1024, Math.max(1, Math.floor(windowBytes / 4)));
}

export class StreamSender {
  readonly ring: OutputRing;
  acked = 0;
  sent = 0;
  ended = false;
  paused = false;
  /** When the stream last received data (for idle detection); -Infinity before any. */
  lastDataAt = Number.NEGATIVE_INFINITY;
  private readonly pauseAbove: number;
  private draining = false;

  constructor(
    readonly streamId: number,
    readonly name: StreamName,
    private readonly source: Readable,
    private readonly opts: StreamSenderOptions,
  ) {
    metrics.trackStream(this);
    this.pauseAbove = opts.windowBytes + pauseSlack(opts.windowBytes);
    this.ring = new OutputRing(opts.ringBytes, Math.max(opts.ringBytes, this.pauseAbove + opts.chunkBytes) + 64 * 1024);
    if (opts.startOffset) {
      this.ring.startAt(opts.startOffset);
      this.acked = this.sent = opts.startOffset;
    }
    source.on('data', (chunk: Buffer | string) => this.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk));
    source.once('end', () => this.finish());
    source.once('close', () => this.finish());
    source.on('error', () => this.finish());
  }

  get produced(): number {
    return this.ring.end;
  }
  get hasUnsent(): boolean {
    return this.sent < this.ring.end;
  }
  /** Everything the stream will ever produce was handed to the sink. */
  get drained(): boolean {
    return this.ended && this.sent >= this.ring.end;
  }
  get fullyAcked(): boolean {
    return this.ended && this.acked >= this.ring.end;
  }

  /** Stops reading for good (the process is gone and something else holds the pipe). */
  abandon(): void {
    if (this.ended) return;
    this.source.destroy();
    this.finish();
  }

  /** The process has exited: read what is left in the pipe without waiting for acks. */
  drain(): void {
    this.draining = true;
    if (this.paused) {
      this.paused = false;
      if (!this.ended) this.source.resume();
    }
  }

  ack(offset: number): void {
    const off = Math.min(offset, this.ring.end);
    if (off <= this.acked) return;
    this.acked = off;
    if (this.sent < off) this.sent = off;
    this.ring.release(off);
    if (this.paused && this.ring.end - this.acked <= this.opts.windowBytes) {
      this.paused = false;
      if (!this.ended) this.source.resume();
    }
  }

  /** A fresh socket: send again everything it has not acknowledged. */
  restartFromAck(): void {
    this.sent = Math.max(this.acked, this.ring.start);
  }

  /** Hands at most one Output frame to the sink. */
  sendOne(sink: DataSink): SendResult {
    // Never from below the ring's oldest byte.
    if (this.sent < this.ring.start) this.sent = this.ring.start;
    const produced = this.ring.end;
    const limit = Math.min(produced, this.acked + this.opts.windowBytes, this.sent + this.opts.chunkBytes);
    if (limit <= this.sent) return 'idle';
    const end = utf8ChunkEnd(this.ring, this.sent, limit, produced, this.ended);
    if (end <= this.sent) return 'idle';
    const payload = this.ring.read(this.sent, end);
    const frame = encodeBinaryFrame({ kind: FrameKind.Output, flags: 0, streamId: this.streamId, offset: this.sent, payload }, Buffer.allocUnsafe);
    if (!sink.sendBinary(frame)) return 'failed';
    this.sent = end;
    return 'sent';
  }

  private push(chunk: Uint8Array): void {
    if (this.ended || chunk.byteLength === 0) return;
    this.ring.append(chunk);
    if (this.draining) {
      if (this.ring.end - this.acked > this.pauseAbove + this.opts.windowBytes) this.abandon();
    } else if (!this.paused && this.ring.end - this.acked > this.pauseAbove) {
      this.paused = true;
      this.source.pause();
    }
    this.opts.onData(this);
  }


  private finish(): void {
    if (this.ended) return;
    this.ended = true;
    this.opts.onEnd(this);
  }
}
