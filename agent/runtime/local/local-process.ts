/**
 * A command run as a child of the agent, in its own process group (and
 * session), so a kill reaches everything it started.
 *
 * A TTY comes from util-linux `script`, which runs the command on a fresh
 * pseudo-terminal and copies it to our pipes. The initial size is set with
 * `stty` before the command starts; later resizes are best-effort: the agent
 * finds the PTY through /proc and runs `stty -F` on it, which makes the
 * kernel send SIGWINCH to the foreground job. Where that fails the size
 * stays, and nothing else breaks.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import { PassThrough, type Readable } from 'node:stream';
import type { Logger } from '../../logger';
import type { ExecSpec, ExitInfo, ProcessHandle } from '../runtime';
import { shellSignal, signalsFor } from '../signals';
import { killTree, readProcesses } from './proc';

export interface LocalSpawnOptions {
  spec: ExecSpec;
  cwd: string;
  env: Record<string, string>;
  /** util-linux `script`, required for a TTY. */
  scriptPath: string | null;
  logger: Logger;
}

/** Quotes one argument for sh. */
export function shellQuote(arg: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

export class LocalProcess implements ProcessHandle {
  readonly stdout: Readable;
  readonly stderr: Readable | null;
  readonly tty: boolean;
  readonly exited: Promise<ExitInfo>;
  private readonly child: ChildProcess;
  private readonly out: PassThrough;
  private readonly err: PassThrough | null;
  private killSignal: NodeJS.Signals | undefined;
  private lost = false;
  private done = false;

  constructor(private readonly opts: LocalSpawnOptions) {
    const { spec, cwd, env, scriptPath, logger } = opts;
    this.tty = spec.tty === true;
    let file = spec.command[0] ?? '';
    let args = spec.command.slice(1);
    if (this.tty && scriptPath) {
      const size = spec.cols && spec.rows ? `stty rows ${Math.floor(spec.rows)} cols ${Math.floor(spec.cols)} 2>/dev/null; ` : '';
      file = scriptPath;
      args = ['-qfec', `${size}exec ${spec.command.map(shellQuote).join(' ')}`, '/dev/null'];
      env.SHELL = '/bin/sh';
      env.TERM ??= 'xterm-256color';
    }
    this.child = spawn(file, args, { cwd, env, detached: true, stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stdin?.on('error', () => undefined);
    const out = new PassThrough();
    const err = this.tty ? null : new PassThrough();
    this.child.stdout?.pipe(out);
    if (err) this.child.stderr?.pipe(err);
    else this.child.stderr?.on('data', (d: Buffer) => logger.debug('script stderr', { text: d.toString().slice(0, 500) }));
    this.stdout = this.out = out;
    this.stderr = this.err = err;
    this.exited = new Promise<ExitInfo>((resolve) => {
      this.child.once('error', (e: NodeJS.ErrnoException) => {
        if (this.child.pid !== undefined) return;
        // Nothing ran: answer as a shell would, on stderr and with 127.
        (err ?? out).write(`${file}: ${e.code === 'ENOENT' ? 'command not found' : e.message}\n`);
        out.end();
        err?.end();
        resolve({ exitCode: 127, reason: 'exit' });
      });
      this.child.once('exit', (code, signal) => {
        void this.settle().then(() => resolve(this.exitInfo(code, signal)));
      });
    }).then((info) => {
      this.done = true;
      return info;
    });
  }

  /**
   * Waits until the output pipes are read to the end. A background child that
   * inherited them may hold them open forever: once the pipes have been idle
   * (nothing buffered, reader not pushing back) for 2 s after the exit, as
   * `docker exec` does, they are closed.
   */
  private async settle(): Promise<void> {
    const pipes = [this.child.stdout, this.child.stderr].filter((s): s is Readable => s !== null);
    const open = () => pipes.filter((s) => !s.readableEnded && !s.destroyed);
    let idleSince = Date.now();
    while (open().length > 0) {
      await new Promise((r) => setTimeout(r, 25));
      const busy = open().some((s) => s.readableLength > 0 || s.readableFlowing === false);
      if (busy) idleSince = Date.now();
      else if (Date.now() - idleSince >= 2000) break;
    }
    for (const s of open()) s.destroy();
    if (!this.out.writableEnded) this.out.end();
    if (this.err && !this.err.writableEnded) this.err.end();
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  write(data: Uint8Array | string): void {
    const stdin = this.child.stdin;
    if (stdin && !stdin.destroyed && !stdin.writableEnded) stdin.write(data);
  }

  closeStdin(): void {
    this.child.stdin?.end();
  }

  async resize(cols: number, rows: number): Promise<void> {
    const pid = this.child.pid;
    if (!this.tty || this.done || pid === undefined) return;
    const inner = readProcesses().find((p) => p.ppid === pid);
    let tty: string;
    try {
      tty = inner ? fs.readlinkSync(`/proc/${inner.pid}/fd/0`) : '';
    } catch {
      tty = '';
    }
    if (!tty.startsWith('/dev/pts/')) {
      this.opts.logger.debug('local resize skipped: no pty found', { pid });
      return;
    }
    await new Promise<void>((resolve) => {
      const p = spawn('stty', ['-F', tty, 'rows', String(Math.floor(rows)), 'cols', String(Math.floor(cols))], { stdio: 'ignore' });
      p.once('error', () => resolve());
      p.once('exit', () => resolve());
    });
  }

  async kill(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    shellSignal(signal);
    const pid = this.child.pid;
    if (this.done || pid === undefined) return;
    this.killSignal ??= signal;
    killTree(pid, signalsFor(signal, this.tty));
  }

  /** The session stopped or went away under this process: its end is reported as `lost`. */
  markLost(): void {
    this.lost = true;
  }

  private exitInfo(code: number | null, signal: NodeJS.Signals | null): ExitInfo {
    const exitCode = code ?? (signal ? 128 + (os.constants.signals[signal] ?? 0) : null);
    if (this.lost) return { exitCode, reason: 'lost' };
    if (this.killSignal) return { exitCode, signal: this.killSignal, reason: 'killed' };
    return signal ? { exitCode, signal, reason: 'exit' } : { exitCode, reason: 'exit' };
  }
}
