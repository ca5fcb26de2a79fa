/**
 * One host per running session on this agent: the session's data socket to
 * its Session DO (../connection/session-link.ts), the dispatcher for requests
 * on it, and the session's process manager. Hosts open when a session runs
 * (created, started, or found running at start-up) and close when it stops
 * or goes away, killing what still runs in it.
 */
import { AckEvent } from '../../shared/protocol/session-data';
import { Dispatcher } from '../connection/dispatcher';
import { SessionLink } from '../connection/session-link';
import type { Logger } from '../logger';
import type { Runtime } from '../runtime/runtime';
import { ProcessManager } from './processes/process-manager';

export interface SessionHostsOptions {
  runtime: Runtime;
  logger: Logger;
  edgeUrl: string;
  token: string;
}

interface Host {
  link: SessionLink;
  processes: ProcessManager;
}

export class SessionHosts {
  private readonly hosts = new Map<string, Host>();

  constructor(private readonly opts: SessionHostsOptions) {}

  /** Opens the host of a running session (idempotent). */
  open(sessionId: string): void {
    if (this.hosts.has(sessionId)) return;
    const { runtime, edgeUrl, token } = this.opts;
    const logger = this.opts.logger.child({ sessionId });
    const dispatcher = new Dispatcher(logger);
    const processes = new ProcessManager({ runtime, sessionId, logger });
    processes.register(dispatcher);
    const link = new SessionLink({
      edgeUrl,
      token,
      sessionId,
      dispatcher,
      logger,
      handlers: {
        onAttach: (sink) => processes.attach(sink),
        onDetach: () => processes.detach(),
        onBinary: (frame) => processes.onBinary(frame),
        onEvent: (event, data) => {
          if (event === 'ack') {
            const ack = AckEvent.safeParse(data);
            if (ack.success) processes.onAck(ack.data.streamId, ack.data.offset);
            else logger.warn('bad ack from edge', { data });
          } else {
            logger.debug('unhandled data-socket event', { event });
          }
        },
      },
    });
    this.hosts.set(sessionId, { link, processes });
    link.start();
  }

  /** Closes a session's host: its processes are killed and its data socket closed. */
  async close(sessionId: string): Promise<void> {
    const host = this.hosts.get(sessionId);
    if (!host) return;
    this.hosts.delete(sessionId);
    await host.processes.close().catch((err: unknown) => this.opts.logger.warn('closing processes failed', { sessionId, error: err }));
    host.link.close();
  }

  async closeAll(): Promise<void> {
    await Promise.all([...this.hosts.keys()].map((id) => this.close(id)));
  }

  get size(): number {
    return this.hosts.size;
  }
}
