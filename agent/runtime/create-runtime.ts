/**
 * Chooses the runtime once, at start-up: Docker when the engine answers (or
 * when AGENT_RUNTIME=docker, which fails if it does not), else local mode with
 * a loud warning, because local mode runs user code without any isolation.
 */
import Docker from 'dockerode';
import type { AgentConfig } from '../config';
import type { Logger } from '../logger';
import { DockerRuntime, probeDocker } from './docker/docker-runtime';
import { LocalRuntime } from './local/local-runtime';
import type { Runtime } from './runtime';

export interface CreateRuntimeOptions {
  config: Pick<AgentConfig, 'runtime' | 'dockerHost' | 'workspaceBase' | 'agentId' | 'agentName' | 'imagePullTimeoutMs'>;
  logger: Logger;
  dockerFactory?: (host: string | undefined) => Docker;
}

export function dockerClient(host: string | undefined): Docker {
  if (!host) return new Docker();
  if (host.startsWith('unix://')) return new Docker({ socketPath: host.slice('unix://'.length) });
  if (host.startsWith('/')) return new Docker({ socketPath: host });
  const url = new URL(host.replace(/^tcp:/, 'http:'));
  return new Docker({ host: url.hostname, port: Number(url.port || 2375), protocol: url.protocol === 'https:' ? 'https' : 'http' });
}

export async function createRuntime({ config, logger, dockerFactory = dockerClient }: CreateRuntimeOptions): Promise<Runtime> {
  if (config.runtime !== 'local') {
    const docker = dockerFactory(config.dockerHost);
    const status = await probeDocker(docker);
    if (status.available) {
      logger.info('using the Docker runtime', { version: status.version, apiVersion: status.apiVersion });
      return new DockerRuntime({
        docker,
        logger,
        workspaceBase: config.workspaceBase,
        ...(config.agentId ? { agentId: config.agentId } : {}),
        agentName: config.agentName,
        pullTimeoutMs: config.imagePullTimeoutMs,
      });
    }
    if (config.runtime === 'docker') {
      throw new Error(`AGENT_RUNTIME=docker but the Docker engine does not answer: ${status.error ?? 'unknown error'}`);
    }
    logger.warn(
      'NO DOCKER ENGINE ANSWERED: running in LOCAL MODE. User commands run as plain processes on this host with NO ISOLATION. Start dockerd (or set DOCKER_HOST) for containers.',
      { dockerError: status.error },
    );
    return new LocalRuntime({ logger, workspaceBase: config.workspaceBase, dockerStatus: status });
  }
  logger.warn('LOCAL MODE (AGENT_RUNTIME=local): user commands run as plain processes on this host with NO ISOLATION.');
  return new LocalRuntime({ logger, workspaceBase: config.workspaceBase });
}
