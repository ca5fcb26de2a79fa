/**
 * The processes of one session and their output streams, served over the
 * session's data socket (see shared/protocol/session-data.ts for the wire
 * contract and ARCHITECTURE.md "Output that is never lost").
 *
 * Output goes process → ring → socket. The ring keeps every byte the edge has
 * not acknowledged, so a socket may come and go while processes run: on each
 * attach the manager announces `proc.state` and resends from the last acked
 * offsets. Sending is round-robin, one chunk per stream per turn, so a noisy
 * build cannot starve a terminal. A stream that was idle is flushed at once;
 * under load output is batched for at most `batchMs`. `proc.exit` for a
 * process is handed to the sink only after every output frame of it.
 */
import { AppError, ErrorCode } from '../../../shared/errors';
import { FrameKind, MAX_BINARY_PAYLOAD, type BinaryFrame } from '../../../shared/protocol/binary';
import {
  AGENT_RING_BYTES,
  ProcKillParams,
  ProcResizeParams,
  ProcSpawnParams,
  STREAM_WINDOW_BYTES,
  STREAMS_PER_PROCESS,
  type ProcStateEvent,
} from '../../../shared/protocol/session-data';
import type { Dispatcher } from '../../connection/dispatcher';
import type { Logger } from '../../logger';
import { metrics } from '../../metrics/agent-metrics';
import type { Runtime } from '../../runtime/runtime';
import { ManagedProcess, type ManagedProcessDeps } from './managed-process';
import type { StreamSender } from './stream-sender';
import {
  DEFAULT_BATCH_MS,
  DEFAULT_CHUNK_BYTES,
  DEFAULT_EXIT_GRACE_MS,
  DEFAULT_MAX_EXITED,
  DEFAULT_MAX_SOCKET_BUFFERED,
  SOCKET_RETRY_MS,
  type DataSink,
  type ProcessManagerOptions,
  type ProcessSummary,
} from './types';

/** How long killAll waits for a SIGKILLed group to be reported gone. */
const KILL_SETTLE_MS = 5_000;

export class ProcessManager {
  private readonly runtime: Runtime;
  private readonly sessionId: string;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly batchMs: number;
  private readonly chunkBytes: number;
  private readonly maxExited: number;
  private readonly maxRunning: number;
  private readonly maxBuffered: number;
  private readonly deps: ManagedProcessDeps;
  private readonly procs = new Map<string, ManagedProcess>();
  private readonly spawning = new Set<string>();
  private readonly byStreamId = new Map<number, { proc: ManagedProcess; sender: StreamSender }>();
  /** Input frames address a process by its streamBase. */
  private readonly byStreamBase = new Map<number, ManagedProcess>();
  private readonly exitOrder: ManagedProcess[] = [];
  private sink: DataSink | null = null;
  private generation = 0;
  private wakeTimer: NodeJS.Timeout | undefined;
  private wakeDue = 0;
  private pumping = false;
  private closed = false;
  /** close() or leave() is done: the manager holds nothing and announces nothing any more. */
  private done = false;

