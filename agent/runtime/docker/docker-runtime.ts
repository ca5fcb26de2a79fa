/** Runtime backed by a Docker engine through dockerode. */
import Docker from 'dockerode';
import { AppError, ErrorCode } from '../../../shared/errors';
import type { DockerStatus } from '../../../shared/protocol/tunnel';
import type { Logger } from '../../logger';
import type { ExecSpec, ProcessHandle, ResourceStats, Runtime, SessionInfo, SessionSpec } from '../runtime';

export const LABEL_PREFIX = 'dev.mominai';

export interface DockerRuntimeOptions {
  docker: Docker;
  logger: Logger;
  workspaceBase: string;
  agentId?: string;
}

export class DockerRuntime implements Runtime {
  readonly mode = 'docker' as const;
  private readonly docker: Docker;

  constructor(private readonly opts: DockerRuntimeOptions) {
    this.docker = opts.docker;
  }

  async probe(): Promise<DockerStatus> {
    return probeDocker(this.docker);
  }

  async list(): Promise<SessionInfo[]> {
    const containers = await this.docker.listContainers({ all: true, filters: { label: [`${LABEL_PREFIX}.session`] } });
    return containers.map((c) => ({
      sessionId: c.Labels[`${LABEL_PREFIX}.session`] ?? '',
      userId: c.Labels[`${LABEL_PREFIX}.user`] ?? '',
      containerId: c.Id,
      state: c.State === 'running' ? 'running' : 'stopped',
      workspace: '',
    }));
  }

  create(_spec: SessionSpec): Promise<SessionInfo> {
    return Promise.reject(new AppError(ErrorCode.Internal, 'container sessions are not available yet'));
  }
  start(_id: string): Promise<SessionInfo> {
    return Promise.reject(new AppError(ErrorCode.Internal, 'container sessions are not available yet'));
  }
  stop(_id: string): Promise<SessionInfo> {
    return Promise.reject(new AppError(ErrorCode.Internal, 'container sessions are not available yet'));
  }
  async remove(_id: string): Promise<void> {}
  exec(_id: string, _spec: ExecSpec): Promise<ProcessHandle> {
    return Promise.reject(new AppError(ErrorCode.Internal, 'exec is not available yet'));
  }
  async stats(_id: string): Promise<ResourceStats | null> {
    return null;
  }
  async close(): Promise<void> {}
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
