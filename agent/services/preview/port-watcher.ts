/**
 * Watches which TCP ports listen in a session by polling a lister (see
 * ./proc-net.ts). While started it reports each change: `open` for a port it
 * has not reported yet (every listening port on the first poll after start),
 * `close` for a reported port that went away. A failed poll changes nothing:
 * a slow or failing exec must not make every port flap closed and open.
 */
import type { Logger } from '../../logger';

export interface PortWatcherOptions {
  list: () => Promise<number[]>;
  onChange: (port: number, state: 'open' | 'close') => void;
  logger: Logger;
  pollMs: number;
  now?: () => number;
}

export class PortWatcher {
  /** The last successful listing. */
  private known = new Set<number>();
  private knownAt = Number.NEGATIVE_INFINITY;
  /** What onChange has been told since start(). */
  private readonly reported = new Set<number>();
  private inflight: Promise<ReadonlySet<number>> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private started = false;
  /** Bumped by start() and stop(), so a poll that outlives a stop cannot revive an old loop. */
  private generation = 0;
  private failures = 0;
  private readonly now: () => number;

  constructor(private readonly opts: PortWatcherOptions) {
    this.now = opts.now ?? Date.now;
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    this.tick(++this.generation);
  }

  /** Stops polling; the next start() reports every listening port afresh. */
  stop(): void {
    this.started = false;
    this.generation++;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.reported.clear();
  }

  /** Ports listening at the last successful poll. */
  get ports(): ReadonlySet<number> {
    return this.known;
  }

  /**
   * The listening ports, polled now unless the last listing is younger than
   * `maxAgeMs`. Concurrent callers share one poll.
   */
  refresh(maxAgeMs = 0): Promise<ReadonlySet<number>> {
    if (this.now() - this.knownAt <= maxAgeMs) return Promise.resolve(this.known);
    this.inflight ??= this.opts
      .list()
      .then(
        (ports) => {
          this.failures = 0;
          this.known = new Set(ports);
          this.knownAt = this.now();
          this.report();
          return this.known;
        },
        (err: unknown) => {
          // The first failure in a row is worth a warning; repeats (a stopped container) are noise.
          const fields = { error: err instanceof Error ? err.message : String(err) };
          if (this.failures++ === 0) this.opts.logger.warn('listing listening ports failed', fields);
          else this.opts.logger.debug('listing listening ports failed', fields);
          return this.known;
        },
      )
      .finally(() => (this.inflight = undefined));
    return this.inflight;
  }

  private tick(generation: number): void {
    void this.refresh().then(() => {
      if (generation !== this.generation) return;
      this.timer = setTimeout(() => this.tick(generation), this.opts.pollMs);
      this.timer.unref();
    });
  }

  private report(): void {
    if (!this.started) return;
    const gone = [...this.reported].filter((p) => !this.known.has(p)).sort((a, b) => a - b);
    const added = [...this.known].filter((p) => !this.reported.has(p)).sort((a, b) => a - b);
    for (const port of gone) {
      this.reported.delete(port);
      this.emit(port, 'close');
    }
    for (const port of added) {
      this.reported.add(port);
      this.emit(port, 'open');
    }
  }

  private emit(port: number, state: 'open' | 'close'): void {
    try {
      this.opts.onChange(port, state);
    } catch (err) {
      this.opts.logger.warn('port change handler failed', { port, state, error: err });
    }
  }
}
