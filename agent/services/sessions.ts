/**
 * Container sessions on this agent: the edge's `session.*` requests, served
 * by whichever runtime the agent chose, plus the cheap per-container figures
 * the heartbeat carries for /health.
 */
import { AppError, ErrorCode } from '../../shared/errors';
import {
  SessionCreateParams,
  SessionRefParams,
  SessionRemoveParams,
  type SessionInfoResult,
} from '../../shared/protocol/agent-methods';
import type { ContainerFigures } from '../../shared/protocol/tunnel';
import type { AgentConfig } from '../config';
import type { Dispatcher } from '../connection/dispatcher';
import type { Logger } from '../logger';
import type { Runtime, SessionInfo, SessionLimits } from '../runtime/runtime';

export interface SessionHooks {
  /** The session's container runs: open its data socket. */
  running(info: SessionInfo): void;
  /** The session's container stopped or is gone: close its data socket, kill its processes. */
  gone(sessionId: string): Promise<void>;
  /** Workspace bytes last measured for the session, shown as `resources.diskUsed`. */
  diskUsed?(sessionId: string): number | undefined;
}

export interface SessionServiceOptions {
  runtime: Runtime;
  hooks?: SessionHooks;
  config: Pick<AgentConfig, 'maxSessions' | 'cpuLimit' | 'memoryLimitBytes' | 'pidsLimit' | 'keepWorkspaces'>;
  logger: Logger;
}

export class SessionService {
  private figures: ContainerFigures[] = [];
  private readonly limitsById = new Map<string, SessionLimits>();

  constructor(private readonly opts: SessionServiceOptions) {}

  register(dispatcher: Dispatcher): void {
    const { runtime, config, logger } = this.opts;
    dispatcher
      .on('session.create', SessionCreateParams, async (p) => {
        const existing = (await runtime.list()).filter((s) => s.state !== 'missing');
        if (existing.some((s) => s.sessionId === p.sessionId)) {
          throw new AppError(ErrorCode.Conflict, `session ${p.sessionId} exists on this agent already`);
        }
        // Capacity is what runs: a stopped session holds its workspace, not a place.
        if (existing.filter((s) => s.state === 'running').length >= config.maxSessions) throw new AppError(ErrorCode.NoCapacity, 'this agent is full');
        const limits: SessionLimits = {
          cpu: p.limits.cpu ?? config.cpuLimit,
          memoryBytes: p.limits.memoryBytes ?? config.memoryLimitBytes,
          pids: p.limits.pids ?? config.pidsLimit,
        };
        logger.info('creating session', { sessionId: p.sessionId, image: p.image });
        const info = await runtime.create({ ...p, limits });
        this.limitsById.set(p.sessionId, limits);
        if (info.state === 'running') this.opts.hooks?.running(info);
        return this.result(info, limits);
      })
      .on('session.start', SessionRefParams, async (p) => {
        const info = await runtime.start(p.sessionId);
        if (info.state === 'running') this.opts.hooks?.running(info);
        return this.result(info);
      })
      .on('session.stop', SessionRefParams, async (p) => {
        await this.opts.hooks?.gone(p.sessionId);
        return this.result(await runtime.stop(p.sessionId));
      })
      .on('session.remove', SessionRemoveParams, async (p) => {
        await this.opts.hooks?.gone(p.sessionId);
        await runtime.remove(p.sessionId, { keepWorkspace: p.keepWorkspace ?? config.keepWorkspaces });
        this.limitsById.delete(p.sessionId);
        logger.info('removed session', { sessionId: p.sessionId });
        return { removed: true };
      })
      .on('session.stats', SessionRefParams, async (p) => {
        const stats = await runtime.stats(p.sessionId);
        const diskUsed = this.opts.hooks?.diskUsed?.(p.sessionId);
        return stats && diskUsed !== undefined ? { ...stats, diskUsed } : stats;
      });
  }

  /** The workspace went far past WORKSPACE_QUOTA: the container stops (the edge hears it as reason disk_quota). */
  async stopForQuota(sessionId: string): Promise<void> {
    try {
      await this.opts.hooks?.gone(sessionId);
      await this.opts.runtime.stop(sessionId);
      this.opts.logger.warn('session stopped: workspace far past its quota', { sessionId });
    } catch (err) {
      this.opts.logger.error('could not stop a session past its quota', { sessionId, error: err });
    }
  }

  private result(info: SessionInfo, limits = this.limitsById.get(info.sessionId)): SessionInfoResult {
    return {
      sessionId: info.sessionId,
      userId: info.userId,
      state: info.state,
      ...(info.containerId ? { containerId: info.containerId } : {}),
      ...(info.address ? { address: info.address } : {}),
      ...(limits ? { limits } : {}),
    };
  }

  /** Latest figures, refreshed by `refresh()`; the heartbeat reads this synchronously. */
  latestFigures(): ContainerFigures[] {
    return this.figures;
  }

  async refresh(): Promise<void> {
    const { runtime, logger } = this.opts;
    try {
      const sessions = await runtime.list();
      this.figures = await Promise.all(
        sessions.map(async (s): Promise<ContainerFigures> => {
          const stats = s.state === 'running' ? await runtime.stats(s.sessionId).catch(() => null) : null;
          return {
            sessionId: s.sessionId,
            state: s.state,
            ...(stats ? { cpuPercent: stats.cpuPercent, memoryUsed: stats.memoryUsed, memoryLimit: stats.memoryLimit } : {}),
          };
        }),
      );
    } catch (err) {
      logger.warn('could not refresh container figures', { error: err });
    }
  }
}
