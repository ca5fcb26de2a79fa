/**
 * One host per running session on this agent: the session's data socket to
 * its Session DO (../connection/session-link.ts), the dispatcher for requests
 * on it, and the session's process manager. Hosts open when a session runs
 * (created, started, or found running at start-up) and close when it stops
 * or goes away, killing what still runs in it. When the agent itself stops,
 * hosts are left instead (leaveAll): what the session daemon runs stays.
 */
import { FrameKind } from '../../shared/protocol/binary';
import { StreamAbort } from '../../shared/protocol/files';
import { QUOTA_EVENT, type QuotaEvent } from '../../shared/protocol/quota';
import { AckEvent } from '../../shared/protocol/session-data';
import { Dispatcher } from '../connection/dispatcher';
import { SessionLink } from '../connection/session-link';
import type { Logger } from '../logger';
import type { Runtime } from '../runtime/runtime';
import { FileRequests } from './file-requests';
import { daemonListListening } from '../runtime/daemon/list-listening';
import { execListListening } from './preview/proc-net';
import { PreviewService } from './preview/preview-service';
import { ProcessManager } from './processes/process-manager';
import { ByteStreams } from './streams/byte-streams';
import { WorkspaceQuota } from './workspace-quota';

export interface SessionHostsOptions {
  runtime: Runtime;
  logger: Logger;
  edgeUrl: string;
  token: string;
  maxFileSize: number;
  /** Per-session caps (see agent/config.ts); absent ones keep the services' defaults. */
  limits?: Partial<SessionCaps>;
  /** A workspace went far past its quota: stop the session's container. */
  onQuotaExceeded?: (sessionId: string) => void;
}

export interface SessionCaps {
  maxProcesses: number;
  maxWatches: number;
  maxPreviewWaits: number;
  maxPreviewSockets: number;
  workspaceQuotaBytes: number;
  /** How often the workspace is measured (default 10 s). */
  quotaIntervalMs: number;
}

interface Host {
  link: SessionLink;
  processes: ProcessManager;
  files: FileRequests;
  previews: PreviewService;
  quota: WorkspaceQuota | undefined;
}

export class SessionHosts {
  private readonly hosts = new Map<string, Host>();

  constructor(private readonly opts: SessionHostsOptions) {}

  /**
   * Opens the host of a running session (idempotent); `workspace` is its folder on
   * this host, `address` where its servers listened when it started (the
   * container's IP) and `containerId` the container that runs it. Previews
   * never trust that address for long: see liveTarget.
   */
  open(sessionId: string, workspace: string, address: string | undefined, containerId?: string): void {
    if (this.hosts.has(sessionId)) return;
    const { runtime, edgeUrl, token } = this.opts;
    const logger = this.opts.logger.child({ sessionId });
    const dispatcher = new Dispatcher(logger);
    const caps = this.opts.limits ?? {};
    const processes = new ProcessManager({ runtime, sessionId, logger, ...(caps.maxProcesses ? { maxRunning: caps.maxProcesses } : {}) });
    processes.register(dispatcher);
    const streams = new ByteStreams();
    let sendEvent: (event: string, data: unknown) => boolean = () => false;
    let bufferedAmount: () => number = () => 0;
    const events = { send: (event: string, data: unknown) => sendEvent(event, data) };
    const quota = caps.workspaceQuotaBytes
      ? new WorkspaceQuota({
          root: workspace,
          quotaBytes: caps.workspaceQuotaBytes,
          logger,
          ...(caps.quotaIntervalMs ? { intervalMs: caps.quotaIntervalMs } : {}),
          onWarning: (diskUsed, quota) => events.send(QUOTA_EVENT, { action: 'warning', diskUsed, quota } satisfies QuotaEvent),
          onExceeded: (diskUsed, quota) => {
            events.send(QUOTA_EVENT, { action: 'stopped', diskUsed, quota } satisfies QuotaEvent);
            this.opts.onQuotaExceeded?.(sessionId);
          },
        })
      : undefined;
    const files = new FileRequests({
      root: workspace,
      logger,
      streams,
      events,
      maxFileSize: this.opts.maxFileSize,
      ...(quota ? { quota } : {}),
      ...(caps.maxWatches ? { maxWatches: caps.maxWatches } : {}),
    });
    files.register(dispatcher);
    const previews = new PreviewService({
      sessionId,
      logger,
      streams,
      events,
      target: () => this.liveTarget(sessionId, containerId, address),
      listListening: daemonListListening(runtime, sessionId, execListListening(runtime, sessionId, { includeLoopback: runtime.mode === 'local' })),
      allowLoopback: runtime.mode === 'local',
      dataBuffered: () => bufferedAmount(),
      ...(caps.maxPreviewSockets ? { maxActive: caps.maxPreviewSockets } : {}),
      ...(caps.maxPreviewWaits ? { maxWaits: caps.maxPreviewWaits } : {}),
    });
    previews.register(dispatcher);
    const link = new SessionLink({
      edgeUrl,
      token,
      sessionId,
      dispatcher,
      logger,
      handlers: {
        onAttach: (sink) => {
          sendEvent = (event, data) => sink.sendEvent(event, data);
          bufferedAmount = () => sink.bufferedAmount;
          streams.attach(sink);
          processes.attach(sink);
        },
        onDetach: () => {
          sendEvent = () => false;
          streams.detach();
          processes.detach();
        },
        onBinary: (frame) => {
          if (frame.kind === FrameKind.Input) processes.onBinary(frame);
          else if (!streams.onBinary(frame) && !previews.onBinary(frame)) logger.debug('frame for no stream', { kind: frame.kind, streamId: frame.streamId });
        },
        onEvent: (event, data) => {
          if (event === 'ack') {
            const ack = AckEvent.safeParse(data);
            if (!ack.success) return logger.warn('bad ack from edge', { data });
            if (!streams.onAck(ack.data.streamId, ack.data.offset)) processes.onAck(ack.data.streamId, ack.data.offset);
          } else if (previews.onEvent(event, data)) {
            return;
          } else if (event === 'stream.abort') {
            const abort = StreamAbort.safeParse(data);
            if (abort.success && !streams.abortOutgoing(abort.data.streamId)) streams.abortIncoming(abort.data.streamId);
          } else {
            logger.debug('unhandled data-socket event', { event });
          }
        },
      },
    });
    const host = { link, processes, files, previews, quota };
    this.hosts.set(sessionId, host);
    // Processes that outlived a previous agent are known before the socket's proc.state lists them.
    void processes.adopt().finally(() => {
      if (this.hosts.get(sessionId) === host) link.start();
    });
    previews.start();
    quota?.start();
  }

