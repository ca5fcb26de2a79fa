/**
 * Commands, terminals and processes for one session, on the edge side: turns
 * client frames into agent requests over the session's data socket, turns the
 * agent's output frames and exit events into client frames (via
 * ./output-fanout.ts), acknowledges output to the agent, and keeps the history.
 */
import { AppError, ErrorCode } from '../../shared/errors';
import type { ExecBody, ExecResult } from '../../shared/api/containers';
import { encodeBinaryFrame, FrameKind, type BinaryFrame } from '../../shared/protocol/binary';
import {
  AckPayload,
  ContainerCommandPayload,
  ExecCommandPayload,
  HistoryPayload,
  KillPayload,
  OpenTerminalPayload,
  ResizePayload,
  ResumePayload,
  StdinPayload,
} from '../../shared/protocol/client';
import { ExitReasonSchema, StreamIndex, STREAMS_PER_PROCESS, type ProcExitEvent, type ProcSpawnParams, type StreamName } from '../../shared/protocol/session-data';
import { joinBytes } from '../../shared/bytes';
import { callSession, type RawSessionLink, type SessionEvent, type SessionEventSender } from '../../shared/protocol/session-channel';
import { newId } from '../../shared/ids';
import { log } from '../log';
import { JOURNAL_BYTES, OutputFanout, TAIL_BYTES } from './output-fanout';
import { StreamJournal } from './journal';
import { OutputAcks } from './output-acks';
import type { ProcessRow, ProcessStorePort } from './process-store';
import { JournalStore } from './journal-store';
import type { ClientStore } from './client-store';
import { parsePayload } from './payload';
import { decodeText } from './encoding';

/** The agent's data socket: typed calls go through callSession (../../shared/protocol/session-channel.ts). */
export interface AgentLink extends RawSessionLink, SessionEventSender {
  sendBinary(bytes: Uint8Array): boolean;
}

export interface RelayDeps {
  store: ProcessStorePort;
  agent(): Promise<AgentLink>;
  clients(): WebSocket[];
  send(ws: WebSocket, frame: { type: string; id?: string | number; payload: unknown }): void;
  sendBinary(ws: WebSocket, bytes: Uint8Array): void;
  /** A client socket's id and output format, from its attachment. */
  socketInfo(ws: WebSocket): { sid: string; binary: boolean } | undefined;
  /** Per-socket follows and acked offsets, kept for a wake from hibernation. */
  clientStore: ClientStore;
}

const streamNames: StreamName[] = ['stdout', 'stderr', 'pty'];
/** What `POST …/exec` returns of each stream at most (its last bytes). */
const EXEC_OUTPUT_BYTES = 1024 * 1024;
const TERMINAL_SHELL = 'if command -v bash >/dev/null 2>&1; then exec bash -i; else exec sh -i; fi';

export class ProcessRelay {
  readonly fanout: OutputFanout;
  private readonly rows = new Map<string, ProcessRow>();
  private readonly byStream = new Map<number, { processId: string; stream: StreamName }>();
  private readonly exits = new Map<string, ProcExitEvent>();
  private readonly exitWaiters = new Map<string, Array<(e: ProcExitEvent) => void>>();
  private readonly stored: JournalStore;
  private readonly acks: OutputAcks;
  /** Processes whose proc.spawn has not been answered: a proc.state sent before the agent took it cannot list them. */
  private readonly spawning = new Set<string>();

  constructor(private readonly deps: RelayDeps) {
    this.stored = new JournalStore(deps.store, JOURNAL_BYTES);
    this.fanout = new OutputFanout({
      send: deps.send,
      sendBinary: deps.sendBinary,
      clients: deps.clients,
      socketInfo: deps.socketInfo,
      store: deps.clientStore,
      backing: (processId, stream) => this.stored.backing(processId, stream),
      streamIdOf: (id, stream) => {
        const row = this.row(id);
        if (!row) throw new Error(`no such process ${id}`);
        return row.streamBase + StreamIndex[stream];
      },
      // Chunks are written to storage behind the flow (./output-acks.ts), not as they arrive.
      onGap: (processId, stream, offset) => this.stored.restartAt(processId, stream, offset),
      exitOf: (id) => this.exits.get(id) ?? this.storedExit(id),
      streamsOf: (id) => {
        const row = this.row(id);
        return row ? (row.tty ? ['pty'] : ['stdout', 'stderr']) : [];
      },
    });
    this.acks = new OutputAcks({ agent: deps.agent, fanout: this.fanout, stored: this.stored, streams: () => this.byStream });
  }

