/**
 * The warm pool: WARM_POOL_SIZE containers of the default image, limits and
 * network, created and started ahead of demand, so a create that asks for
 * exactly that takes one instead of waiting for `docker create` + `start`.
 *
 * A pooled container is made by the same code as a session's container
 * (DockerRuntime supplies `create`), with `/workspace` bound to an empty slot
 * folder, the labels `managed`, `agent`, `network` and `dev.mominai.pool`,
 * and no session or user label. Nothing runs in it but its keep-alive main
 * process: it has never run user code, so it holds nothing of anyone's.
 *
 * A claim makes it the session's without restarting it, using only what
 * Docker and the kernel allow on a running container:
 *  - the claim record is written first (./pool-claims.ts), because labels and
 *    the container's env cannot change;
 *  - the slot folder is renamed to the session's workspace path: a bind mount
 *    holds the directory itself, not its path, so /workspace follows the
 *    rename; a symlink is left at the slot path, because the engine mounts the
 *    configured source path again when the container is started after a stop;
 *  - the container is renamed `mominai-<sessionId>`, as a created one is named;
 *  - the session's env is given to each process at exec time.
 * Each step is idempotent, so start-up reconciliation can finish a claim an
 * agent died in the middle of. Unclaimed pooled containers found at start-up
 * are removed (a killed agent leaks none), and the pool fills again.
 */
import { randomBytes } from 'node:crypto';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type Docker from 'dockerode';
import type { Logger } from '../../logger';
import type { SessionLimits, SessionSpec } from '../runtime';
import { workspacePath } from '../workspace';
import { containerName } from './container-spec';
import { dockerMessage, isNotFound } from './docker-errors';
import { POOL_LABEL, slotPath, type ClaimRecord, type ClaimStore } from './pool-claims';

export interface PoolTemplate {
  image: string;
  limits: SessionLimits;
  network: 'internet' | 'none';
}

export interface PooledContainer {
  id: string;
  slot: string;
  imageId: string;
}

export interface WarmPoolOptions {
  docker: Docker;
  logger: Logger;
  workspaceBase: string;
  /** Containers kept started and unclaimed (0: none, and start-up only cleans up). */
  size: number;
  template: PoolTemplate;
  /** Label filters that select this agent's containers. */
  agentFilters: string[];
  claims: ClaimStore;
  /** Creates and starts one pooled container whose /workspace is the slot's folder. */
  create: (slot: string) => Promise<PooledContainer>;
  /** Runs before each claim: guards the egress policy and resolves the template's image id now. */
  beforeClaim: () => Promise<string>;
  /** Makes the slot's session-daemon folder and key the session's (renamed, as the workspace is). */
  adoptSlot?: (slot: string, sessionId: string) => Promise<void>;
  /** Removes an unclaimed slot's session-daemon folder and key. */
  forgetSlot?: (slot: string) => Promise<void>;
  /** First wait after a failed fill, doubled per failure up to a minute (default 2 s). */
  retryMs?: number;
}

export class WarmPool {
  private readonly ready: PooledContainer[] = [];
  private filling: Promise<void> | undefined;
  private closed = false;
  private failures = 0;
  private readonly log: Logger;

  constructor(private readonly opts: WarmPoolOptions) {
    this.log = opts.logger.child({ component: 'warm-pool' });
  }

  /** Started, unclaimed containers now. */
  get available(): number {
    return this.ready.length;
  }

  /**
   * Whether a create can take a pooled container: the same image, limits and
   * network (absent means the agent's default, which is the template's).
   * Env and ports need not match: env goes to each process, and ports are
   * only documentation (nothing is published), kept in the claim record.
   */
  matches(spec: SessionSpec): boolean {
    const t = this.opts.template;
    return (
      this.opts.size > 0 &&
      spec.image === t.image &&
      (spec.network ?? t.network) === t.network &&
      spec.limits.cpu === t.limits.cpu &&
      spec.limits.memoryBytes === t.limits.memoryBytes &&
      spec.limits.pids === t.limits.pids
    );
  }

