/**
 * One process of a session, from spawn to the moment its record is dropped.
 *
 *   running ──(runtime says it exited)──▶ exiting ──(every stream ended)──▶ exited
 *
 * `exiting` drains the output pipes to their end (flow control no longer
 * pauses them: what is left is what the process wrote before it ended), so
 * the ring holds every byte before the exit is reported. A pipe kept open by
 * a child the process left behind is abandoned after a grace period.
 */
import type { BinaryFrame } from '../../../shared/protocol/binary';
import { FrameFlag } from '../../../shared/protocol/binary';
import { StreamIndex, type ProcExitEvent, type ProcSpawnParams, type ProcStateEvent } from '../../../shared/protocol/session-data';
import type { Logger } from '../../logger';
import type { ExitInfo, ProcessHandle } from '../../runtime/runtime';
import { StreamSender } from './stream-sender';
import type { ProcessSummary, StreamOffsets } from './types';

export type ProcessState = 'running' | 'exiting' | 'exited';

export interface ManagedProcessDeps {
  logger: Logger;
  now: () => number;
  ringBytes: number;
  windowBytes: number;
  chunkBytes: number;
  exitGraceMs: number;
  onData(sender: StreamSender): void;
  onExited(proc: ManagedProcess): void;
}

export class ManagedProcess {
  readonly processId: string;
  readonly streamBase: number;
  readonly command: string[];
  readonly tty: boolean;
  readonly startedAt: number;
  readonly streams: StreamSender[];
  state: ProcessState = 'running';
  exit: ExitInfo | undefined;
  endedAt: number | undefined;
  /** The socket generation on which `proc.exit` was last sent. */
  exitSentGeneration = -1;
  private stdinOffset = 0;
  private timedOut = false;
  private disposed = false;
  private timeoutTimer: NodeJS.Timeout | undefined;
  private graceTimer: NodeJS.Timeout | undefined;
  private readonly log: Logger;
  private markFinished!: () => void;
  /** Resolves when the state reaches `exited`. */
  readonly finished = new Promise<void>((resolve) => (this.markFinished = resolve));

  /** `resumed`: a process found running after an agent restart, its streams starting at these offsets. */
  constructor(
    params: ProcSpawnParams,
    private readonly handle: ProcessHandle,
    private readonly deps: ManagedProcessDeps,
    resumed?: { startedAt: number; offsets: Partial<StreamOffsets> },
  ) {
    this.processId = params.processId;
    this.streamBase = params.streamBase;
    this.command = params.command;
    this.tty = handle.tty;
    this.startedAt = resumed?.startedAt ?? deps.now();
    this.log = deps.logger.child({ processId: params.processId });
    const opts = (name: keyof StreamOffsets) => ({
      ringBytes: deps.ringBytes,
      windowBytes: deps.windowBytes,
      chunkBytes: deps.chunkBytes,
      startOffset: resumed?.offsets[name] ?? 0,
      onData: deps.onData,
      onEnd: () => this.maybeFinish(),
    });
    this.streams = handle.tty
      ? [new StreamSender(params.streamBase + StreamIndex.pty, 'pty', handle.stdout, opts('pty'))]
      : [
          new StreamSender(params.streamBase + StreamIndex.stdout, 'stdout', handle.stdout, opts('stdout')),
          ...(handle.stderr ? [new StreamSender(params.streamBase + StreamIndex.stderr, 'stderr', handle.stderr, opts('stderr'))] : []),
        ];
    if (params.timeoutMs !== undefined) {
      this.timeoutTimer = setTimeout(() => this.onTimeout(), params.timeoutMs);
    }
    handle.exited.then(
      (info) => this.onExited(info),
      (err: unknown) => {
        this.log.warn('lost track of a process', { error: err });
        this.onExited({ exitCode: null, reason: 'lost' });
      },
    );
  }

  get running(): boolean {
    return this.state !== 'exited';
  }

  /** The runtime keeps it running after this agent process ends (see ProcessHandle.outlivesAgent). */
  get outlivesAgent(): boolean {
    return this.handle.outlivesAgent === true;
  }

  /** Every byte and the exit reached the edge's storage. */
  get settled(): boolean {
    return this.state === 'exited' && this.exitSentGeneration >= 0 && this.streams.every((s) => s.fullyAcked);
  }

  endOffsets(): StreamOffsets {
    const offsets: StreamOffsets = { stdout: 0, stderr: 0, pty: 0 };
    for (const s of this.streams) offsets[s.name] = s.produced;
    return offsets;
  }

