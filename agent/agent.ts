/**
 * The host agent: one runtime, one connection loop to the edge, and the
 * dispatcher that serves the edge's requests.
 */
import { z } from 'zod';
import { PROTOCOL_VERSION } from '../shared/protocol/version';
import type { EdgeToAgentFrame, HelloFrame } from '../shared/protocol/tunnel';
import type { AgentConfig } from './config';
import { Dispatcher } from './connection/dispatcher';
import type { EdgeConnection } from './connection/edge-connection';
import { ReconnectLoop } from './connection/reconnect-loop';
import type { Logger } from './logger';
import type { Runtime } from './runtime/runtime';
import { SessionHosts } from './services/session-hosts';
import { SessionService } from './services/sessions';
import { systemInfo } from './system';

export const AGENT_VERSION = '0.1.0';

export interface AgentOptions {
  config: AgentConfig;
  runtime: Runtime;
  logger: Logger;
}

export class Agent {
  readonly dispatcher: Dispatcher;
  readonly sessions: SessionService;
  readonly hosts: SessionHosts;
  private readonly loop: ReconnectLoop;
  private activeSessions = 0;
  private figuresTimer: NodeJS.Timeout | undefined;

  constructor(private readonly opts: AgentOptions) {
    this.dispatcher = new Dispatcher(opts.logger);
    this.dispatcher.on('agent.info', z.object({}).passthrough(), async () => ({
      name: opts.config.agentName,
      mode: opts.runtime.mode,
      version: AGENT_VERSION,
      system: systemInfo(),
      ...this.sandbox(),
    }));
    this.hosts = new SessionHosts({
      runtime: opts.runtime,
      logger: opts.logger,
      edgeUrl: opts.config.edgeUrl,
      token: opts.config.agentToken,
      maxFileSize: opts.config.maxFileSize,
      limits: {
        maxProcesses: opts.config.maxProcessesPerSession,
        maxWatches: opts.config.maxWatchesPerSession,
        maxPreviewWaits: opts.config.maxPreviewWaitsPerSession,
        maxPreviewSockets: opts.config.maxPreviewSocketsPerSession,
        workspaceQuotaBytes: opts.config.workspaceQuotaBytes,
        ...(opts.config.quotaIntervalMs ? { quotaIntervalMs: opts.config.quotaIntervalMs } : {}),
      },
      onQuotaExceeded: (sessionId) => void this.sessions.stopForQuota(sessionId),
    });
    this.sessions = new SessionService({
      runtime: opts.runtime,
      config: opts.config,
      logger: opts.logger,
      report: (event, data) => this.loop.connection?.send({ type: 'event', event, data }) ?? false,
      hooks: {
        running: (info) => this.hosts.open(info.sessionId, info.workspace, info.address, info.containerId),
        gone: (id) => this.hosts.close(id),
        diskUsed: (id) => this.hosts.diskUsed(id),
      },
    });
    this.sessions.register(this.dispatcher);
    this.loop = new ReconnectLoop({
      logger: opts.logger,
      connection: {
        url: opts.config.edgeUrl,
        token: opts.config.agentToken,
        hello: () => this.hello(),
        heartbeat: () => {
          const containers = this.sessions.latestFigures();
          this.activeSessions = containers.filter((c) => c.state === 'running').length;
          return { system: systemInfo(), activeSessions: this.activeSessions, containers, activePreviews: this.hosts.activePreviews() };
        },
      },
      onFrame: (frame, conn) => this.onFrame(frame, conn),
    });
  }

  start(): void {
    this.loop.start();
    void this.sessions.refresh();
    this.figuresTimer = setInterval(() => void this.sessions.refresh(), 5_000);
    this.figuresTimer.unref();
  }

  /**
   * A clean stop (SIGTERM, SIGINT): containers keep running, and so do the
   * processes their session daemons run, which the next agent process adopts
   * as after a crash; processes without a daemon end (SessionHosts.leaveAll).
   */
  async stop(): Promise<void> {
    if (this.figuresTimer) clearInterval(this.figuresTimer);
    this.sessions.close();
    await this.hosts.leaveAll();
    await this.loop.stop();
    await this.opts.runtime.close();
  }

  private async hello(): Promise<HelloFrame> {
    const { config, runtime } = this.opts;
    const [docker, sessions] = await Promise.all([runtime.probe(), runtime.list().catch(() => [])]);
    this.activeSessions = sessions.filter((s) => s.state === 'running').length;
    for (const s of sessions) if (s.state === 'running') this.hosts.open(s.sessionId, s.workspace, s.address, s.containerId);
    return {
      type: 'hello',
      protocolVersion: PROTOCOL_VERSION,
      agent: {
        name: config.agentName,
        version: AGENT_VERSION,
        mode: runtime.mode,
        capacity: { maxSessions: config.maxSessions },
        docker,
        system: systemInfo(),
        ...this.sandbox(),
      },
      sessions: sessions.map((s) => ({
        sessionId: s.sessionId,
        userId: s.userId,
        ...(s.containerId ? { containerId: s.containerId } : {}),
        state: s.state,
      })),
    };
  }

  /** What /health's operator view shows about the container boundary. */
  private sandbox(): { egress: 'enforced' | 'unenforced'; isolation: 'container' | 'gvisor' | 'none' } {
    const { runtime } = this.opts;
    return {
      egress: runtime.egress?.() ?? 'unenforced',
      isolation: runtime.isolation ?? (runtime.mode === 'docker' ? 'container' : 'none'),
    };
  }

  private onFrame(frame: EdgeToAgentFrame, conn: EdgeConnection): void {
    switch (frame.type) {
      case 'req':
        void this.dispatcher.handle(frame).then((res) => conn.send(res));
        return;
      case 'error':
        this.opts.logger.warn('edge reported an error', { error: frame.error, id: frame.id });
        return;
      default:
        this.opts.logger.debug('frame from edge', { type: frame.type });
    }
  }
}