  /**
   * Makes a started pooled container the session's and returns what the
   * engine said of it just before (its name is the session's now), or
   * undefined when the spec does not match or none is ready (the caller
   * then creates one as usual). The egress guard and image check run beside
   * the claim's own steps (the guard spawns iptables: most of a claim's
   * time); when either fails, the claim is undone before the answer.
   */
  async claim(spec: SessionSpec): Promise<Docker.ContainerInspectInfo | undefined> {
    if (!this.matches(spec) || this.ready.length === 0) return undefined;
    const started = Date.now();
    const check = this.opts.beforeClaim();
    check.catch(() => undefined); // awaited below
    for (;;) {
      const pooled = this.ready.shift();
      this.fill();
      if (!pooled) return undefined;
      const info = await this.opts.docker.getContainer(pooled.id).inspect().catch(() => undefined);
      if (!info?.State.Running) {
        this.log.warn('discarded a pooled container that is not running', { containerId: pooled.id.slice(0, 12) });
        await this.discard(pooled.id, pooled.slot);
        continue;
      }
      const record: ClaimRecord = {
        v: 1,
        containerId: pooled.id,
        slot: pooled.slot,
        sessionId: spec.sessionId,
        userId: spec.userId,
        ports: spec.ports,
        env: spec.env,
        claimedAt: Date.now(),
      };
      let refused: unknown;
      let steps: Promise<void> | undefined;
      try {
        steps = (async () => {
          await this.opts.claims.put(record);
          await finishClaim(this.opts.docker, this.opts.workspaceBase, record, info.Name);
          await this.opts.adoptSlot?.(pooled.slot, spec.sessionId);
        })();
        const [imageId] = await Promise.all([
          check.catch((err: unknown) => {
            refused = err;
            throw err;
          }),
          steps,
        ]);
        if (imageId !== pooled.imageId) throw new Error('the pooled container is of an older image');
        this.log.info('session container claimed from the warm pool', { sessionId: spec.sessionId, containerId: pooled.id.slice(0, 12), ms: Date.now() - started, available: this.ready.length });
        return info;
      } catch (err) {
        this.log.warn('claiming a pooled container failed; undone', { sessionId: spec.sessionId, error: dockerMessage(err) });
        await steps?.catch(() => undefined); // undo only once every step has settled
        await this.opts.claims.release(record).catch(() => undefined);
        // The slot folder may already sit at the workspace path: it is empty (nothing ran), so rmdir takes only that.
        await fsp.rmdir(workspacePath(this.opts.workspaceBase, spec.userId, spec.sessionId)).catch(() => undefined);
        await this.discard(pooled.id, pooled.slot);
        // The guard's refusal (no egress policy in production) refuses the create, as it would a normal one.
        if (refused !== undefined) throw refused;
        return undefined;
      }
    }
  }

  /**
   * At agent start: finishes claims an agent died during, forgets claims
   * whose container is gone, removes every unclaimed pooled container and
   * slot folder of this agent (they were made by an agent that no longer
   * knows them), then starts filling.
   */
  async reconcile(): Promise<void> {
    const { docker, claims, workspaceBase } = this.opts;
    const pooled = await docker.listContainers({ all: true, filters: { label: [...this.opts.agentFilters, POOL_LABEL] } });
    const alive = new Set(pooled.map((c) => c.Id));
    let removed = 0;
    for (const c of pooled) {
      const record = claims.byContainer(c.Id);
      if (record) {
        await finishClaim(docker, workspaceBase, record)
          .then(() => this.opts.adoptSlot?.(record.slot, record.sessionId))
          .catch((err: unknown) =>
          this.log.error('could not finish a pool claim found at start', { sessionId: record.sessionId, error: dockerMessage(err) }),
        );
        continue;
      }
      await this.discard(c.Id, c.Labels[POOL_LABEL] ?? '');
      removed += 1;
    }
    for (const record of claims.all()) if (!alive.has(record.containerId)) await claims.release(record);
    const slots = path.dirname(slotPath(workspaceBase, 'x'));
    for (const name of await fsp.readdir(slots).catch(() => [] as string[])) {
      const st = await fsp.lstat(path.join(slots, name)).catch(() => undefined);
      // A real folder is an unclaimed slot (never used); a symlink belongs to a claim unless no record names it.
      if (st?.isDirectory() || (st?.isSymbolicLink() && !claims.all().some((r) => r.slot === name))) {
        await fsp.rm(path.join(slots, name), { recursive: true, force: true });
        await this.opts.forgetSlot?.(name).catch(() => undefined);
      }
    }
    this.log.info('warm pool reconciled', { removedUnclaimed: removed, claimed: claims.all().length, size: this.opts.size });
    this.fill();
  }