  /**
   * Where the session's servers listen now, read from the runtime (cached
   * for a second by the preview's TargetGuard): the same container that the
   * host was opened for, running, with its address now. Null otherwise, so a
   * container that died (and whose address Docker may hand to another
   * tenant's container) is never a preview target; the host of a container
   * that stops is closed at once as well (SessionService).
   */
  private async liveTarget(sessionId: string, containerId: string | undefined, opened: string | undefined): Promise<{ address: string; declaredPorts: number[] } | null> {
    const now = (await this.opts.runtime.list()).find((s) => s.sessionId === sessionId);
    if (!now || now.state !== 'running') return null;
    if (containerId && now.containerId !== containerId) return null;
    const address = now.address ?? (this.opts.runtime.mode === 'local' ? opened : undefined);
    return address ? { address, declaredPorts: [] } : null;
  }

  /** Closes a session's host: its processes are killed and its data socket closed. */
  async close(sessionId: string): Promise<void> {
    const host = this.take(sessionId);
    if (!host) return;
    await host.processes.close().catch((err: unknown) => this.opts.logger.warn('closing processes failed', { sessionId, error: err }));
    await this.shut(host);
  }

  /**
   * Agent shutdown: each session's data socket closes and the containers
   * keep running. Processes that outlive the agent (run by the session
   * daemon) keep running too, for the next agent process to adopt; the
   * others (docker exec, local mode) are killed, as at a session stop.
   */
  async leaveAll(): Promise<void> {
    await Promise.all(
      [...this.hosts.keys()].map(async (sessionId) => {
        const host = this.take(sessionId);
        if (!host) return;
        const left = await host.processes.leave().catch((err: unknown) => {
          this.opts.logger.warn('leaving processes failed', { sessionId, error: err });
          return undefined;
        });
        await this.shut(host);
        if (left) this.opts.logger.info('left the session', { sessionId, ...left });
      }),
    );
  }

  private take(sessionId: string): Host | undefined {
    const host = this.hosts.get(sessionId);
    this.hosts.delete(sessionId);
    return host;
  }

  private async shut(host: Host): Promise<void> {
    await host.files.close();
    host.quota?.close();
    host.previews.stop();
    host.link.close();
  }

  /** The workspace bytes last measured for a running session (undefined when not measured). */
  diskUsed(sessionId: string): number | undefined {
    return this.hosts.get(sessionId)?.quota?.diskUsed;
  }

  /** Relayed preview requests and sockets open now, over every session. */
  activePreviews(): number {
    let n = 0;
    for (const h of this.hosts.values()) n += h.previews.activeCount();
    return n;
  }

  get size(): number {
    return this.hosts.size;
  }
}
