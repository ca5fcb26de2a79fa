/**
 * One process followed over a session connection. Its output arrives as
 * byte ranges with offsets (binary frames or `command_output`); each stream
 * keeps the offset of the next byte it expects, so a range that comes twice
 * after a reconnect is cut to what is new and nothing is delivered twice.
 * Bytes wait in a queue until the reader takes them, and only then are they
 * acknowledged to the edge (`ack`), so a reader that stops reading holds the
 * process back instead of losing output.
 *
 * `output` is every stream in arrival order (for a terminal, the PTY);
 * `stdout`/`stderr` are the two streams apart; `text` is `output` decoded as
 * UTF-8. Each stream can be read through one of these views only.
 */
import type { StreamName } from '../../shared/protocol/session-data';
import { Emitter } from './emitter';
import { ClientErrorCode, MominaiError } from './errors';
import type { ExitInfo, GapInfo } from './protocol';

export type ExitReason = ExitInfo['reason'];

export interface ProcessExit {
  exitCode: number | null;
  signal?: string;
  reason: ExitReason;
}

export interface OutputChunk {
  stream: StreamName;
  offset: number;
  bytes: Uint8Array;
}

/** What a process handle needs from its connection. */
export interface ProcessLink {
  ack(processId: string, stream: StreamName, offset: number): void;
  stdin(processId: string, data: string | Uint8Array): Promise<void>;
  resize(processId: string, cols: number, rows: number): Promise<void>;
  kill(processId: string, signal?: string): Promise<void>;
  forget(processId: string): void;
}

/** Acknowledge at least this often while a reader drains a backlog (the edge's window is 4 MiB a stream). */
const ACK_STEP_BYTES = 256 * 1024;

class StreamReceiver {
  /** Offset of the next byte expected from the edge. */
  next = 0;
  /** Offset up to which the reader has taken bytes. */
  consumed = 0;
  acked = 0;
  readonly queue: Array<OutputChunk & { seq: number }> = [];
  taken = false;

  constructor(readonly name: StreamName) {}

  get queuedBytes(): number {
    return this.queue.reduce((n, c) => n + c.bytes.byteLength, 0);
  }
}

let arrival = 0;

interface ProcessEvents {
  gap: [GapInfo];
  exit: [ProcessExit];
}

export class ProcessHandle {
  readonly exit: Promise<ProcessExit>;
  private resolveExit!: (e: ProcessExit) => void;
  private readonly receivers: Map<StreamName, StreamReceiver>;
  private readonly waiters = new Set<() => void>();
  private readonly events = new Emitter<ProcessEvents>();
  private exited: ProcessExit | undefined;
  private discarding = false;
  private outputStream: ReadableStream<Uint8Array> | undefined;
  private textStream: ReadableStream<string> | undefined;
  private readonly perStream = new Map<StreamName, ReadableStream<Uint8Array>>();

  constructor(
    readonly processId: string,
    readonly tty: boolean,
    private readonly link: ProcessLink,
    from: Partial<Record<StreamName, number>> = {},
  ) {
    const names: StreamName[] = tty ? ['pty'] : ['stdout', 'stderr'];
    this.receivers = new Map(names.map((n) => {
      const r = new StreamReceiver(n);
      r.next = r.consumed = r.acked = from[n] ?? 0;
      return [n, r] as const;
    }));
    this.exit = new Promise((resolve) => (this.resolveExit = resolve));
  }

  /** Every stream's bytes in arrival order (for a terminal, its PTY). */
  get output(): ReadableStream<Uint8Array> {
    this.outputStream ??= this.readable([...this.receivers.values()]);
    return this.outputStream;
  }

  /** `output` decoded as UTF-8. */
  get text(): ReadableStream<string> {
    // TextDecoderStream takes any BufferSource; the DOM typings do not see it as a Uint8Array pair.
    this.textStream ??= this.output.pipeThrough(new TextDecoderStream() as unknown as ReadableWritablePair<string, Uint8Array>);
    return this.textStream;
  }

  get stdout(): ReadableStream<Uint8Array> {
    return this.streamOf('stdout');
  }

  get stderr(): ReadableStream<Uint8Array> {
    return this.streamOf('stderr');
  }

  /** Subscribes to `gap` (bytes the edge no longer held) or `exit`; returns an unsubscribe. */
  on<K extends keyof ProcessEvents>(event: K, listener: (...args: ProcessEvents[K]) => void): () => void {
    return this.events.on(event, listener);
  }

  /** Writes to the process's stdin (keystrokes, for a terminal). */
  write(data: string | Uint8Array): Promise<void> {
    if (this.exited) return Promise.reject(new MominaiError(ClientErrorCode.Closed, 'the process has exited'));
    return this.link.stdin(this.processId, data);
  }