  constructor(opts: ProcessManagerOptions) {
    metrics.trackProcesses(this);
    const windowBytes = opts.windowBytes ?? STREAM_WINDOW_BYTES;
    const ringBytes = opts.ringBytes ?? AGENT_RING_BYTES;
    this.chunkBytes = opts.chunkBytes ?? DEFAULT_CHUNK_BYTES;
    this.batchMs = opts.batchMs ?? DEFAULT_BATCH_MS;
    this.maxExited = opts.maxExited ?? DEFAULT_MAX_EXITED;
    this.maxRunning = opts.maxRunning ?? 64;
    this.maxBuffered = opts.maxSocketBufferedBytes ?? DEFAULT_MAX_SOCKET_BUFFERED;
    const exitGraceMs = opts.exitGraceMs ?? DEFAULT_EXIT_GRACE_MS;
    check(Number.isInteger(ringBytes) && ringBytes >= 0, 'ringBytes must be a non-negative integer');
    check(Number.isInteger(windowBytes) && windowBytes >= 1, 'windowBytes must be a positive integer');
    check(Number.isInteger(this.chunkBytes) && this.chunkBytes >= 4 && this.chunkBytes <= MAX_BINARY_PAYLOAD, 'chunkBytes must be 4..1 MiB');
    check(this.batchMs >= 0 && exitGraceMs >= 0 && this.maxExited >= 0, 'batchMs, exitGraceMs and maxExited must be ≥ 0');
    this.runtime = opts.runtime;
    this.sessionId = opts.sessionId;
    this.log = opts.logger.child({ sessionId: opts.sessionId });
    this.now = opts.now ?? Date.now;
    this.deps = {
      logger: this.log,
      now: this.now,
      ringBytes,
      windowBytes,
      chunkBytes: this.chunkBytes,
      exitGraceMs,
      onData: (s) => this.onStreamData(s),
      onExited: (p) => this.onProcessExited(p),
    };
  }

  register(dispatcher: Dispatcher): void {
    dispatcher
      .on('proc.spawn', ProcSpawnParams, (p) => this.spawn(p))
      .on('proc.resize', ProcResizeParams, async (p) => {
        await this.get(p.processId).resize(p.cols, p.rows);
        return {};
      })
      .on('proc.kill', ProcKillParams, async (p) => {
        await this.get(p.processId).kill(p.signal ?? 'SIGTERM');
        return {};
      });
  }

  async spawn(p: ProcSpawnParams): Promise<{ processId: string }> {
    if (this.closed) throw new AppError(ErrorCode.Conflict, 'this session is closing');
    if (this.procs.has(p.processId) || this.spawning.has(p.processId)) {
      throw new AppError(ErrorCode.Conflict, `process ${p.processId} exists already`);
    }
    for (const other of this.procs.values()) {
      if (Math.abs(other.streamBase - p.streamBase) < STREAMS_PER_PROCESS) {
        throw new AppError(ErrorCode.Conflict, `streamBase ${p.streamBase} overlaps process ${other.processId}`);
      }
    }
    const running = [...this.procs.values()].filter((proc) => proc.running).length + this.spawning.size;
    if (running >= this.maxRunning) {
      throw new AppError(ErrorCode.LimitExceeded, `this session already runs ${this.maxRunning} processes (MAX_PROCESSES_PER_SESSION)`, {
        limit: this.maxRunning,
      });
    }
    this.spawning.add(p.processId);
    let handle;
    try {
      handle = await this.runtime.exec(this.sessionId, {
        command: p.command,
        ...(p.cwd !== undefined ? { cwd: p.cwd } : {}),
        ...(p.env !== undefined ? { env: p.env } : {}),
        tty: p.tty,
        ...(p.tty && p.cols !== undefined ? { cols: p.cols } : {}),
        ...(p.tty && p.rows !== undefined ? { rows: p.rows } : {}),
        tag: { processId: p.processId, streamBase: p.streamBase, command: p.command, ...(p.timeoutMs !== undefined ? { deadline: this.now() + p.timeoutMs } : {}) },
      });
    } finally {
      this.spawning.delete(p.processId);
    }
    const proc = new ManagedProcess(p, handle, this.deps);
    this.procs.set(proc.processId, proc);
    this.byStreamBase.set(proc.streamBase, proc);
    for (const sender of proc.streams) this.byStreamId.set(sender.streamId, { proc, sender });
    this.log.info('process started', { processId: p.processId, tty: handle.tty, argv0: p.command[0] });
    return { processId: p.processId };
  }