  private row(id: string): ProcessRow | undefined {
    let r = this.rows.get(id);
    if (!r) {
      r = this.deps.store.get(id);
      if (r) this.remember(r);
    }
    return r;
  }

  private remember(r: ProcessRow): void {
    this.rows.set(r.id, r);
    for (const s of streamNames) this.byStream.set(r.streamBase + StreamIndex[s], { processId: r.id, stream: s });
  }

  private storedExit(id: string): ProcExitEvent | undefined {
    const r = this.row(id);
    if (!r || r.endedAt === null || !r.endOffsets) return undefined;
    return { processId: id, exitCode: r.exitCode, ...(r.signal ? { signal: r.signal } : {}), reason: ExitReasonSchema.catch('lost').parse(r.reason ?? 'exit'), endOffsets: r.endOffsets };
  }

  /** Handles a client frame if it is one of ours; false otherwise. */
  async handleClient(ws: WebSocket, type: string, id: string | number | undefined, payload: unknown): Promise<boolean> {
    const reply = (t: string, p: unknown) => this.deps.send(ws, { type: t, ...(id !== undefined ? { id } : {}), payload: p });
    switch (type) {
      case 'container_command': {
        const p = parsePayload(ContainerCommandPayload, payload);
        const processId = await this.spawn({ command: ['sh', '-c', p.command], display: p.command, tty: false, cwd: p.cwd, env: p.env, timeoutMs: p.timeoutMs });
        reply('process_started', { processId });
        return true;
      }
      case 'exec_command': {
        const p = parsePayload(ExecCommandPayload, payload);
        const processId = await this.spawn({
          command: [p.command, ...p.args],
          display: [p.command, ...p.args].join(' '),
          tty: p.tty,
          cwd: p.cwd,
          env: p.env,
          cols: p.cols,
          rows: p.rows,
          timeoutMs: p.timeoutMs,
        });
        reply('process_started', { processId });
        return true;
      }
      case 'open_terminal': {
        const p = parsePayload(OpenTerminalPayload, payload);
        const command = p.shell ? [p.shell] : ['sh', '-c', TERMINAL_SHELL];
        const processId = await this.spawn({ command, display: p.shell ?? 'terminal', tty: true, cwd: p.cwd, env: p.env, cols: p.cols, rows: p.rows });
        reply('process_started', { processId, tty: true });
        return true;
      }
      case 'stdin': {
        const p = parsePayload(StdinPayload, payload);
        const row = this.running(p.processId);
        const bytes = decodeText(p.data, p.encoding, 'data');
        const frame: BinaryFrame = { kind: FrameKind.Input, flags: 0, streamId: row.streamBase, offset: row.stdinOffset, payload: bytes };
        if (!(await this.deps.agent()).sendBinary(encodeBinaryFrame(frame))) throw new AppError(ErrorCode.AgentUnavailable, 'the session\'s agent is not connected');
        row.stdinOffset += bytes.byteLength;
        this.deps.store.setStdinOffset(row.id, row.stdinOffset);
        if (id !== undefined) reply('stdin_written', { processId: row.id, bytes: bytes.byteLength });
        return true;
      }
      case 'resize': {
        const p = parsePayload(ResizePayload, payload);
        this.running(p.processId);
        await callSession(await this.deps.agent(), 'proc.resize', p);
        reply('resized', { processId: p.processId, cols: p.cols, rows: p.rows });
        return true;
      }
      case 'kill': {
        const p = parsePayload(KillPayload, payload);
        this.running(p.processId);
        await callSession(await this.deps.agent(), 'proc.kill', p);
        reply('killed', { processId: p.processId, signal: p.signal ?? 'SIGTERM' });
        return true;
      }
      case 'list_processes': {
        reply('processes', { processes: this.deps.store.running().map((r) => this.describe(r)) });
        return true;
      }
      case 'history': {
        const p = parsePayload(HistoryPayload, payload ?? {});
        reply('history', { commands: this.deps.store.history(p.limit).map((r) => this.describe(r)) });
        return true;
      }
      case 'resume': {
        const p = parsePayload(ResumePayload, payload);
        const row = this.row(p.processId);
        if (!row) throw new AppError(ErrorCode.NotFound, 'no such process');
        const stream = p.stream ?? (row.tty ? 'pty' : 'stdout');
        const from: Partial<Record<StreamName, number>> = { ...p.offsets, [stream]: p.offsets?.[stream] ?? p.fromOffset };
        reply('resumed', { processId: row.id, from });
        this.fanout.subscribe(ws, row.id, from);
        return true;
      }
      case 'ack': {
        const p = parsePayload(AckPayload, payload);
        this.fanout.ack(ws, p.processId, p.stream, p.offset);
        this.acks.schedule();
        return true;
      }
      default:
        return false;
    }
  }

