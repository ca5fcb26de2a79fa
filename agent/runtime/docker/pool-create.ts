/**
 * How DockerRuntime makes its warm pool: pooled containers come out of the
 * same `containerOptions` as a session's container, for the same image, user,
 * limits, network and engine runtime; only the name (`mominai-pool-…`), the
 * workspace (an empty slot folder) and the labels differ: no session, user or
 * ports label, and `dev.mominai.pool=<slot>` instead.
 */
import type Docker from 'dockerode';
import type { Logger } from '../../logger';
import type { SessionSpec } from '../runtime';
import { prepareWorkspace } from '../workspace';
import { containerOptions, Labels } from './container-spec';
import type { ImageUserResolver } from './image-user';
import type { ImageStore } from './images';
import type { DockerRuntimeOptions } from './docker-runtime';
import type { AgentNetwork } from './network';
import { POOL_LABEL, poolRoot, type ClaimStore } from './pool-claims';
import { WarmPool, type PooledContainer, type PoolTemplate } from './warm-pool';

/** What the pool borrows from its DockerRuntime: the same image store, user resolver, network and egress guard. */
export interface PoolParts {
  logger: Logger;
  agent: string;
  agentFilters: string[];
  claims: ClaimStore;
  images: ImageStore;
  users: ImageUserResolver;
  network: AgentNetwork;
  /** Re-checks the egress policy before a container joins the bridge (DockerRuntime's guard). */
  guardEgress: () => Promise<void>;
  /** The session daemons: a pooled container gets one as a created container would, keyed by its slot until claimed. */
  daemons: PoolDaemons;
}

/** What the pool uses of ../daemon/session-daemons.ts. */
export interface PoolDaemons {
  readonly enabled: boolean;
  prepare(id: string, owner: { uid: number; gid: number } | undefined): Promise<string[] | null>;
  adoptSlot(slot: string, sessionId: string): Promise<void>;
  forget(id: string): Promise<void>;
}

interface PoolSettings {
  docker: Docker;
  workspaceBase: string;
  template: PoolTemplate;
  containerRuntime?: string;
}

export function createWarmPool(opts: DockerRuntimeOptions, borrowed: PoolParts): WarmPool {
  const template: PoolTemplate = {
    image: opts.warmPool?.image ?? '',
    limits: opts.warmPool?.limits ?? { cpu: 0, memoryBytes: 0, pids: 0 },
    network: opts.defaultNetwork ?? 'internet',
  };
  const parts: PoolParts & PoolSettings = {
    ...borrowed,
    docker: opts.docker,
    workspaceBase: opts.workspaceBase,
    template,
    ...(opts.containerRuntime ? { containerRuntime: opts.containerRuntime } : {}),
  };
  return new WarmPool({
    docker: opts.docker,
    logger: borrowed.logger,
    workspaceBase: opts.workspaceBase,
    size: opts.warmPool?.size ?? 0,
    template,
    agentFilters: borrowed.agentFilters,
    claims: borrowed.claims,
    create: (slot) => createPooled(parts, slot),
    adoptSlot: (slot, sessionId) => borrowed.daemons.adoptSlot(slot, sessionId),
    forgetSlot: (slot) => borrowed.daemons.forget(slot),
    beforeClaim: async () => {
      const [image] = await Promise.all([parts.images.ensure(template.image), template.network === 'none' ? null : parts.guardEgress()]);
      return image.id;
    },
  });
}

async function createPooled(parts: PoolParts & PoolSettings, slot: string): Promise<PooledContainer> {
  const t = parts.template;
  const [image, network] = await Promise.all([
    parts.images.ensure(t.image),
    t.network === 'none' ? Promise.resolve(null) : parts.guardEgress().then(() => parts.network.ensure()),
  ]);
  const user = await parts.users.resolve(image);
  // The same helper as a workspace's, so the slot's owner and modes are a workspace's.
  const slotDir = await prepareWorkspace(poolRoot(parts.workspaceBase), 'slots', slot, user, parts.logger);
  const daemon = parts.daemons.enabled ? await parts.daemons.prepare(slot, user) : null;
  const spec: SessionSpec = { sessionId: slot, userId: 'pool', image: t.image, env: [], ports: [], limits: t.limits, network: t.network };
  const options = containerOptions({
    spec,
    imageId: image.id,
    user,
    network,
    workspace: slotDir.path,
    agent: parts.agent,
    daemon,
    ...(parts.containerRuntime ? { runtime: parts.containerRuntime } : {}),
  });
  const { [Labels.session]: _session, [Labels.user]: _user, [Labels.ports]: _ports, ...labels } = options.Labels ?? {};
  options.Labels = { ...labels, [POOL_LABEL]: slot };
  const container = await parts.docker.createContainer(options);
  try {
    await container.start();
  } catch (err) {
    await container.remove({ force: true, v: true }).catch(() => undefined);
    throw err;
  }
  return { id: container.id, slot, imageId: image.id };
}
