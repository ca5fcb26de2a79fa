/**
 * Container sessions on this agent: the edge's `session.*` requests, served
 * by whichever runtime the agent chose, plus the cheap per-container figures
 * the heartbeat carries for /health and for the edge to correct a record that
 * drifted. A container that ends without the edge asking (its main process
 * exited, was killed, ran out of memory, or someone removed it) is reported
 * at once as a `session.state` event (shared/protocol/container-state.ts),
 * and its host (data socket, processes, previews) is closed.
 */
import { AppError, ErrorCode } from '../../shared/errors';
import {
  SessionCreateParams,
  SessionRefParams,
  SessionRemoveParams,
  type SessionInfoResult,
} from '../../shared/protocol/agent-methods';
import { CONTAINER_STATE_EVENT, type ContainerStateEvent } from '../../shared/protocol/container-state';
import type { ContainerFigures } from '../../shared/protocol/tunnel';
import type { AgentConfig } from '../config';
import type { Dispatcher } from '../connection/dispatcher';
import type { Logger } from '../logger';
import type { ContainerEnded, Runtime, SessionInfo, SessionLimits } from '../runtime/runtime';

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
  /** Sends a one-way event to the edge on the control socket; false when it is not connected (hello reconciles then). */
  report?: (event: string, data: unknown) => boolean;
}

export class SessionService {
  private figures: ContainerFigures[] = [];
  private readonly limitsById = new Map<string, SessionLimits>();
  /** Sessions this agent is stopping or removing itself: their container events are expected, not news. */
  private readonly endingNow = new Map<string, number>();
  /** When each session's state last changed here, so a figures refresh that started earlier does not undo it. */
  private readonly changedAt = new Map<string, number>();
  private unwatch: (() => void) | undefined;

  constructor(private readonly opts: SessionServiceOptions) {
    this.unwatch = opts.runtime.watchContainers?.((e) => void this.containerEnded(e));
  }

  close(): void {
    this.unwatch?.();
    this.unwatch = undefined;
  }

  /** Runs an agent-made stop or removal; the container events it causes are not reported as news. */
  private async ending<T>(sessionId: string, work: () => Promise<T>): Promise<T> {
    this.endingNow.set(sessionId, (this.endingNow.get(sessionId) ?? 0) + 1);
    try {
      return await work();
    } finally {
      // Events of the stop arrive just after it returns; they are still ours for a moment.
      setTimeout(() => {
        const n = (this.endingNow.get(sessionId) ?? 1) - 1;
        if (n <= 0) this.endingNow.delete(sessionId);
        else this.endingNow.set(sessionId, n);
      }, 2_000).unref();
    }
  }

  private async containerEnded(e: ContainerEnded): Promise<void> {
    const { logger, hooks, report } = this.opts;
    if (this.endingNow.has(e.sessionId)) return;
    const state = e.removed ? 'missing' : 'stopped';
    logger.warn('session container ended on its own', { sessionId: e.sessionId, containerId: e.containerId.slice(0, 12), reason: e.reason, exitCode: e.exitCode, removed: e.removed });
    this.setFigure(e.sessionId, state);
    const event: ContainerStateEvent = { sessionId: e.sessionId, containerId: e.containerId, state, reason: e.reason, exitCode: e.exitCode };
    if (!report?.(CONTAINER_STATE_EVENT, event)) logger.info('the edge will hear of the ended container when the agent reconnects', { sessionId: e.sessionId });
    await hooks?.gone(e.sessionId).catch((err: unknown) => logger.warn('closing the host of an ended container failed', { sessionId: e.sessionId, error: err }));
  }

  /** Records a state change made or seen here in the heartbeat's figures at once. */
  private setFigure(sessionId: string, state: ContainerFigures['state']): void {
    this.changedAt.set(sessionId, Date.now());
    const others = this.figures.filter((f) => f.sessionId !== sessionId);
    this.figures = state === 'missing' ? others : [...others, { sessionId, state }];
  }

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
        this.setFigure(p.sessionId, info.state);
        if (info.state === 'running') this.opts.hooks?.running(info);
        return this.result(info, limits);
      })
      .on('session.start', SessionRefParams, async (p) => {
        const info = await runtime.start(p.sessionId);
        this.setFigure(p.sessionId, info.state);
        if (info.state === 'running') this.opts.hooks?.running(info);
        return this.result(info);
      })
      .on('session.stop', SessionRefParams, async (p) => {
        return this.ending(p.sessionId, async () => {
          await this.opts.hooks?.gone(p.sessionId);
          const info = await runtime.stop(p.sessionId);
          this.setFigure(p.sessionId, info.state);
          return this.result(info);
        });
      })
      .on('session.remove', SessionRemoveParams, async (p) => {
        await this.ending(p.sessionId, async () => {
          await this.opts.hooks?.gone(p.sessionId);
          await runtime.remove(p.sessionId, { keepWorkspace: p.keepWorkspace ?? config.keepWorkspaces });
        });
        this.setFigure(p.sessionId, 'missing');
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
      await this.ending(sessionId, async () => {
        await this.opts.hooks?.gone(sessionId);
        await this.opts.runtime.stop(sessionId);
      });
      this.setFigure(sessionId, 'stopped');
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
      const started = Date.now();
      const sessions = await runtime.list();
      const fresh = await Promise.all(
        sessions.map(async (s): Promise<ContainerFigures> => {
          const stats = s.state === 'running' ? await runtime.stats(s.sessionId).catch(() => null) : null;
          return {
            sessionId: s.sessionId,
            state: s.state,
            ...(stats ? { cpuPercent: stats.cpuPercent, memoryUsed: stats.memoryUsed, memoryLimit: stats.memoryLimit } : {}),
          };
        }),
      );
      // A session whose state changed here while the listing ran keeps the newer state.
      const newer = this.figures.filter((f) => (this.changedAt.get(f.sessionId) ?? 0) >= started);
      const kept = new Set(newer.map((f) => f.sessionId));
      this.figures = [...fresh.filter((f) => !kept.has(f.sessionId) && (this.changedAt.get(f.sessionId) ?? 0) < started), ...newer];
    } catch (err) {
      logger.warn('could not refresh container figures', { error: err });
    }
  }
}
