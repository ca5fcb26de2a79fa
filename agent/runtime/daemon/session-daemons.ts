/**
 * The agent's session daemons: per session, a host folder that is mounted at
 * /run/mominai in its container (the daemon's socket lives there; it is not
 * the workspace, and no other container mounts it), the session's secret,
 * and the one authenticated connection to its daemon.
 *
 *   <workspaceBase>/.mominai/daemon.cjs        the bundle, mounted read-only
 *   <workspaceBase>/.mominai/run/<sessionId>/  → /run/mominai (0700, the container user's)
 *   <workspaceBase>/.mominai/keys/<sessionId>  the secret, the agent's alone (0600)
 *
 * The secret is written anew into the run folder before every container
 * start; the daemon reads and unlinks it before it listens, so the session's
 * own processes never see it. The agent keeps its copy under keys/, so an
 * agent that restarts can connect again. `.mominai` cannot be a user id
 * (ids start with a letter or digit), so no workspace path reaches it.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { AppError, ErrorCode } from '../../../shared/errors';
import { DAEMON_BUNDLE_PATH, DAEMON_RUN_DIR, DAEMON_SOCKET_NAME, NO_DAEMON_MARK, SECRET_FILE_NAME } from '../../daemon/protocol';
import type { Logger } from '../../logger';
import { ensureDaemonBundle } from './bundle';
import { DaemonClient } from './daemon-client';
import { daemonAdopt, daemonExec } from './daemon-exec';
import type { AdoptedProcess, ExecSpec, ProcessHandle } from '../runtime';

/** How long a first exec waits for a starting container's daemon. */
const CONNECT_WAIT_MS = 30_000;
/** Longest Unix socket path Linux accepts (sun_path is 108 bytes with its NUL). */
const MAX_SOCKET_PATH = 107;

export type ContainerState = 'running' | 'stopped' | 'missing';

export class SessionDaemons {
  private readonly root: string;
  private bundle: Promise<string | null> | undefined;
  private readonly clients = new Map<string, { containerId: string; client: DaemonClient }>();
  private readonly connecting = new Map<string, Promise<DaemonClient | null>>();

  /** `enabled`: new sessions get a daemon and commands go through it (SESSION_DAEMON); folders are kept up either way. */
  constructor(
    workspaceBase: string,
    private readonly log: Logger,
    readonly enabled: boolean,
  ) {
    this.root = path.join(workspaceBase, '.mominai');
  }

  /** Runs a command through the session's daemon; null when it has none (or cannot give the TTY asked for). */
  async exec(sessionId: string, containerId: string, spec: ExecSpec, state: () => Promise<ContainerState>): Promise<ProcessHandle | null> {
    if (!this.enabled) return null;
    const client = await this.connection(sessionId, containerId, state);
    if (!client || (spec.tty && !client.pty)) return null;
    return daemonExec(client, spec);
  }

  /**
   * What a daemon that is already listening kept running. It does not wait
   * for a daemon still starting (a container just created or started has no
   * processes yet), so a session's data socket is never held up by it.
   */
  async adopt(sessionId: string, containerId: string): Promise<AdoptedProcess[]> {
    const have = this.clients.get(sessionId);
    let client = have && have.containerId === containerId && !have.client.closed ? have.client : undefined;
    if (!client) {
      // One connection per daemon: a second one would replace (and end) the first.
      const pending = this.connecting.get(sessionId);
      const attempt = pending ?? this.tryOnce(sessionId, containerId);
      if (!pending) {
        this.connecting.set(sessionId, attempt);
        void attempt.finally(() => this.connecting.get(sessionId) === attempt && this.connecting.delete(sessionId));
      }
      client = (await attempt.catch(() => null)) ?? undefined;
    }
    return client ? daemonAdopt(client) : [];
  }

  private async tryOnce(sessionId: string, containerId: string): Promise<DaemonClient | null> {
    const secret = await fs.readFile(this.keyFile(sessionId), 'utf8').catch(() => null);
    if (!secret) return null;
    const client = await this.connect(this.runDir(sessionId), Buffer.from(secret.trim(), 'hex')).catch(() => null);
    if (client) this.keep(sessionId, containerId, client);
    return client;
  }

  async procNetTcp(sessionId: string, containerId: string, state: () => Promise<ContainerState>): Promise<string | null> {
    if (!this.enabled) return null;
    const client = await this.connection(sessionId, containerId, state);
    return client ? (await client.request('ports', {})).text : null;
  }

  /** The bundle's host path, or null when it cannot be had (then sessions use docker exec). */
  ready(): Promise<string | null> {
    this.bundle ??= ensureDaemonBundle(this.root).catch((err: unknown) => {
      this.log.error('the session daemon bundle is missing; sessions use docker exec', { error: String(err) });
      return null;
    });
    return this.bundle;
  }

  private runDir(sessionId: string): string {
    return path.join(this.root, 'run', sessionId);
  }

  private keyFile(sessionId: string): string {
    return path.join(this.root, 'keys', sessionId);
  }

