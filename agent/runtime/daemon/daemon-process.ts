/**
 * A process run by a session daemon, behind the runtime's ProcessHandle: its
 * output arrives as offset-addressed frames on the daemon connection and is
 * pushed into Readables (bytes at or below what was pushed already are
 * dropped, so a resumed stream never repeats); its exit arrives after its
 * last byte. The edge's acknowledgements are passed on (`ack`), which lets
 * the daemon free its ring and keep the process reading.
 */
import { Readable } from 'node:stream';
import type { DaemonStream } from '../../daemon/protocol';
import { shellSignal, signalsFor } from '../signals';
import type { ExitInfo, ProcessHandle } from '../runtime';
import type { DaemonClient, ProcessSink } from './daemon-client';

export class DaemonProcessHandle implements ProcessHandle, ProcessSink {
  readonly stdout: Readable;
  readonly stderr: Readable | null;
  readonly exited: Promise<ExitInfo>;
  /** The daemon keeps the process and its ring when the agent goes; the next agent adopts it. */
  readonly outlivesAgent = true;
  private resolveExit!: (info: ExitInfo) => void;
  private done = false;
  private stdinClosed = false;
  /** Next offset expected on each stream. */
  private readonly next: Record<DaemonStream, number>;

  /** `from`: where each stream starts (0 for a new process; the acknowledged offset for one found after a restart). */
  constructor(
    private readonly client: DaemonClient,
    readonly ref: number,
    readonly tty: boolean,
    from: Partial<Record<DaemonStream, number>> = {},
  ) {
    this.next = { stdout: from.stdout ?? 0, stderr: from.stderr ?? 0, pty: from.pty ?? 0 };
    // Reading is driven by the agent's stream sender; the daemon bounds what is in flight (its ring stops at a limit).
    this.stdout = new Readable({ read: () => undefined });
    this.stderr = tty ? null : new Readable({ read: () => undefined });
    this.exited = new Promise((resolve) => (this.resolveExit = resolve));
    client.register(ref, this);
  }

  output(stream: DaemonStream, offset: number, bytes: Buffer): void {
    const target = stream === 'stderr' ? this.stderr : this.tty === (stream === 'pty') ? this.stdout : null;
    if (!target || this.done) return;
    const skip = this.next[stream] - offset;
    if (skip >= bytes.byteLength) return;
    // A jump forward would be a daemon bug; the bytes still count from where they say they start.
    const fresh = skip > 0 ? bytes.subarray(skip) : bytes;
    this.next[stream] = offset + bytes.byteLength;
    target.push(Buffer.from(fresh));
  }

  exit(info: ExitInfo): void {
    this.finish(info);
  }

  lost(): void {
    this.finish({ exitCode: null, reason: 'lost' });
  }

  write(data: Uint8Array | string): void {
    if (this.done || this.stdinClosed) return;
    this.client.input(this.ref, typeof data === 'string' ? Buffer.from(data) : data);
  }

  closeStdin(): void {
    if (this.done || this.stdinClosed) return;
    this.stdinClosed = true;
    void this.client.request('closeStdin', { ref: this.ref }).catch(() => undefined);
  }

  async resize(cols: number, rows: number): Promise<void> {
    if (!this.tty || this.done) return;
    await this.client.request('resize', { ref: this.ref, cols: Math.max(1, Math.floor(cols)), rows: Math.max(1, Math.floor(rows)) }).catch(() => undefined);
  }

  async kill(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    shellSignal(signal);
    if (this.done) return;
    await this.client.request('kill', { ref: this.ref, signals: signalsFor(signal, this.tty) }).catch((err: unknown) => {
      // The process or its container is gone already: nothing left to signal.
      if (!this.client.closed) throw err;
    });
  }

  ack(stream: DaemonStream, offset: number): void {
    // Also after the exit: the daemon drops a finished process once the edge holds all of it.
    this.client.ack(this.ref, stream, offset);
  }

  private finish(info: ExitInfo): void {
    if (this.done) return;
    this.done = true;
    this.stdout.push(null);
    this.stderr?.push(null);
    this.resolveExit(info);
  }
}
