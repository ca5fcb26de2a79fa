/**
 * The daemon's processes: each spawned as the container's user in a session
 * (and process group) of its own, its output streams kept in rings addressed
 * by byte offset, its exit kept until the agent has every byte of it.
 *
 *   running ──(exit + pipes closed, or 1 s grace)──▶ exited ──(fully acked, 60 s)──▶ dropped
 *
 * A ring keeps every byte the edge has not acknowledged (the agent forwards
 * the edge's acks) plus KEEP_BYTES more; a stream with UNACKED_LIMIT bytes
 * unacknowledged stops reading its pipe, so the process blocks instead of
 * the daemon's memory growing (the agent pauses at a lower mark, its window).
 * PTY commands run under `script`, which holds the PTY's master side.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import type { Readable } from 'node:stream';
import { OutputRing } from '../services/processes/output-ring';
import type { DaemonStream, ProcessEntry, ProcessTag, SpawnParams } from './protocol';
import { EXEC_MARKER, killTree, oomKills, ptySlave, resizePty, shellQuote } from './proc-tools';

const KEEP_BYTES = 64 * 1024;
/** Above the agent's window (4 MiB) plus its pause slack (1 MiB): the agent pauses first. */
const UNACKED_LIMIT = 6 * 1024 * 1024;
const EXIT_GRACE_MS = 1_000;
const DROP_AFTER_MS = 60_000;
const MAX_EXITED = 200;

export interface StreamState {
  name: DaemonStream;
  ring: OutputRing;
  source: Readable | null;
  acked: number;
  /** Next offset to send on the current connection; undefined while not attached. */
  sent: number | undefined;
  ended: boolean;
  paused: boolean;
}

export interface ExitState {
  exitCode: number | null;
  signal?: string;
  reason: 'exit' | 'killed' | 'oom';
}

export class DaemonProcess {
  readonly startedAt = Date.now();
  readonly streams: StreamState[];
  exit: ExitState | undefined;
  /** The exit event went out on the current connection. */
  exitSent = false;
  /** The agent has this process's ref (its spawn was answered): only then may its frames go. */
  announced = true;
  killSignal: string | undefined;
  dropTimer: NodeJS.Timeout | undefined;
  child: ChildProcess | null = null;
  private readonly marker = randomBytes(8).toString('hex');
  private readonly oomBefore = oomKills();

  constructor(
    readonly ref: number,
    readonly tty: boolean,
    readonly tag: ProcessTag | undefined,
  ) {
    const names: DaemonStream[] = tty ? ['pty'] : ['stdout', 'stderr'];
    this.streams = names.map((name) => ({ name, ring: new OutputRing(KEEP_BYTES), source: null, acked: 0, sent: undefined, ended: false, paused: false }));
  }

  get markerValue(): string {
    return this.marker;
  }

  stream(name: string): StreamState | undefined {
    return this.streams.find((s) => s.name === name);
  }

  /** Everything produced was sent on this connection (and the exit may go). */
  get allSent(): boolean {
    return this.streams.every((s) => s.ended && s.sent !== undefined && s.sent >= s.ring.end);
  }

  get fullyAcked(): boolean {
    return this.exit !== undefined && this.streams.every((s) => s.ended && s.acked >= s.ring.end);
  }

  entry(): ProcessEntry {
    const streams: ProcessEntry['streams'] = {};
    for (const s of this.streams) streams[s.name] = { start: s.ring.start, end: s.ring.end, acked: Math.max(s.acked, s.ring.start) };
    const e: ProcessEntry = { ref: this.ref, tty: this.tty, startedAt: this.startedAt, streams, ...(this.tag ? { tag: this.tag } : {}) };
    if (this.exit) e.exit = { ...this.exit, ends: this.ends() } as ProcessEntry['exit'];
    return e;
  }

  ends(): Partial<Record<DaemonStream, number>> {
    const out: Partial<Record<DaemonStream, number>> = {};
    for (const s of this.streams) out[s.name] = s.ring.end;
    return out;
  }

  kill(signals: NodeJS.Signals[]): void {
    if (this.exit || !this.child?.pid) return;
    this.killSignal = signals[signals.length - 1];
    killTree(this.child.pid, this.marker, signals);
  }

  async resize(cols: number, rows: number): Promise<void> {
    if (!this.tty || this.exit || !this.child?.pid) return;
    const slave = ptySlave(this.child.pid, this.marker);
    if (slave) await resizePty(slave, cols, rows);
  }

  /** The exit, with the reason the agent reports: our kill, an OOM kill, or its own end. */
  exitFrom(code: number | null, signal: NodeJS.Signals | null): ExitState {
    const exitCode = code ?? (signal ? 128 + (os.constants.signals[signal] ?? 0) : null);
    if (this.killSignal) return { exitCode, signal: this.killSignal, reason: 'killed' };
    if ((signal === 'SIGKILL' || exitCode === 137) && oomKills() > this.oomBefore) return { exitCode, signal: 'SIGKILL', reason: 'oom' };
    return { exitCode, reason: 'exit' };
  }
}

export interface TableHooks {
  /** New bytes or a new end on a stream, or the process finished: send what may go. */
  flush(proc: DaemonProcess): void;
}

export class ProcessTable {
  readonly procs = new Map<number, DaemonProcess>();
  private nextRef = 1;
  private readonly exited: DaemonProcess[] = [];

  constructor(
    private readonly hooks: TableHooks,
    private readonly ptyProgram: string | undefined,
  ) {}