  /** Tops the pool up in the background, one container at a time; resolves when it is full or closed. */
  fill(): Promise<void> {
    if (this.closed || this.opts.size === 0) return Promise.resolve();
    this.filling ??= this.fillLoop().finally(() => (this.filling = undefined));
    return this.filling;
  }

  private async fillLoop(): Promise<void> {
    while (!this.closed && this.ready.length < this.opts.size) {
      const slot = `pool-${randomBytes(8).toString('hex')}`;
      const started = Date.now();
      try {
        const pooled = await this.opts.create(slot);
        if (this.closed) {
          await this.discard(pooled.id, slot);
          return;
        }
        this.ready.push(pooled);
        this.failures = 0;
        this.log.debug('pooled container started', { containerId: pooled.id.slice(0, 12), ms: Date.now() - started, available: this.ready.length });
      } catch (err) {
        await fsp.rm(slotPath(this.opts.workspaceBase, slot), { recursive: true, force: true }).catch(() => undefined);
        this.failures += 1;
        const wait = Math.min((this.opts.retryMs ?? 2000) * 2 ** (this.failures - 1), 60_000);
        this.log.warn('could not start a pooled container; retrying', { error: dockerMessage(err), retryInMs: wait });
        await new Promise((r) => setTimeout(r, wait).unref());
      }
    }
    if (!this.closed) this.log.info('warm pool full', { size: this.opts.size });
  }

  /** Stops filling and removes the unclaimed containers (claimed ones are sessions now). */
  async close(): Promise<void> {
    this.closed = true;
    await this.filling;
    const left = this.ready.splice(0);
    await Promise.all(left.map((p) => this.discard(p.id, p.slot)));
  }

  private async discard(containerId: string, slot: string): Promise<void> {
    try {
      await this.opts.docker.getContainer(containerId).remove({ force: true, v: true });
    } catch (err) {
      if (!isNotFound(err)) this.log.warn('could not remove a pooled container', { containerId: containerId.slice(0, 12), error: dockerMessage(err) });
    }
    if (!slot) return;
    await fsp.rm(slotPath(this.opts.workspaceBase, slot), { recursive: true, force: true }).catch(() => undefined);
    await this.opts.forgetSlot?.(slot).catch(() => undefined);
  }
}

/**
 * The claim's steps after its record: the slot folder becomes the session's
 * workspace (a symlink left at the slot path), and the container gets the
 * session's name. Safe to run again at any point.
 */
export async function finishClaim(docker: Docker, workspaceBase: string, record: ClaimRecord, currentName?: string): Promise<void> {
  const workspace = workspacePath(workspaceBase, record.userId, record.sessionId);
  const slot = slotPath(workspaceBase, record.slot);
  for (const dir of [workspaceBase, path.dirname(workspace)]) {
    await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
    await fsp.chmod(dir, 0o700);
  }
  const st = await fsp.lstat(slot).catch(() => undefined);
  if (st?.isDirectory()) {
    // rename(2) onto an existing empty folder would succeed silently: never take a folder someone has.
    if (await fsp.lstat(workspace).then(() => true, () => false)) throw new Error(`the workspace ${workspace} exists already`);
    await fsp.rename(slot, workspace);
  }
  if (!st?.isSymbolicLink()) await fsp.symlink(workspace, slot);
  const container = docker.getContainer(record.containerId);
  const name = containerName(record.sessionId);
  if ((currentName ?? (await container.inspect()).Name) !== `/${name}`) await container.rename({ name });
}
