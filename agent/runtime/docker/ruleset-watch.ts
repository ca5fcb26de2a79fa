/**
 * Tells the egress guard whether the host's firewall has changed since it
 * last checked it, so the check (two `iptables -C` processes, 40-100 ms on a
 * busy two-core host: most of a warm-pool claim) runs only when something
 * changed. `xtables-monitor --event` (iptables' nf_tables tools) prints a
 * line for every change to the ruleset, by anyone; every line bumps
 * `generation`. A check that began at generation g and found the jumps in
 * place is still true while the generation is g.
 *
 * The watch is trusted only once it has printed a line (it subscribes to the
 * kernel's events asynchronously, and the guard's own install makes changes,
 * so the first install proves it live). When the tool is missing (legacy
 * iptables has no monitor), stops, or was never live, `unchangedSince` says
 * false and the guard checks every time, as it did before.
 *
 * xtables-monitor buffers its output when it writes to a pipe, so it runs
 * under `stdbuf -oL` (coreutils): one line per change, at once.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import readline from 'node:readline';
import type { Logger } from '../../logger';

export const RULESET_MONITOR_CMD = ['stdbuf', '-oL', 'xtables-monitor', '--event'] as const;

export class RulesetWatch {
  private child: ChildProcess | undefined;
  private live = false;
  private changes = 0;

  constructor(
    private readonly logger: Logger,
    private readonly command: readonly string[] = RULESET_MONITOR_CMD,
  ) {}

  /** Starts the monitor (once); never throws: without it every guard checks. */
  start(): void {
    if (this.child) return;
    const [cmd, ...args] = this.command;
    const child = spawn(cmd!, args, { stdio: ['ignore', 'pipe', 'ignore'] });
    this.child = child;
    child.on('error', (err) => {
      this.stopped();
      this.logger.info('firewall changes are not watched; the egress guard checks iptables before every container', { error: err.message });
    });
    child.on('exit', (code, signal) => {
      if (this.child !== child) return;
      const wasLive = this.live;
      this.stopped();
      const log = wasLive ? this.logger.warn.bind(this.logger) : this.logger.info.bind(this.logger);
      log('the firewall watch ended; the egress guard checks iptables before every container', { code, signal });
    });
    // The agent's exit must not wait for the monitor.
    child.unref();
    if (child.stdout instanceof net.Socket) child.stdout.unref();
    if (child.stdout) {
      readline.createInterface({ input: child.stdout }).on('line', () => {
        this.changes++;
        this.live = true;
      });
    }
  }

  /** A count of changes seen so far: capture it before a check, pass it to `unchangedSince` later. */
  get generation(): number {
    return this.changes;
  }

  /** True when the watch is live and has seen no change since `generation` was read. */
  unchangedSince(generation: number | undefined): boolean {
    return this.live && generation === this.changes;
  }

  stop(): void {
    const child = this.child;
    this.stopped();
    child?.kill('SIGTERM');
  }

  private stopped(): void {
    this.child = undefined;
    this.live = false;
  }
}