  private running(processId: string): ProcessRow {
    const row = this.row(processId);
    if (!row) throw new AppError(ErrorCode.NotFound, 'no such process');
    if (row.endedAt !== null || this.exits.has(processId)) throw new AppError(ErrorCode.Conflict, 'the process has exited');
    return row;
  }

  private describe(r: ProcessRow) {
    const exit = this.exits.get(r.id);
    return {
      processId: r.id,
      command: r.display,
      tty: r.tty,
      startedAt: new Date(r.startedAt).toISOString(),
      endedAt: r.endedAt ? new Date(r.endedAt).toISOString() : null,
      running: r.endedAt === null && !exit,
      exitCode: exit?.exitCode ?? r.exitCode,
      reason: exit?.reason ?? r.reason,
    };
  }

  /** Starts a process on the agent; every client connected now follows its output from the start. */
  async spawn(spec: {
    command: string[];
    display: string;
    tty: boolean;
    cwd?: string | undefined;
    env?: Record<string, string> | undefined;
    cols?: number | undefined;
    rows?: number | undefined;
    timeoutMs?: number | undefined;
  }): Promise<string> {
    const agent = await this.deps.agent();
    const row: ProcessRow = {
      id: newId('prc'),
      streamBase: this.deps.store.nextStreamBase(STREAMS_PER_PROCESS),
      command: spec.command,
      display: spec.display.slice(0, 4096),
      cwd: spec.cwd ?? null,
      tty: spec.tty,
      startedAt: Date.now(),
      endedAt: null,
      exitCode: null,
      signal: null,
      reason: null,
      stdinOffset: 0,
      endOffsets: null,
    };
    this.deps.store.insert(row);
    this.remember(row);
    this.fanout.subscribeAll(this.deps.clients(), row.id);
    const params: ProcSpawnParams = {
      processId: row.id,
      streamBase: row.streamBase,
      command: spec.command,
      tty: spec.tty,
      ...(spec.cwd ? { cwd: spec.cwd } : {}),
      ...(spec.env ? { env: spec.env } : {}),
      ...(spec.cols ? { cols: spec.cols } : {}),
      ...(spec.rows ? { rows: spec.rows } : {}),
      ...(spec.timeoutMs ? { timeoutMs: spec.timeoutMs } : {}),
    };
    this.spawning.add(row.id);
    try {
      await callSession(agent, 'proc.spawn', params);
    } catch (err) {
      this.onExit({ processId: row.id, exitCode: null, reason: 'lost', endOffsets: { stdout: 0, stderr: 0, pty: 0 } });
      throw err;
    } finally {
      this.spawning.delete(row.id);
    }
    log('debug', 'process started', { processId: row.id, command: row.display });
    return row.id;
  }

  /** A binary frame from the agent. */
  onAgentBinary(frame: BinaryFrame): void {
    if (frame.kind !== FrameKind.Output) return;
    const target = this.byStream.get(frame.streamId) ?? this.lookupStream(frame.streamId);
    if (!target) return;
    this.fanout.ingest(target.processId, target.stream, frame.offset, frame.payload);
    this.acks.schedule();
  }

  private lookupStream(streamId: number): { processId: string; stream: StreamName } | undefined {
    const base = streamId - (streamId % STREAMS_PER_PROCESS);
    for (const r of this.deps.store.running()) if (r.streamBase === base) this.remember(r);
    return this.byStream.get(streamId);
  }

  /** Process events from the agent; true when handled. */
  onEvent(e: SessionEvent): boolean {
    if (e.event === 'proc.exit') {
      this.onExit(e.data);
      return true;
    }
    if (e.event === 'proc.state') {
      const alive = new Set(e.data.processes.map((p) => p.processId));
      this.acks.reset();
      for (const r of this.deps.store.running()) {
        if (!alive.has(r.id) && !this.spawning.has(r.id)) {
          const end = (s: StreamName) => this.fanout.journals.get(OutputFanout.key(r.id, s))?.end ?? 0;
          this.onExit({ processId: r.id, exitCode: null, reason: 'lost', endOffsets: { stdout: end('stdout'), stderr: end('stderr'), pty: end('pty') } });
        }
      }
      this.acks.schedule();
      return true;
    }
    return false;
  }

