/**
 * Runtime backed by a Docker engine through dockerode: one hardened container
 * per session (see ./container-spec.ts), found again by its labels after an
 * agent restart, with the workspace folder bind-mounted at /workspace.
 */
import type Docker from 'dockerode';
import { AppError, ErrorCode } from '../../../shared/errors';
import type { DockerStatus } from '../../../shared/protocol/tunnel';
import type { Logger } from '../../logger';
import type { AdoptedProcess, ContainerEnded, EgressState, ExecSpec, Isolation, ProcessHandle, ResourceStats, Runtime, SessionInfo, SessionLimits, SessionSpec } from '../runtime';
import { checkId, findWorkspaceOwner, prepareWorkspace, removeWorkspace, workspacePath, type PreparedWorkspace } from '../workspace';
import { containerOptions, LABEL_PREFIX, Labels } from './container-spec';
import { startDockerExec } from './docker-exec';
import { dockerMessage, isConflict, isNotFound, isNotModified } from './docker-errors';
import { EgressGuard, type EgressSettings } from './egress-guard';
import { DockerEvents } from './events';
import { checkImageAllowed } from './image-policy';
import { ImageUserResolver, type UserPolicy } from './image-user';
import { ImageStore } from './images';
import { AgentNetwork, networkName } from './network';
import { StatsSampler } from './stats-sampler';
import { SessionDaemons, type ContainerState } from '../daemon/session-daemons';
import { claimEnv, ClaimStore, ownerOf } from './pool-claims';
import { createWarmPool } from './pool-create';
import type { WarmPool } from './warm-pool';

export { LABEL_PREFIX };

export interface DockerRuntimeOptions {
  docker: Docker;
  logger: Logger;
  workspaceBase: string;
  /** The `dev.mominai.agent` label of this agent's containers; when given, list() shows only those. */
  agentId?: string;
  /** Names the agent's network (`mominai-<name>`); also the label when there is no agentId. */
  agentName?: string;
  /** Longest an image pull may take before create fails with image_not_found (default 60 s). */
  pullTimeoutMs?: number;
  /** Seconds a stop waits for the main process before SIGKILL (default 5). */
  stopTimeoutSeconds?: number;
  now?: () => number;
  /** The egress policy on the agent's bridge (absent: none installed, egress unenforced). */
  egress?: EgressSettings;
  /** A session's network when its spec names none (default internet). */
  defaultNetwork?: 'internet' | 'none';
  /** Who runs images without a non-root user (default 1000:1000, never root). */
  userPolicy?: UserPolicy;
  /** ALLOWED_IMAGES patterns (absent: any image). */
  allowedImages?: readonly string[];
  /** The engine runtime of session containers (default the engine's, runc); `runsc` is gVisor. */
  containerRuntime?: string;
  /** SESSION_DAEMON: new containers whose image has Node ≥ 18 run the session daemon, and commands go through it (SESSION_DAEMON=auto, the agent's default). */
  sessionDaemon?: boolean;
  /** WARM_POOL_SIZE started containers of this image and these limits, on the default network (see ./warm-pool.ts). */
  warmPool?: { size: number; image: string; limits: SessionLimits };
}

export class DockerRuntime implements Runtime {
  readonly mode = 'docker' as const;
  readonly isolation: Isolation;
  private readonly docker: Docker;
  private readonly egressGuard: EgressGuard;
  private readonly log: Logger;
  private readonly agent: string;
  private readonly filters: string[];
  private readonly images: ImageStore;
  private readonly users: ImageUserResolver;
  private readonly network: AgentNetwork;
  private readonly events: DockerEvents;
  private readonly sampler: StatsSampler;
  /** sessionId → container id, so the hot path (exec, stats) skips a list call. */
  private readonly ids = new Map<string, string>();
  /** The session daemons' folders, secrets and connections (../daemon/session-daemons.ts). */
  private readonly daemons: SessionDaemons;
  /** Owners of containers taken from the warm pool (their labels cannot say; see ./pool-claims.ts). */
  private readonly claims: ClaimStore;
  /** The warm pool; `pool.reconcile()` at start-up cleans what an earlier run left and starts filling. */
  readonly pool: WarmPool;