  spawn(p: SpawnParams): DaemonProcess {
    const ref = this.nextRef++;
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('MOMINAI_')) env[k] = v;
    Object.assign(env, p.env);
    if (p.tty && !env.TERM) env.TERM = 'xterm-256color';
    if (!fs.existsSync(p.cwd)) return this.failed(ref, p, 126, `cannot change to ${p.cwd}: no such directory\n`);
    const tty = p.tty && this.ptyProgram !== undefined;
    let command = p.argv[0]!;
    let args = p.argv.slice(1);
    if (tty) {
      const size = p.cols && p.rows ? `stty cols ${p.cols} rows ${p.rows} 2>/dev/null; ` : '';
      command = this.ptyProgram!;
      args = ['-qefc', `${size}exec ${shellQuote(p.argv)}`, '/dev/null'];
    }
    const real = new DaemonProcess(ref, tty, p.tag);
    env[EXEC_MARKER] = real.markerValue;
    const child = spawn(command, args, { cwd: p.cwd, env, detached: true, stdio: ['pipe', 'pipe', tty ? 'ignore' : 'pipe'] });
    real.child = child;
    this.procs.set(ref, real);
    real.streams[0]!.source = child.stdout;
    if (!tty) real.streams[1]!.source = child.stderr;
    for (const s of real.streams) this.read(real, s);
    child.stdin?.on('error', () => undefined);
    let exitInfo: ExitState | undefined;
    let graceTimer: NodeJS.Timeout | undefined;
    const finish = () => {
      if (!exitInfo || real.exit) return;
      if (graceTimer) clearTimeout(graceTimer);
      for (const s of real.streams) this.endStream(real, s);
      real.exit = exitInfo;
      this.exited.push(real);
      this.prune();
      this.hooks.flush(real);
    };
    child.once('error', (err: NodeJS.ErrnoException) => {
      if (child.pid !== undefined || exitInfo) return;
      // Never started: like a shell, say so on stderr and exit 127.
      const msg = Buffer.from(`${p.argv[0]}: ${err.code === 'ENOENT' ? 'command not found' : err.message}\n`);
      (real.stream('stderr') ?? real.streams[0]!).ring.append(msg);
      exitInfo = { exitCode: err.code === 'ENOENT' ? 127 : 126, reason: 'exit' };
      for (const s of real.streams) s.ended = true;
      finish();
    });
    child.once('exit', (code, signal) => {
      if (real.exit) return;
      exitInfo = real.exitFrom(code, signal);
      if (real.streams.every((s) => s.ended)) return finish();
      // A child left behind may hold the pipes: read what is there, then stop waiting.
      graceTimer = setTimeout(finish, EXIT_GRACE_MS);
    });
    child.once('close', () => finish());
    return real;
  }

  get(ref: number): DaemonProcess | undefined {
    return this.procs.get(ref);
  }

  ack(proc: DaemonProcess, s: StreamState, offset: number): void {
    const off = Math.min(offset, s.ring.end);
    if (off <= s.acked) return;
    s.acked = off;
    s.ring.release(off);
    if (s.paused && s.ring.end - s.acked <= UNACKED_LIMIT / 2) {
      s.paused = false;
      s.source?.resume();
    }
    if (proc.fullyAcked && proc.exitSent && !proc.dropTimer) {
      proc.dropTimer = setTimeout(() => this.drop(proc), DROP_AFTER_MS);
      proc.dropTimer.unref();
    }
  }

  /** The agent connection went away: nothing is attached any more. */
  detachAll(): void {
    for (const proc of this.procs.values()) {
      proc.exitSent = false;
      for (const s of proc.streams) s.sent = undefined;
    }
  }

  private read(proc: DaemonProcess, s: StreamState): void {
    const src = s.source;
    if (!src) {
      s.ended = true;
      return;
    }
    src.on('data', (chunk: Buffer) => {
      if (s.ended) return;
      s.ring.append(chunk);
      if (!s.paused && s.ring.end - s.acked > UNACKED_LIMIT) {
        s.paused = true;
        src.pause();
      }
      this.hooks.flush(proc);
    });
    const end = () => {
      if (s.ended) return;
      s.ended = true;
      this.hooks.flush(proc);
    };
    src.once('end', end);
    src.once('close', end);
    src.on('error', end);
  }

  private endStream(_proc: DaemonProcess, s: StreamState): void {
    if (s.ended) return;
    s.ended = true;
    s.source?.destroy();
  }

  private failed(ref: number, p: SpawnParams, code: number, message: string): DaemonProcess {
    const proc = new DaemonProcess(ref, p.tty && this.ptyProgram !== undefined, p.tag);
    (proc.stream('stderr') ?? proc.streams[0]!).ring.append(Buffer.from(message));
    for (const s of proc.streams) s.ended = true;
    proc.exit = { exitCode: code, reason: 'exit' };
    this.procs.set(ref, proc);
    this.exited.push(proc);
    this.prune();
    // After the spawn's answer, which the caller writes first.
    setImmediate(() => this.hooks.flush(proc));
    return proc;
  }

  private drop(proc: DaemonProcess): void {
    this.procs.delete(proc.ref);
    const i = this.exited.indexOf(proc);
    if (i >= 0) this.exited.splice(i, 1);
  }

  private prune(): void {
    while (this.exited.length > MAX_EXITED) {
      const old = this.exited.shift()!;
      if (old.dropTimer) clearTimeout(old.dropTimer);
      this.procs.delete(old.ref);
    }
  }
}
