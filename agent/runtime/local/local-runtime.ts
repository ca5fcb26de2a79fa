/** Runtime without isolation: workspaces are host folders, processes are children of the agent. */
import { AppError, ErrorCode } from '../../../shared/errors';
import type { DockerStatus } from '../../../shared/protocol/tunnel';
import type { Logger } from '../../logger';
import type { ExecSpec, ProcessHandle, ResourceStats, Runtime, SessionInfo, SessionSpec } from '../runtime';

export interface LocalRuntimeOptions {
  logger: Logger;
  workspaceBase: string;
  dockerStatus?: DockerStatus;
}

export class LocalRuntime implements Runtime {
  readonly mode = 'local' as const;
  constructor(private readonly opts: LocalRuntimeOptions) {}

  async probe(): Promise<DockerStatus> {
    return this.opts.dockerStatus ?? { available: false, error: 'local mode' };
  }
  async list(): Promise<SessionInfo[]> {
    return [];
  }
  create(_spec: SessionSpec): Promise<SessionInfo> {
    return Promise.reject(new AppError(ErrorCode.Internal, 'sessions are not available yet'));
  }
  start(_id: string): Promise<SessionInfo> {
    return Promise.reject(new AppError(ErrorCode.Internal, 'sessions are not available yet'));
  }
  stop(_id: string): Promise<SessionInfo> {
    return Promise.reject(new AppError(ErrorCode.Internal, 'sessions are not available yet'));
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
