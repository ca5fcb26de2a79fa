/**
 * Stays connected: dials with EdgeConnection, and when the socket drops or a
 * dial fails, waits a jittered exponential backoff (capped) and dials again.
 * Every successful connect re-announces the agent's state in its hello, which
 * is built fresh for each attempt.
 */
import { Backoff } from '../../shared/backoff';
import type { EdgeToAgentFrame } from '../../shared/protocol/tunnel';
import type { Logger } from '../logger';
import { metrics } from '../metrics/agent-metrics';
import { ConnectError, EdgeConnection, type EdgeConnectionOptions } from './edge-connection';

export interface ReconnectLoopOptions {
  connection: Omit<EdgeConnectionOptions, 'logger'>;
  logger: Logger;
  onFrame: (frame: EdgeToAgentFrame, conn: EdgeConnection) => void;
  onBinary?: (bytes: Uint8Array, conn: EdgeConnection) => void;
  onConnected?: (conn: EdgeConnection) => void;
  onDisconnected?: () => void;
  backoff?: Backoff;
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

export class ReconnectLoop {
  private readonly abort = new AbortController();
  private current: EdgeConnection | undefined;
  /** The connection being dialled, until the edge welcomes it (or the dial fails). */
  private dialing: EdgeConnection | undefined;
  private running: Promise<void> | undefined;
  private readonly backoff: Backoff;

  constructor(private readonly opts: ReconnectLoopOptions) {
    this.backoff = opts.backoff ?? new Backoff({ baseMs: 250, capMs: 5_000 });
  }

  get connection(): EdgeConnection | undefined {
    return this.current;
  }

  start(): void {
    this.running ??= this.loop();
  }

  async stop(): Promise<void> {
    this.abort.abort();
    (this.current ?? this.dialing)?.close(1001, 'agent shutting down');
    await this.running;
  }

  private async loop(): Promise<void> {
    const { logger } = this.opts;
    const sleep = this.opts.sleep ?? abortableSleep;
    while (!this.abort.signal.aborted) {
      const conn = new EdgeConnection({ ...this.opts.connection, logger });
      const closed = new Promise<{ code: number; reason: string }>((resolve) => conn.once('close', resolve));
      // Listen before connecting: the edge may send a request right behind its welcome, in the same read.
      conn.on('frame', (f) => this.opts.onFrame(f, conn));
      conn.on('binary', (b) => this.opts.onBinary?.(b, conn));
      this.dialing = conn;
      try {
        const welcome = await conn.connect();
        this.dialing = undefined;
        if (this.abort.signal.aborted) {
          // Stopped while dialling (the hello still being built, say): this connection is not wanted.
          conn.close(1001, 'agent shutting down');
          break;
        }
        this.backoff.reset();
        this.current = conn;
        metrics.tunnelUp();
        logger.info('connected to edge', { agentId: welcome.agentId, heartbeatIntervalMs: welcome.heartbeatIntervalMs });
        this.opts.onConnected?.(conn);
        const { code, reason } = await closed;
        this.current = undefined;
        metrics.tunnelDown();
        this.opts.onDisconnected?.();
        if (this.abort.signal.aborted) break;
        logger.warn('connection to edge lost', { code, reason });
      } catch (err) {
        this.dialing = undefined;
        if (this.abort.signal.aborted) break;
        const e = err instanceof ConnectError ? err : new ConnectError(String(err));
        const refused = e.status === 401 || e.status === 403;
        (refused ? logger.error : logger.warn)(refused ? 'edge refused this agent' : 'cannot connect to edge', {
          reason: e.message,
          status: e.status,
          code: e.code,
        });
      }
      metrics.tunnelReconnects.inc();
      const wait = this.backoff.next();
      logger.info('reconnecting', { inMs: wait, attempt: this.backoff.attempts });
      await sleep(wait, this.abort.signal);
    }
  }
}

function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