  constructor(private readonly opts: DockerRuntimeOptions) {
    this.docker = opts.docker;
    this.log = opts.logger.child({ runtime: 'docker' });
    const owner = opts.agentId || opts.agentName;
    this.agent = owner || 'agent';
    this.filters = [`${Labels.managed}=true`, ...(owner ? [`${Labels.agent}=${owner}`] : [])];
    this.images = new ImageStore({ docker: this.docker, logger: this.log, pullTimeoutMs: opts.pullTimeoutMs ?? 60_000 });
    this.users = new ImageUserResolver(this.docker, this.log, opts.userPolicy);
    this.isolation = opts.containerRuntime === 'runsc' ? 'gvisor' : 'container';
    this.network = new AgentNetwork(
      this.docker,
      networkName(opts.agentName || this.agent),
      { [Labels.managed]: 'true', [Labels.agent]: this.agent },
      this.log,
    );
    this.egressGuard = new EgressGuard(opts.egress, { docker: this.docker, network: this.network, logger: this.log });
    this.events = new DockerEvents(this.docker, this.filters, this.log);
    this.sampler = new StatsSampler({ docker: this.docker, logger: this.log, ...(opts.now ? { now: opts.now } : {}) });
    // Under gVisor a Unix socket made inside the sandbox is the sandbox's own: the host cannot connect to it
    // (unless runsc runs with --host-uds), so runsc sessions keep the docker exec path.
    const daemon = opts.sessionDaemon === true && opts.containerRuntime !== 'runsc';
    if (opts.sessionDaemon === true && !daemon) this.log.warn('SESSION_DAEMON is off under CONTAINER_RUNTIME=runsc: the host cannot reach a socket inside the sandbox');
    this.daemons = new SessionDaemons(opts.workspaceBase, this.log, daemon);
    this.events.on((id, event) => {
      this.sampler.forget(id);
      if (event === 'destroy') for (const [s, c] of this.ids) if (c === id) this.ids.delete(s);
    });
    this.claims = new ClaimStore(opts.workspaceBase, this.log);
    this.pool = createWarmPool(opts, { agent: this.agent, agentFilters: this.filters, logger: this.log, claims: this.claims, images: this.images, users: this.users, network: this.network, guardEgress: () => this.egressGuard.guard(), daemons: this.daemons });
  }

  async probe(): Promise<DockerStatus> {
    return probeDocker(this.docker);
  }

  /**
   * A session container's `die` (with why: State.OOMKilled, else a signal's
   * exit code 128+n, else its own exit) and `destroy` events, as they come.
   * `stop` and `oom` add nothing: a stop always follows a die, and an oom
   * alone may be one process inside a container that stays up.
   */
  watchContainers(listener: (e: ContainerEnded) => void): () => void {
    void this.events.start();
    return this.events.on((containerId, event, { labels, exitCode }) => {
      const { sessionId } = ownerOf(this.claims, containerId, labels);
      if (!sessionId) return;
      if (event === 'destroy') return listener({ sessionId, containerId, reason: 'killed', exitCode: null, removed: true });
      if (event !== 'die') return;
      void this.docker
        .getContainer(containerId)
        .inspect()
        .then((info) => info.State?.OOMKilled === true, () => false)
        .then((oom) => listener({ sessionId, containerId, reason: oom ? 'oom' : exitCode !== null && exitCode > 128 ? 'killed' : 'exited', exitCode, removed: false }));
    });
  }

  egress(): EgressState {
    return this.egressGuard.state;
  }

  /** Makes the agent's network and installs the egress policy on its bridge (./egress-guard.ts); never throws. */
  prepareEgress(): Promise<EgressState> {
    return this.egressGuard.prepare();
  }

  async list(): Promise<SessionInfo[]> {
    void this.events.start();
    const containers = await this.docker.listContainers({ all: true, filters: { label: this.filters } });
    const sessions: SessionInfo[] = [];
    for (const c of containers) {
      const { sessionId, userId } = ownerOf(this.claims, c.Id, c.Labels);
      let workspace: string;
      try {
        workspace = workspacePath(this.opts.workspaceBase, userId, sessionId);
      } catch {
        continue; // labelled by someone else, or malformed: not ours to report
      }
      this.ids.set(sessionId, c.Id);
      const address = c.NetworkSettings?.Networks?.[this.network.name]?.IPAddress;
      sessions.push({
        sessionId,
        userId,
        containerId: c.Id,
        state: c.State === 'running' ? 'running' : 'stopped',
        ...(address ? { address } : {}),
        workspace,
      });
    }
    return sessions;
  }