  resize(cols: number, rows: number): Promise<void> {
    return this.link.resize(this.processId, cols, rows);
  }

  /** Signals the whole process group (SIGTERM unless told otherwise). */
  kill(signal?: 'SIGTERM' | 'SIGKILL' | 'SIGINT' | 'SIGHUP' | 'SIGQUIT' | 'SIGUSR1' | 'SIGUSR2'): Promise<void> {
    return this.link.kill(this.processId, signal);
  }

  /** Drops output instead of keeping it for a reader (it is acknowledged as it comes). */
  discard(): void {
    this.discarding = true;
    for (const r of this.receivers.values()) {
      r.queue.length = 0;
      r.consumed = r.next;
      this.maybeAck(r, true);
    }
    this.wake();
  }

  /** For each stream, the offset of the next byte this handle expects (what `resume` asks for). */
  offsets(): Partial<Record<StreamName, number>> {
    const out: Partial<Record<StreamName, number>> = {};
    for (const r of this.receivers.values()) out[r.name] = r.next;
    return out;
  }

  get hasExited(): boolean {
    return this.exited !== undefined;
  }

  /* ---- fed by the connection ---- */

  /** @internal A range of bytes; returns a gap when it starts past what was expected. */
  receive(stream: StreamName, offset: number, bytes: Uint8Array): void {
    const r = this.receivers.get(stream);
    if (!r) return;
    const end = offset + bytes.byteLength;
    if (end <= r.next) return;
    if (offset > r.next) this.gap({ processId: this.processId, stream, fromOffset: r.next, toOffset: offset });
    const fresh = offset < r.next ? bytes.subarray(r.next - offset) : bytes;
    const at = Math.max(offset, r.next);
    r.next = end;
    if (this.discarding) {
      r.consumed = end;
      this.maybeAck(r, true);
      return;
    }
    r.queue.push({ stream, offset: at, bytes: fresh, seq: arrival++ });
    this.wake();
  }

  /** @internal The edge no longer held [fromOffset, toOffset): the stream goes on from toOffset. */
  gap(g: GapInfo): void {
    const r = this.receivers.get(g.stream);
    if (!r || g.toOffset <= r.next) return;
    r.next = g.toOffset;
    if (r.queue.length === 0) r.consumed = Math.max(r.consumed, g.toOffset);
    this.events.emit('gap', g);
  }

  /** @internal All output has been sent (the edge sends the exit after the last byte). */
  finish(exit: ProcessExit): void {
    if (this.exited) return;
    this.exited = exit;
    this.resolveExit(exit);
    this.events.emit('exit', exit);
    this.wake();
    if (this.idle()) this.link.forget(this.processId);
  }

  /* ---- reading ---- */

  private streamOf(name: StreamName): ReadableStream<Uint8Array> {
    let s = this.perStream.get(name);
    if (!s) {
      const r = this.receivers.get(name);
      if (!r) throw new TypeError(`this process has no ${name} stream${this.tty ? ' (a terminal has only `output`)' : ''}`);
      s = this.readable([r]);
      this.perStream.set(name, s);
    }
    return s;
  }

  private readable(receivers: StreamReceiver[]): ReadableStream<Uint8Array> {
    for (const r of receivers) {
      if (r.taken) throw new TypeError(`the ${r.name} stream is already being read through another view`);
      r.taken = true;
    }
    return new ReadableStream<Uint8Array>(
      {
        pull: async (controller) => {
          for (;;) {
            let pick: StreamReceiver | undefined;
            for (const r of receivers) if (r.queue.length && (!pick || r.queue[0]!.seq < pick.queue[0]!.seq)) pick = r;
            if (pick) {
              const chunk = pick.queue.shift()!;
              pick.consumed = chunk.offset + chunk.bytes.byteLength;
              controller.enqueue(chunk.bytes);
              this.maybeAck(pick, pick.queue.length === 0);
              if (this.idle()) this.link.forget(this.processId);
              return;
            }
            if (this.exited) {
              controller.close();
              return;
            }
            await new Promise<void>((resolve) => this.waiters.add(resolve));
          }
        },
        cancel: () => this.discard(),
      },
      { highWaterMark: 0 },
    );
  }

  private maybeAck(r: StreamReceiver, caughtUp: boolean): void {
    if (r.consumed <= r.acked) return;
    if (!caughtUp && r.consumed - r.acked < ACK_STEP_BYTES) return;
    r.acked = r.consumed;
    this.link.ack(this.processId, r.name, r.consumed);
  }

  private wake(): void {
    const ws = [...this.waiters];
    this.waiters.clear();
    for (const w of ws) w();
  }

  /** Exited and nothing left to read. */
  private idle(): boolean {
    if (!this.exited) return false;
    for (const r of this.receivers.values()) if (r.queue.length) return false;
    return true;
  }
}
