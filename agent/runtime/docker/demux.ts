/**
 * Splits Docker's multiplexed attach stream (8-byte header: stream type, 3
 * zero bytes, big-endian length; then the payload) into stdout and stderr.
 * Unlike docker-modem's demuxStream it keeps backpressure: when a reader
 * stops reading, the source is paused, and the process in the container
 * blocks on its next write instead of the agent buffering without bound.
 */
import { Readable, Writable } from 'node:stream';

const STDOUT = 1;
const STDERR = 2;

export class Demultiplexer extends Writable {
  readonly stdout: Readable;
  readonly stderr: Readable;
  private buffered: Buffer = Buffer.alloc(0);
  private waiting: (() => void) | undefined;

  constructor() {
    super();
    const resume = () => {
      const cb = this.waiting;
      this.waiting = undefined;
      cb?.();
    };
    this.stdout = new Readable({ read: resume });
    this.stderr = new Readable({ read: resume });
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, callback: (err?: Error | null) => void): void {
    this.buffered = this.buffered.length ? Buffer.concat([this.buffered, chunk]) : chunk;
    let full = false;
    while (this.buffered.length >= 8) {
      const length = this.buffered.readUInt32BE(4);
      if (this.buffered.length < 8 + length) break;
      const kind = this.buffered[0];
      const payload = this.buffered.subarray(8, 8 + length);
      this.buffered = this.buffered.subarray(8 + length);
      if (kind === STDOUT && !this.stdout.push(payload)) full = true;
      else if (kind === STDERR && !this.stderr.push(payload)) full = true;
    }
    if (full) this.waiting = () => callback();
    else callback();
  }

  override _final(callback: (err?: Error | null) => void): void {
    this.stdout.push(null);
    this.stderr.push(null);
    callback();
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    if (!this.stdout.readableEnded) this.stdout.push(null);
    if (!this.stderr.readableEnded) this.stderr.push(null);
    callback(err);
  }
}