  async create(spec: SessionSpec): Promise<SessionInfo> {
    checkId('sessionId', spec.sessionId);
    checkId('userId', spec.userId);
    const started = Date.now();
    if (this.opts.allowedImages) checkImageAllowed(spec.image, this.opts.allowedImages);
    if (await this.find(spec.sessionId)) throw new AppError(ErrorCode.Conflict, `session ${spec.sessionId} already has a container`);
    void this.events.start();
    const claimed = await this.pool.claim(spec);
    if (claimed) {
      this.ids.set(spec.sessionId, claimed.Id);
      return this.toInfo(claimed);
    }
    const isolated = (spec.network ?? this.opts.defaultNetwork ?? 'internet') === 'none';
    const [image, network] = await Promise.all([
      this.images.ensure(spec.image),
      isolated ? Promise.resolve(null) : this.egressGuard.guard().then(() => this.network.ensure()),
    ]);
    const user = await this.users.resolve(image);
    let workspace: PreparedWorkspace | undefined;
    let container: Docker.Container | undefined;
    try {
      workspace = await prepareWorkspace(this.opts.workspaceBase, spec.userId, spec.sessionId, user, this.log);
      const daemon = this.daemons.enabled ? await this.daemons.prepare(spec.sessionId, user) : null;
      container = await this.docker.createContainer(
        containerOptions({
          spec,
          imageId: image.id,
          user,
          network,
          workspace: workspace.path,
          agent: this.agent,
          ...(this.opts.containerRuntime ? { runtime: this.opts.containerRuntime } : {}),
          daemon,
        }),
      );
      await container.start();
      const info = await container.inspect();
      this.ids.set(spec.sessionId, info.Id);
      this.log.info('session container started', {
        sessionId: spec.sessionId,
        containerId: info.Id.slice(0, 12),
        image: spec.image,
        user: user.user,
        ms: Date.now() - started,
      });
      return this.toInfo(info);
    } catch (err) {
      this.log.warn('session container failed to start; cleaning up', { sessionId: spec.sessionId, error: dockerMessage(err) });
      await container?.remove({ force: true, v: true }).catch(() => undefined);
      if (workspace?.created) await removeWorkspace(this.opts.workspaceBase, spec.userId, spec.sessionId).catch(() => undefined);
      if (isNotFound(err) && /network/i.test(dockerMessage(err))) this.network.forget();
      if (isConflict(err)) throw new AppError(ErrorCode.Conflict, `session ${spec.sessionId} already has a container`);
      // The engine reads the image's /etc/passwd itself at start and refuses one that is not a file.
      if (/unable to find user/i.test(dockerMessage(err))) {
        throw new AppError(ErrorCode.ImageNotAllowed, `Image "${spec.image}" cannot run: ${dockerMessage(err).replace(/\/var\/lib\/docker\S*merged/, '')}`, { image: spec.image });
      }
      throw err;
    }
  }

  async start(sessionId: string): Promise<SessionInfo> {
    const container = this.docker.getContainer(await this.containerId(sessionId));
    try {
      // The folder may have been cleaned away while the session was stopped: the engine
      // would recreate it owned by root, so it is made again here for the container's user.
      const before = await container.inspect();
      if (before.Config.Labels?.[Labels.network] !== 'none') await this.egressGuard.guard();
      const user = /^(\d+)(?::(\d+))?$/.exec(before.Config.User || '0');
      const owner = user ? { uid: Number(user[1]), gid: Number(user[2] ?? user[1]) } : undefined;
      await prepareWorkspace(this.opts.workspaceBase, ownerOf(this.claims, before.Id, before.Config.Labels).userId, sessionId, owner, this.log);
      // The daemon reads (and unlinks) a fresh secret at every start.
      if (before.Config.Labels?.[Labels.daemon] === 'on' && !before.State.Running) await this.daemons.prepare(sessionId, owner);
      await container.start();
    } catch (err) {
      if (!isNotModified(err)) throw this.mapMissing(sessionId, err);
    }
    return this.toInfo(await container.inspect());
  }

  async stop(sessionId: string): Promise<SessionInfo> {
    const id = await this.containerId(sessionId);
    const container = this.docker.getContainer(id);
    try {
      await container.stop({ t: this.opts.stopTimeoutSeconds ?? 5 });
    } catch (err) {
      if (!isNotModified(err)) throw this.mapMissing(sessionId, err);
    }
    this.sampler.forget(id);
    return this.toInfo(await container.inspect());
  }