  stateEntry(): ProcStateEvent['processes'][number] {
    return { processId: this.processId, streamBase: this.streamBase, running: this.running, endOffsets: this.endOffsets() };
  }

  /** The `proc.exit` event, once the exit is known. */
  exitEvent(): ProcExitEvent | undefined {
    if (!this.exit) return undefined;
    const { exitCode, signal, reason } = this.exit;
    return { processId: this.processId, exitCode, reason, endOffsets: this.endOffsets(), ...(signal !== undefined ? { signal } : {}) };
  }

  /** Input frames carry stdin offsets; bytes at or below what was written already are dropped. */
  writeInput(frame: BinaryFrame): void {
    const end = frame.offset + frame.payload.byteLength;
    if (frame.offset > this.stdinOffset) {
      this.log.warn('stdin gap; writing what arrived', { expected: this.stdinOffset, got: frame.offset });
      this.stdinOffset = frame.offset;
    }
    if (this.state === 'running' && end > this.stdinOffset) {
      try {
        this.handle.write(frame.payload.subarray(this.stdinOffset - frame.offset));
      } catch (err) {
        this.log.debug('stdin write failed', { error: err });
      }
    }
    this.stdinOffset = Math.max(this.stdinOffset, end);
    if ((frame.flags & FrameFlag.End) !== 0 && this.state === 'running') this.handle.closeStdin();
  }

  /** The edge acknowledged a stream up to `offset`: the runtime may let go of those bytes too. */
  forwardAck(sender: StreamSender): void {
    this.handle.ack?.(sender.name, sender.acked);
  }

  resize(cols: number, rows: number): Promise<void> {
    return this.state === 'running' ? this.handle.resize(cols, rows) : Promise.resolve();
  }

  /** Reaches the group until the record is final: children left behind keep the pipes (and `exiting`) open. */
  kill(signal: NodeJS.Signals): Promise<void> {
    return this.state !== 'exited' ? this.handle.kill(signal) : Promise.resolve();
  }

  /** Waits (up to `ms`) for the exit to be known and the output read; then gives up on open pipes. */
  async settle(ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)));
    await Promise.race([this.finished, timeout]);
    clearTimeout(timer);
    if (this.state === 'running') this.onExited({ exitCode: null, reason: 'lost' });
    for (const s of this.streams) s.abandon();
  }

  summary(): ProcessSummary {
    const s: ProcessSummary = {
      processId: this.processId,
      streamBase: this.streamBase,
      command: this.command,
      tty: this.tty,
      running: this.running,
      startedAt: this.startedAt,
      endOffsets: this.endOffsets(),
    };
    if (this.endedAt !== undefined) s.endedAt = this.endedAt;
    if (this.exit) {
      s.exitCode = this.exit.exitCode;
      s.reason = this.exit.reason;
      if (this.exit.signal !== undefined) s.signal = this.exit.signal;
    }
    return s;
  }

  /** Clears timers and stops reading; the record is being dropped (what the runtime says of it later is not news). */
  dispose(): void {
    this.disposed = true;
    this.clearTimers();
    for (const s of this.streams) s.abandon();
  }

  private onTimeout(): void {
    this.timeoutTimer = undefined;
    if (this.state !== 'running') return;
    this.timedOut = true;
    this.log.info('process timed out; killing its group');
    this.handle.kill('SIGKILL').catch((err: unknown) => this.log.warn('timeout kill failed', { error: err }));
  }

  private onExited(info: ExitInfo): void {
    if (this.state !== 'running' || this.disposed) return;
    this.state = 'exiting';
    this.exit = this.timedOut ? { ...info, reason: 'timeout' } : info;
    if (this.timeoutTimer) clearTimeout(this.timeoutTimer);
    this.timeoutTimer = undefined;
    for (const s of this.streams) s.drain();
    this.maybeFinish();
    if (this.state !== 'exiting') return;
    this.graceTimer = setTimeout(() => {
      this.graceTimer = undefined;
      for (const s of this.streams) s.abandon();
    }, this.deps.exitGraceMs);
  }

  private maybeFinish(): void {
    if (this.state !== 'exiting' || !this.streams.every((s) => s.ended)) return;
    this.state = 'exited';
    this.endedAt = this.deps.now();
    this.clearTimers();
    this.markFinished();
    this.deps.onExited(this);
  }

  private clearTimers(): void {
    if (this.timeoutTimer) clearTimeout(this.timeoutTimer);
    if (this.graceTimer) clearTimeout(this.graceTimer);
    this.timeoutTimer = undefined;
    this.graceTimer = undefined;
  }
}