  /**
   * After an agent restart, before the data socket announces `proc.state`:
   * takes over the processes the runtime kept running (the session daemon),
   * each stream resuming at the offset the edge last acknowledged.
   */
  async adopt(): Promise<void> {
    let found;
    try {
      found = (await this.runtime.adopt?.(this.sessionId)) ?? [];
    } catch (err) {
      return this.log.warn('could not look for processes that outlived the previous agent', { error: err });
    }
    for (const a of found) {
      const deadline = a.tag.deadline;
      const params = ProcSpawnParams.safeParse({
        processId: a.tag.processId,
        streamBase: a.tag.streamBase,
        command: a.tag.command,
        tty: a.handle.tty,
        ...(deadline !== undefined ? { timeoutMs: Math.max(1, deadline - this.now()) } : {}),
      });
      if (!params.success || this.procs.has(a.tag.processId)) continue;
      const proc = new ManagedProcess(params.data, a.handle, this.deps, { startedAt: a.startedAt, offsets: a.offsets });
      this.procs.set(proc.processId, proc);
      this.byStreamBase.set(proc.streamBase, proc);
      for (const sender of proc.streams) this.byStreamId.set(sender.streamId, { proc, sender });
      this.log.debug('adopted a process', { processId: proc.processId, offsets: a.offsets });
      await a.resume().catch((err: unknown) => this.log.warn('resuming an adopted process failed', { processId: proc.processId, error: err }));
    }
    if (found.length > 0) this.log.info('took over processes that outlived the previous agent', { count: found.length });
  }

  /** A data socket (re)connected: announce what runs, then resend everything it has not acknowledged. */
  attach(sink: DataSink): void {
    if (this.done) return;
    if (this.sink) this.detach();
    this.sink = sink;
    this.generation++;
    for (const proc of this.procs.values()) for (const s of proc.streams) s.restartFromAck();
    const processes = [...this.procs.values()].map((p) => p.stateEntry());
    sink.sendEvent('proc.state', { processes } satisfies ProcStateEvent);
    this.pump();
  }

  /** The socket is gone: stop sending. Processes keep running until their windows fill. */
  detach(): void {
    this.sink = null;
    this.clearWake();
  }

  onBinary(frame: BinaryFrame): void {
    if (frame.kind !== FrameKind.Input) {
      this.log.debug('ignoring a binary frame that is not Input', { kind: frame.kind });
      return;
    }
    const proc = this.byStreamBase.get(frame.streamId);
    if (!proc) return this.log.debug('input for an unknown process', { streamId: frame.streamId });
    proc.writeInput(frame);
  }

  onAck(streamId: number, offset: number): void {
    const entry = this.byStreamId.get(streamId);
    if (!entry) return;
    entry.sender.ack(offset);
    entry.proc.forwardAck(entry.sender);
    if (entry.proc.state === 'exited' && entry.sender.fullyAcked) entry.sender.ring.compact();
    this.pump();
  }

  list(): ProcessSummary[] {
    return [...this.procs.values()].map((p) => p.summary());
  }

  /** Session stop or remove: SIGKILL every process group and wait until each is reported gone. */
  async killAll(): Promise<void> {
    await this.kill([...this.procs.values()].filter((p) => p.running));
  }

  /** Kills everything and forgets it; the manager accepts no new process afterwards. */
  async close(): Promise<void> {
    this.closed = true;
    await this.killAll();
    this.forget();
  }

  /**
   * Agent shutdown: the processes that outlive the agent (the session daemon
   * keeps them and the output the edge has not acknowledged) are left
   * running for the next agent process, which adopts them; the others are
   * killed, their exits still sent, as close() does. Nothing more reaches
   * the data socket afterwards (an exit here would end the process at the
   * edge), and the manager accepts no new process.
   */
  async leave(): Promise<{ leftRunning: number; ended: number }> {
    this.closed = true;
    const live = [...this.procs.values()].filter((p) => p.running);
    const ending = live.filter((p) => !p.outlivesAgent);
    await this.kill(ending);
    this.forget();
    return { leftRunning: live.length - ending.length, ended: ending.length };
  }