  /**
   * Before a container start: the run folder (owned by the container's user)
   * with a fresh secret in it. Resolves with the binds to add, or null when
   * the bundle is missing.
   */
  async prepare(sessionId: string, owner: { uid: number; gid: number } | undefined): Promise<string[] | null> {
    const bundle = await this.ready();
    if (!bundle) return null;
    this.drop(sessionId);
    const dir = this.runDir(sessionId);
    await fs.mkdir(path.join(this.root, 'keys'), { recursive: true, mode: 0o700 });
    await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    await fs.rm(path.join(dir, DAEMON_SOCKET_NAME), { force: true });
    const secret = randomBytes(32).toString('hex');
    await fs.writeFile(this.keyFile(sessionId), secret, { mode: 0o600 });
    const secretFile = path.join(dir, SECRET_FILE_NAME);
    await fs.rm(secretFile, { force: true });
    await fs.writeFile(secretFile, secret, { mode: 0o400 });
    if (owner && process.getuid?.() === 0) {
      await fs.chown(dir, owner.uid, owner.gid);
      await fs.chown(secretFile, owner.uid, owner.gid);
    } else if (owner && process.getuid?.() !== owner.uid) {
      // Not root: the container's user must still create its socket and read the secret here.
      await fs.chmod(dir, 0o777);
      await fs.chmod(secretFile, 0o444);
      this.log.warn('cannot hand the daemon folder to the container user; it is world-accessible', { sessionId });
    }
    return [`${bundle}:${DAEMON_BUNDLE_PATH}:ro`, `${dir}:${DAEMON_RUN_DIR}`];
  }

  /**
   * The connection to a session's daemon, made on first use (a starting
   * container's daemon may need a moment); null when the container has no
   * daemon (its image has no Node ≥ 18). `state` tells a stopped container
   * from a slow one.
   */
  connection(sessionId: string, containerId: string, state: () => Promise<ContainerState>): Promise<DaemonClient | null> {
    const have = this.clients.get(sessionId);
    if (have && have.containerId === containerId && !have.client.closed) return Promise.resolve(have.client);
    const pending = this.connecting.get(sessionId);
    // A single attempt (adopt) that found no daemon yet is followed by a patient one.
    if (pending) return pending.then((c) => c ?? this.connection(sessionId, containerId, state));
    const p: Promise<DaemonClient | null> = this.dial(sessionId, containerId, state).finally(() => {
      if (this.connecting.get(sessionId) === p) this.connecting.delete(sessionId);
    });
    this.connecting.set(sessionId, p);
    return p;
  }

  private async dial(sessionId: string, containerId: string, state: () => Promise<ContainerState>): Promise<DaemonClient | null> {
    const dir = this.runDir(sessionId);
    const secret = await fs.readFile(this.keyFile(sessionId), 'utf8').then(
      (s) => Buffer.from(s.trim(), 'hex'),
      () => null,
    );
    // A container made without a daemon (SESSION_DAEMON=off then, or an agent before it) has no key.
    if (!secret || !(await exists(dir))) return null;
    const deadline = Date.now() + CONNECT_WAIT_MS;
    for (let wait = 5; ; wait = Math.min(wait * 2, 100)) {
      if (await exists(path.join(dir, NO_DAEMON_MARK))) return null;
      try {
        const client = await this.connect(dir, secret);
        this.keep(sessionId, containerId, client);
        return client;
      } catch (err) {
        // A socket that refuses belongs to a daemon that died; one not there yet, to one still starting.
        const refused = (err as NodeJS.ErrnoException).code === 'ECONNREFUSED';
        if (!refused && wait < 100 && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, wait));
          continue;
        }
        const now = await state();
        if (now === 'missing') throw new AppError(ErrorCode.NotFound, `session ${sessionId} has no container`);
        if (now !== 'running') throw new AppError(ErrorCode.Conflict, `session ${sessionId} is not running`);
        if (Date.now() > deadline) {
          this.log.warn('the session daemon does not answer; using docker exec', { sessionId, error: String(err) });
          return null;
        }
      }
      await new Promise((r) => setTimeout(r, wait));
    }
  }

  private keep(sessionId: string, containerId: string, client: DaemonClient): void {
    this.clients.get(sessionId)?.client.close();
    this.clients.set(sessionId, { containerId, client });
    client.whenClosed(() => {
      if (this.clients.get(sessionId)?.client === client) this.clients.delete(sessionId);
    });
  }

  private async connect(dir: string, secret: Buffer): Promise<DaemonClient> {
    const direct = path.join(dir, DAEMON_SOCKET_NAME);
    if (direct.length <= MAX_SOCKET_PATH) return DaemonClient.connect(direct, secret, this.log);
    // Too long for sun_path: reach it through an open handle on its folder.
    const handle = await fs.open(dir, 'r');
    try {
      return await DaemonClient.connect(`/proc/self/fd/${handle.fd}/${DAEMON_SOCKET_NAME}`, secret, this.log);
    } finally {
      await handle.close();
    }
  }

  /**
   * A warm-pool claim (../docker/warm-pool.ts): the slot's run folder and key
   * become the session's. The running container's bind mount follows the
   * renamed folder; a symlink left at the slot's path is what the engine
   * mounts at the container's next start. Safe to run again.
   */
  async adoptSlot(slot: string, sessionId: string): Promise<void> {
    const from = this.runDir(slot);
    const st = await fs.lstat(from).catch(() => undefined);
    if (!st) return; // the pooled container has no daemon
    if (st.isDirectory()) await fs.rename(from, this.runDir(sessionId));
    if (!st.isSymbolicLink()) await fs.symlink(this.runDir(sessionId), from);
    await fs.rename(this.keyFile(slot), this.keyFile(sessionId)).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
  }

  /** Disconnects from a session's daemon (its processes keep running). */
  drop(sessionId: string): void {
    this.clients.get(sessionId)?.client.close();
    this.clients.delete(sessionId);
  }

  /** The session is gone: its folder and secret too. */
  async forget(sessionId: string): Promise<void> {
    this.drop(sessionId);
    await fs.rm(this.runDir(sessionId), { recursive: true, force: true });
    await fs.rm(this.keyFile(sessionId), { force: true });
  }

  /** Agent shutdown: every connection closes; the daemons and their processes stay. */
  closeAll(): void {
    for (const id of [...this.clients.keys()]) this.drop(id);
  }
}

async function exists(p: string): Promise<boolean> {
  return fs.access(p).then(
    () => true,
    () => false,
  );
}