  /** Resolves when the process exits (at once if it has). */
  waitExit(processId: string): Promise<ProcExitEvent> {
    const done = this.exits.get(processId) ?? this.storedExit(processId);
    if (done) return Promise.resolve(done);
    return new Promise((resolve) => {
      const list = this.exitWaiters.get(processId) ?? [];
      list.push(resolve);
      this.exitWaiters.set(processId, list);
    });
  }

  /** Runs a short command to completion (`POST …/exec`) and returns what it printed. */
  async runToCompletion(body: ExecBody): Promise<ExecResult> {
    const started = Date.now();
    const argv = body.args ? [body.command, ...body.args] : ['sh', '-c', body.command];
    const processId = await this.spawn({ command: argv, display: argv.join(' '), tty: false, cwd: body.cwd, env: body.env, timeoutMs: body.timeoutMs ?? 60_000 });
    const exit = await this.waitExit(processId);
    const stdout = this.captured(processId, 'stdout');
    const stderr = this.captured(processId, 'stderr');
    return {
      exitCode: exit.exitCode,
      ...(exit.signal ? { signal: exit.signal } : {}),
      reason: exit.reason,
      stdout: stdout.text,
      stderr: stderr.text,
      durationMs: Date.now() - started,
      truncated: stdout.truncated || stderr.truncated,
    };
  }

  /** What a stream's journal holds, decoded, and whether older bytes were dropped. */
  captured(processId: string, stream: StreamName): { text: string; truncated: boolean } {
    const j = this.fanout.journals.get(OutputFanout.key(processId, stream));
    if (!j) return { text: '', truncated: false };
    const parts: Uint8Array[] = [];
    for (let c = j.read(j.start); c; c = j.read(c.offset + c.bytes.byteLength)) parts.push(c.bytes);
    const all = joinBytes(parts);
    const keep = all.byteLength > EXEC_OUTPUT_BYTES ? all.subarray(all.byteLength - EXEC_OUTPUT_BYTES) : all;
    return { text: new TextDecoder().decode(keep), truncated: j.start > 0 || keep !== all };
  }

  /**
   * The session's container ended: every process still running ended with
   * it (`lost`, or `oom` when the kernel killed the container for memory).
   * Exits the agent already reported keep their own reason.
   */
  containerEnded(reason: 'lost' | 'oom'): void {
    for (const r of this.deps.store.running()) {
      if (this.spawning.has(r.id)) continue;
      const end = (s: StreamName) => this.fanout.journals.get(OutputFanout.key(r.id, s))?.end ?? 0;
      this.onExit({ processId: r.id, exitCode: null, reason, endOffsets: { stdout: end('stdout'), stderr: end('stderr'), pty: end('pty') } });
    }
  }

  private onExit(exit: ProcExitEvent): void {
    if (this.exits.has(exit.processId)) return;
    this.exits.set(exit.processId, exit);
    const waiters = this.exitWaiters.get(exit.processId) ?? [];
    this.exitWaiters.delete(exit.processId);
    for (const w of waiters) w(exit);
    this.deps.store.finish(exit.processId, exit, Date.now());
    // Everything of a finished process goes to storage and leaves memory; clients read it back from there.
    for (const stream of streamNames) this.fanout.journals.get(OutputFanout.key(exit.processId, stream))?.releaseMemory();
    const row = this.rows.get(exit.processId);
    if (row) Object.assign(row, { endedAt: Date.now(), exitCode: exit.exitCode, reason: exit.reason, endOffsets: exit.endOffsets });
    for (const ws of this.deps.clients()) this.fanout.pump(ws, exit.processId);
  }

  /** After a restart: every stream with stored bytes gets a journal over them (an empty tail). */
  restore(): void {
    for (const { processId, stream, end } of this.deps.store.storedStreams()) {
      this.stored.restored(processId, stream, end);
      this.fanout.journals.set(OutputFanout.key(processId, stream), StreamJournal.stored(TAIL_BYTES, end, this.stored.backing(processId, stream)));
    }
  }

  clientGone(ws: WebSocket): void {
    this.fanout.forget(ws);
  }
}