  private async kill(live: ManagedProcess[]): Promise<void> {
    await Promise.all(
      live.map((p) => p.kill('SIGKILL').catch((err: unknown) => this.log.warn('kill failed', { processId: p.processId, error: err }))),
    );
    await Promise.all(live.map((p) => p.settle(KILL_SETTLE_MS)));
    this.pump();
    this.clearWake();
  }

  private forget(): void {
    this.done = true;
    this.detach();
    for (const proc of this.procs.values()) proc.dispose();
    this.procs.clear();
    this.byStreamId.clear();
    this.byStreamBase.clear();
    this.exitOrder.length = 0;
  }

  private get(processId: string): ManagedProcess {
    const proc = this.procs.get(processId);
    if (!proc) throw new AppError(ErrorCode.NotFound, `no process ${processId} in this session`);
    return proc;
  }

  private onStreamData(s: StreamSender): void {
    const now = this.now();
    const idle = now - s.lastDataAt >= this.batchMs;
    s.lastDataAt = now;
    if (!this.sink) return;
    if (idle || s.produced - s.sent >= this.chunkBytes) this.pump();
    else this.wake(this.batchMs);
  }

  private onProcessExited(proc: ManagedProcess): void {
    this.log.info('process exited', { processId: proc.processId, ...proc.exit });
    this.exitOrder.push(proc);
    this.pump();
    this.prune();
  }

  /** Keeps at most `maxExited` exited records, dropping the oldest settled ones first. */
  private prune(): void {
    while (this.exitOrder.length > this.maxExited) {
      let idx = this.exitOrder.findIndex((p) => p.settled);
      if (idx < 0) {
        idx = 0;
        this.log.warn('dropping an exited process the edge has not fully acknowledged', { processId: this.exitOrder[0]?.processId });
      }
      const [victim] = this.exitOrder.splice(idx, 1);
      if (!victim) return;
      this.procs.delete(victim.processId);
      this.byStreamBase.delete(victim.streamBase);
      for (const s of victim.streams) this.byStreamId.delete(s.streamId);
      victim.dispose();
    }
  }

  private pump(): void {
    const sink = this.sink;
    if (!sink || this.pumping) return;
    this.pumping = true;
    try {
      let progress = true;
      while (progress && this.sink === sink) {
        progress = false;
        for (const proc of this.procs.values()) {
          for (const s of proc.streams) {
            if (!s.hasUnsent) continue;
            if (sink.bufferedAmount > this.maxBuffered) return this.wake(SOCKET_RETRY_MS);
            const result = s.sendOne(sink);
            if (result === 'failed') return;
            if (result === 'sent') progress = true;
          }
        }
      }
    } catch (err) {
      // pump runs inside stream callbacks: a throwing sink must not take the agent down.
      this.log.error('handing output to the data socket failed', { error: err });
    } finally {
      this.pumping = false;
      if (this.sink === sink) this.sendExits(sink);
    }
  }

  private sendExits(sink: DataSink): void {
    for (const proc of this.exitOrder) {
      const event = proc.exitEvent();
      if (proc.exitSentGeneration === this.generation || !event) continue;
      if (!proc.streams.every((s) => s.drained)) continue;
      if (!sink.sendEvent('proc.exit', event)) return;
      proc.exitSentGeneration = this.generation;
    }
  }

  private wake(ms: number): void {
    const due = Date.now() + ms;
    if (this.wakeTimer && this.wakeDue <= due) return;
    this.clearWake();
    this.wakeDue = due;
    this.wakeTimer = setTimeout(() => {
      this.wakeTimer = undefined;
      this.pump();
    }, ms);
  }

  private clearWake(): void {
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    this.wakeTimer = undefined;
  }
}

function check(ok: boolean, message: string): void {
  if (!ok) throw new RangeError(`ProcessManager: ${message}`);
}