  async remove(sessionId: string, opts: { keepWorkspace?: boolean } = {}): Promise<void> {
    checkId('sessionId', sessionId);
    const containers = await this.docker.listContainers({
      all: true,
      filters: { label: [...this.filters, `${Labels.session}=${sessionId}`] },
    });
    const claim = this.claims.bySession(sessionId);
    let userId = containers[0]?.Labels[Labels.user] ?? claim?.userId;
    for (const id of new Set([...containers.map((c) => c.Id), ...(claim ? [claim.containerId] : [])])) {
      this.sampler.forget(id);
      try {
        await this.docker.getContainer(id).remove({ force: true, v: true });
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    }
    if (claim) await Promise.all([this.claims.release(claim), this.daemons.forget(claim.slot)]);
    await this.daemons.forget(sessionId);
    this.ids.delete(sessionId);
    userId ??= await findWorkspaceOwner(this.opts.workspaceBase, sessionId);
    if (!opts.keepWorkspace && userId) await removeWorkspace(this.opts.workspaceBase, userId, sessionId);
    this.log.info('session removed', { sessionId, containers: containers.length, keepWorkspace: opts.keepWorkspace === true });
  }

  async exec(sessionId: string, spec: ExecSpec): Promise<ProcessHandle> {
    // A claimed pooled container was started before its session existed: the session's env goes to each process.
    const claim = this.claims.bySession(sessionId);
    if (claim) spec = { ...spec, env: { ...claimEnv(claim), ...spec.env } };
    await this.events.start();
    const cached = this.ids.has(sessionId);
    const containerId = await this.containerId(sessionId);
    try {
      return await this.execIn(containerId, sessionId, spec);
    } catch (err) {
      // A cached id can outlive its container (removed behind our back): look once more.
      if (!cached || !(err instanceof AppError) || err.code !== ErrorCode.NotFound) throw err;
      this.ids.delete(sessionId);
      const fresh = await this.containerId(sessionId);
      return this.execIn(fresh, sessionId, spec);
    }
  }

  /** Through the session daemon when the container runs one, else `docker exec`. */
  private async execIn(containerId: string, sessionId: string, spec: ExecSpec): Promise<ProcessHandle> {
    const viaDaemon = await this.daemons.exec(sessionId, containerId, spec, () => this.containerState(containerId));
    return viaDaemon ?? startDockerExec({ docker: this.docker, containerId, sessionId, events: this.events, logger: this.log }, spec);
  }

  /** A restarted agent finds the processes the session's daemon kept running. */
  async adopt(sessionId: string): Promise<AdoptedProcess[]> {
    const containerId = await this.containerId(sessionId);
    return this.daemons.adopt(sessionId, containerId);
  }

  /** The listening-socket tables, read by the daemon (null: no daemon, so the caller execs `cat`). */
  async procNetTcp(sessionId: string): Promise<string | null> {
    const containerId = await this.containerId(sessionId);
    return this.daemons.procNetTcp(sessionId, containerId, () => this.containerState(containerId));
  }

  private async containerState(containerId: string): Promise<ContainerState> {
    try {
      return (await this.docker.getContainer(containerId).inspect()).State.Running ? 'running' : 'stopped';
    } catch (err) {
      if (isNotFound(err)) return 'missing';
      throw err;
    }
  }

  async stats(sessionId: string): Promise<ResourceStats | null> {
    void this.events.start();
    let id: string;
    try {
      id = await this.containerId(sessionId);
    } catch (err) {
      if (err instanceof AppError && err.code === ErrorCode.NotFound) return null;
      throw err;
    }
    return this.sampler.get(id);
  }

  /** Stops sampling; on a clean exit the egress rules go too, unless containers still sit on the bridge (they outlive the agent). */
  async close(): Promise<void> {
    await this.pool.close();
    this.daemons.closeAll();
    this.sampler.close();
    this.events.close();
    await this.egressGuard.close();
  }

  private async find(sessionId: string): Promise<Docker.ContainerInfo | undefined> {
    const list = await this.docker.listContainers({
      all: true,
      filters: { label: [...this.filters, `${Labels.session}=${sessionId}`] },
    });
    const claim = list.length === 0 ? this.claims.bySession(sessionId) : undefined;
    if (claim) return (await this.docker.listContainers({ all: true, filters: { id: [claim.containerId], label: this.filters } }))[0];
    return list[0];
  }

  private async containerId(sessionId: string): Promise<string> {
    checkId('sessionId', sessionId);
    const cached = this.ids.get(sessionId);
    if (cached) return cached;
    const found = await this.find(sessionId);
    if (!found) throw new AppError(ErrorCode.NotFound, `session ${sessionId} has no container on this agent`);
    this.ids.set(sessionId, found.Id);
    return found.Id;
  }

  private mapMissing(sessionId: string, err: unknown): unknown {
    if (!isNotFound(err)) return err;
    this.ids.delete(sessionId);
    return new AppError(ErrorCode.NotFound, `session ${sessionId} has no container on this agent`);
  }

  private toInfo(info: Docker.ContainerInspectInfo): SessionInfo {
    const { sessionId, userId } = ownerOf(this.claims, info.Id, info.Config.Labels);
    const address = info.NetworkSettings.Networks?.[this.network.name]?.IPAddress;
    return {
      sessionId,
      userId,
      containerId: info.Id,
      state: info.State.Running ? 'running' : 'stopped',
      ...(address ? { address } : {}),
      workspace: workspacePath(this.opts.workspaceBase, userId, sessionId),
    };
  }
}

/** Asks the engine who it is; never throws. */
export async function probeDocker(docker: Docker): Promise<DockerStatus> {
  try {
    const v = await docker.version();
    return { available: true, version: v.Version, apiVersion: v.ApiVersion };
  } catch (err) {
    return { available: false, error: err instanceof Error ? err.message.slice(0, 1000) : String(err).slice(0, 1000) };
  }
}
