/**
 * A process in a session container: `docker exec` with stdin attached over a
 * hijacked connection. Without a TTY the output is demultiplexed into stdout
 * and stderr (with backpressure); with one, the single stream is the PTY.
 * The exit code comes from the exec's inspect after the stream ends, and the
 * reason from what we know: our own kill, the container gone, an OOM event.
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { PassThrough, type Duplex, type Readable } from 'node:stream';
import type Docker from 'dockerode';
import { AppError, ErrorCode } from '../../../shared/errors';
import type { Logger } from '../../logger';
import type { ExecSpec, ExitInfo, ProcessHandle } from '../runtime';
import { WORKSPACE_MOUNT } from './container-spec';
import { Demultiplexer } from './demux';
import { dockerMessage, isConflict, isNotFound } from './docker-errors';
import type { DockerEvents } from './events';
import { shellSignal, signalsFor } from '../signals';
import { EXEC_MARKER, killCommand } from './exec-kill';

export interface DockerExecContext {
  docker: Docker;
  containerId: string;
  sessionId: string;
  events: DockerEvents;
  logger: Logger;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function startDockerExec(ctx: DockerExecContext, spec: ExecSpec): Promise<ProcessHandle> {
  if (spec.command.length === 0) throw new AppError(ErrorCode.ValidationFailed, 'command must not be empty');
  const tty = spec.tty === true;
  const execId = randomBytes(9).toString('hex');
  const env = Object.entries(spec.env ?? {})
    .filter(([k]) => k !== EXEC_MARKER)
    .map(([k, v]) => `${k}=${v}`);
  if (tty && !spec.env?.TERM) env.push('TERM=xterm-256color');
  env.push(`${EXEC_MARKER}=${execId}`);
  const container = ctx.docker.getContainer(ctx.containerId);
  const before = { oom: ctx.events.count(ctx.containerId, 'oom'), die: ctx.events.count(ctx.containerId, 'die') };
  let exec: Docker.Exec;
  let socket: Duplex;
  try {
    exec = await container.exec({
      Cmd: spec.command,
      AttachStdin: true,
      AttachStdout: true,
      AttachStderr: true,
      Tty: tty,
      Env: env,
      WorkingDir: path.posix.resolve(WORKSPACE_MOUNT, spec.cwd ?? '.'),
    });
    socket = (await exec.start({ hijack: true, stdin: true, Tty: tty })) as Duplex;
  } catch (err) {
    if (isNotFound(err)) throw new AppError(ErrorCode.NotFound, `session ${ctx.sessionId} has no container`);
    if (isConflict(err)) throw new AppError(ErrorCode.Conflict, `session ${ctx.sessionId} is not running`);
    throw err;
  }
  const handle = new DockerProcess(ctx, exec, socket, execId, tty, before);
  if (tty && spec.cols && spec.rows) await handle.resize(spec.cols, spec.rows).catch(() => undefined);
  return handle;
}

class DockerProcess implements ProcessHandle {
  readonly stdout: Readable;
  readonly stderr: Readable | null;
  readonly exited: Promise<ExitInfo>;
  private stdinClosed = false;
  private killSignal: NodeJS.Signals | undefined;
  private done = false;
  /** The container's OOM and die event counts when this exec started. */
  private readonly oom: number;
  private readonly died: number;

  constructor(
    private readonly ctx: DockerExecContext,
    private readonly exec: Docker.Exec,
    private readonly socket: Duplex,
    private readonly execId: string,
    readonly tty: boolean,
    before: { oom: number; die: number },
  ) {
    this.oom = before.oom;
    this.died = before.die;
    const log = ctx.logger;
    socket.on('error', (err) => log.debug('exec stream error', { execId, error: err }));
    if (tty) {
      const out = new PassThrough();
      socket.pipe(out);
      this.stdout = out;
      this.stderr = null;
    } else {
      const demux = new Demultiplexer();
      socket.pipe(demux);
      this.stdout = demux.stdout;
      this.stderr = demux.stderr;
    }
    const ended = new Promise<void>((resolve) => {
      socket.once('close', () => resolve());
      socket.once('end', () => resolve());
    });
    this.exited = ended.then(() => this.finish());
    void this.exited.then((info) => {
      this.done = true;
      log.debug('exec exited', { execId, ...info });
    });
  }

  write(data: Uint8Array | string): void {
    if (this.stdinClosed || this.socket.destroyed) return;
    this.socket.write(data);
  }

  closeStdin(): void {
    if (this.stdinClosed) return;
    this.stdinClosed = true;
    // Half-close: the engine closes the process's stdin and keeps sending output.
    if (!this.socket.destroyed) this.socket.end();
  }

  async resize(cols: number, rows: number): Promise<void> {
    if (!this.tty || this.done) return;
    try {
      await this.exec.resize({ w: Math.max(1, Math.floor(cols)), h: Math.max(1, Math.floor(rows)) });
    } catch (err) {
      // The process may have ended between our check and the call.
      this.ctx.logger.debug('exec resize failed', { execId: this.execId, error: dockerMessage(err) });
    }
  }

  async kill(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    shellSignal(signal);
    if (this.done) return;
    this.killSignal = signal;
    const { docker, containerId, logger } = this.ctx;
    try {
      const killer = await docker.getContainer(containerId).exec({
        Cmd: killCommand(this.execId, signalsFor(signal, this.tty)),
        AttachStdout: true,
        AttachStderr: true,
      });
      const out = (await killer.start({ hijack: false, stdin: false })) as Readable;
      out.resume();
      await new Promise<void>((resolve) => {
        out.once('end', resolve);
        out.once('close', resolve);
        out.once('error', () => resolve());
      });
      logger.debug('exec killed', { execId: this.execId, signal });
    } catch (err) {
      // The container went away: the process went with it.
      if (isNotFound(err) || isConflict(err)) return;
      throw err;
    }
  }

  private async finish(): Promise<ExitInfo> {
    let exitCode: number | null = null;
    try {
      for (let i = 0; i < 100; i++) {
        const info = await this.exec.inspect();
        exitCode = info.ExitCode;
        if (!info.Running) break;
        await sleep(20);
      }
    } catch (err) {
      if (!isNotFound(err)) this.ctx.logger.warn('exec inspect failed', { execId: this.execId, error: dockerMessage(err) });
      return { exitCode: null, reason: 'lost' };
    }
    if (this.killSignal) {
      return (await this.containerRunning()) ? { exitCode, signal: this.killSignal, reason: 'killed' } : { exitCode, reason: 'lost' };
    }
    // A process that ended on its own needs no further look. One killed by a signal
    // (status 128+n), or that never started (126, 127: runc could not exec it), may
    // have died with its container or of an OOM kill, and the engine's events for
    // those can trail the exec's end by a few milliseconds.
    const { events, containerId } = this.ctx;
    const died = () => events.count(containerId, 'die') > this.died;
    if (exitCode === null || exitCode >= 126) {
      const news = () => died() || events.count(containerId, 'oom') > this.oom;
      for (let i = 0; i < 5 && !news(); i++) await sleep(40);
      if (died() || !(await this.containerRunning())) return { exitCode, reason: 'lost' };
      if (events.count(containerId, 'oom') > this.oom) return { exitCode, signal: 'SIGKILL', reason: 'oom' };
    } else if (died()) {
      return { exitCode, reason: 'lost' };
    }
    return { exitCode, reason: 'exit' };
  }

  private async containerRunning(): Promise<boolean> {
    try {
      const info = await this.ctx.docker.getContainer(this.ctx.containerId).inspect();
      return info.State.Running;
    } catch {
      return false;
    }
  }
}
