/**
 * Chooses the runtime once, at start-up: Docker when the engine answers (or
 * when AGENT_RUNTIME=docker, which fails if it does not), else local mode with
 * a loud warning, because local mode runs user code without any isolation.
 *
 * With NODE_ENV=production nothing weaker happens by accident: an engine that
 * does not answer stops the agent unless AGENT_RUNTIME=local says local mode
 * is meant; an egress policy that cannot be enforced stops it unless
 * EGRESS_POLICY=off says so; a CONTAINER_RUNTIME the engine does not list
 * stops it everywhere.
 */
import path from 'node:path';
import Docker from 'dockerode';
import type { AgentConfig } from '../config';
import type { Logger } from '../logger';
import { DockerRuntime, probeDocker } from './docker/docker-runtime';
import type { Iptables } from './docker/egress-policy';
import { LocalRuntime } from './local/local-runtime';
import type { Runtime } from './runtime';

export type RuntimeConfig = Pick<
  AgentConfig,
  | 'runtime'
  | 'dockerHost'
  | 'workspaceBase'
  | 'agentId'
  | 'agentName'
  | 'imagePullTimeoutMs'
  | 'production'
  | 'egressPolicy'
  | 'egressAllowCidrs'
  | 'defaultNetwork'
  | 'containerUser'
  | 'allowRootContainers'
  | 'allowedImages'
  | 'containerRuntime'
  | 'sessionDaemon'
  | 'stateDir'
  | 'warmPoolSize'
  | 'defaultImage'
  | 'cpuLimit'
  | 'memoryLimitBytes'
  | 'pidsLimit'
>;

export interface CreateRuntimeOptions {
  config: RuntimeConfig;
  logger: Logger;
  dockerFactory?: (host: string | undefined) => Docker;
  iptables?: Iptables;
}

/** A start-up refusal: main prints the message and exits non-zero. */
export class StartupRefused extends Error {
  override readonly name = 'StartupRefused';
}

export function dockerClient(host: string | undefined): Docker {
  if (!host) return new Docker();
  if (host.startsWith('unix://')) return new Docker({ socketPath: host.slice('unix://'.length) });
  if (host.startsWith('/')) return new Docker({ socketPath: host });
  const url = new URL(host.replace(/^tcp:/, 'http:'));
  return new Docker({ host: url.hostname, port: Number(url.port || 2375), protocol: url.protocol === 'https:' ? 'https' : 'http' });
}

export async function createRuntime({ config, logger, dockerFactory = dockerClient, iptables }: CreateRuntimeOptions): Promise<Runtime> {
  if (config.runtime !== 'local') {
    const docker = dockerFactory(config.dockerHost);
    const status = await probeDocker(docker);
    if (status.available) {
      logger.info('using the Docker runtime', { version: status.version, apiVersion: status.apiVersion });
      const runtime = new DockerRuntime({
        docker,
        logger,
        workspaceBase: config.workspaceBase,
        ...(config.agentId ? { agentId: config.agentId } : {}),
        agentName: config.agentName,
        pullTimeoutMs: config.imagePullTimeoutMs,
        ...(config.egressPolicy === 'on'
          ? { egress: { allowCidrs: config.egressAllowCidrs, production: config.production, ...(iptables ? { iptables } : {}) } }
          : {}),
        defaultNetwork: config.defaultNetwork,
        userPolicy: { fallback: config.containerUser, allowRoot: config.allowRootContainers },
        allowedImages: config.allowedImages,
        ...(config.containerRuntime !== 'runc' ? { containerRuntime: config.containerRuntime } : {}),
        sessionDaemon: config.sessionDaemon !== 'off',
        warmPool: { size: config.warmPoolSize, image: config.defaultImage, limits: { cpu: config.cpuLimit, memoryBytes: config.memoryLimitBytes, pids: config.pidsLimit } },
      });
      await checkContainerRuntime(docker, config.containerRuntime);
      const egress = await runtime.prepareEgress();
      if (config.egressPolicy === 'off') {
        logger.warn('EGRESS_POLICY=off: containers can reach the host, the LAN and metadata services');
      } else if (egress !== 'enforced' && config.production) {
        throw new StartupRefused(
          'NODE_ENV=production and the egress policy cannot be enforced (the agent needs root and iptables on the Docker host); fix that, or set EGRESS_POLICY=off to run without it',
        );
      }
      // Pooled containers an earlier run left are finished or removed before the edge hears what runs here.
      await runtime.pool.reconcile();
      return runtime;
    }
    if (config.runtime === 'docker') {
      throw new StartupRefused(`AGENT_RUNTIME=docker but the Docker engine does not answer: ${status.error ?? 'unknown error'}`);
    }
    if (config.production) {
      throw new StartupRefused(
        `NODE_ENV=production and no Docker engine answers (${status.error ?? 'unknown error'}): start dockerd or set DOCKER_HOST; set AGENT_RUNTIME=local only if you mean to run user code without isolation`,
      );
    }
    logger.warn(
      'NO DOCKER ENGINE ANSWERED: running in LOCAL MODE. User commands run as plain processes on this host with NO ISOLATION. Start dockerd (or set DOCKER_HOST) for containers.',
      { dockerError: status.error },
    );
    return new LocalRuntime({ logger, workspaceBase: config.workspaceBase, dockerStatus: status });
  }
  // Local processes run as the agent's user: in production their workspaces must not sit where `..` reaches secrets.json.
  const rel = path.relative(config.stateDir, config.workspaceBase);
  if (config.production && !rel.startsWith('..') && !path.isAbsolute(rel)) {
    throw new StartupRefused(
      `NODE_ENV=production with AGENT_RUNTIME=local: USER_WORKSPACE_BASE (${config.workspaceBase}) is inside STATE_DIR, next to secrets.json that local processes could read; put it outside STATE_DIR`,
    );
  }
  logger.warn('LOCAL MODE (AGENT_RUNTIME=local): user commands run as plain processes on this host with NO ISOLATION.');
  return new LocalRuntime({ logger, workspaceBase: config.workspaceBase });
}

/** The engine must list CONTAINER_RUNTIME (gVisor's `runsc` is registered in daemon.json). */
async function checkContainerRuntime(docker: Docker, name: string): Promise<void> {
  if (name === 'runc') return;
  const info = (await docker.info()) as { Runtimes?: Record<string, unknown> };
  if (!info.Runtimes || !(name in info.Runtimes)) {
    throw new StartupRefused(
      `CONTAINER_RUNTIME=${name} but the engine lists only ${Object.keys(info.Runtimes ?? {}).join(', ') || 'no runtimes'}: register it in /etc/docker/daemon.json and reload dockerd`,
    );
  }
}
