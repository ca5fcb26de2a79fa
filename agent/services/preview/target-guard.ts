/**
 * The SSRF guard of the preview relay. A preview connection goes to exactly
 * one place: the session's container address, as the runtime reports it,
 * and a port that is declared for the session or seen listening in it.
 * Nothing in a request names a host; the address must be an IP literal (no
 * DNS lookup can redirect it) and never an unspecified, link-local,
 * multicast or broadcast one (cloud metadata services live at 169.254.169.254).
 */
import { BlockList, isIP } from 'node:net';
import { AppError, ErrorCode } from '../../../shared/errors';
import type { PortWatcher } from './port-watcher';

export interface SessionTarget {
  address: string;
  declaredPorts: number[];
}

export interface TargetGuardOptions {
  target: () => Promise<SessionTarget | null>;
  watcher: PortWatcher;
  /** How long a looked-up target is reused (default 1 s): a page load makes hundreds of requests. */
  ttlMs?: number;
  /** How old a port listing may be before a request for an unlisted port polls again (default 250 ms). */
  listingMaxAgeMs?: number;
  /**
   * Whether a loopback address is a valid target (default true: the local
   * runtime's sessions live at 127.0.0.1). With Docker, pass false.
   */
  allowLoopback?: boolean;
  now?: () => number;
}

export class TargetGuard {
  private fromEdge = new Set<number>();
  private cached: { value: SessionTarget | null; at: number } | undefined;
  private inflight: Promise<SessionTarget | null> | undefined;
  private readonly ttlMs: number;
  private readonly now: () => number;

  constructor(private readonly opts: TargetGuardOptions) {
    this.ttlMs = opts.ttlMs ?? 1_000;
    this.now = opts.now ?? Date.now;
  }

  /** Replaces the ports the DO declared for the session. */
  declare(ports: number[]): void {
    this.fromEdge = new Set(ports);
  }

  /** Declared ports: the DO's and those the runtime knows from the session's spec. */
  declared(target: SessionTarget | null): Set<number> {
    return new Set([...this.fromEdge, ...(target?.declaredPorts ?? [])]);
  }

  /** Forget the cached target (the container did not answer: it may have restarted elsewhere). */
  invalidate(): void {
    this.cached = undefined;
  }

  /** The session's target, cached for ttlMs; concurrent callers share one lookup. */
  async target(): Promise<SessionTarget | null> {
    if (this.cached && this.now() - this.cached.at < this.ttlMs) return this.cached.value;
    this.inflight ??= this.opts
      .target()
      .then((value) => {
        if (value) checkTargetAddress(value.address, this.opts.allowLoopback ?? true);
        this.cached = { value, at: this.now() };
        return value;
      })
      .finally(() => (this.inflight = undefined));
    return this.inflight;
  }

  /**
   * The address to connect to for `port`, or an AppError: agent_unavailable
   * when the session runs nowhere, forbidden for a port neither declared nor
   * listening. A port that started listening since the last poll is found by
   * polling again, so a request right after `ports.wait` is not refused.
   */
  async resolve(port: number): Promise<string> {
    const target = await this.target();
    if (!target) throw new AppError(ErrorCode.AgentUnavailable, "the session's container is not running");
    if (this.declared(target).has(port) || this.opts.watcher.ports.has(port)) return target.address;
    const listening = await this.opts.watcher.refresh(this.opts.listingMaxAgeMs ?? 250);
    if (listening.has(port)) return target.address;
    throw new AppError(ErrorCode.Forbidden, `port ${port} is neither declared for the session nor listening in it`, { port });
  }
}

// 0/8 is "this host" (0.0.0.0 reaches the host itself); 169.254/16 and fe80::/10 are link-local,
// where metadata services answer; 224/3 is multicast, reserved and broadcast. BlockList also
// matches IPv4-mapped IPv6 forms (::ffff:169.254.169.254) against the IPv4 rules.
const NEVER = new BlockList();
NEVER.addSubnet('0.0.0.0', 8, 'ipv4');
NEVER.addSubnet('169.254.0.0', 16, 'ipv4');
NEVER.addSubnet('224.0.0.0', 3, 'ipv4');
NEVER.addAddress('::', 'ipv6');
NEVER.addSubnet('fe80::', 10, 'ipv6');
NEVER.addSubnet('ff00::', 8, 'ipv6');
const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/** Refuses an address the relay must never connect to; see the module comment. */
export function checkTargetAddress(address: string, allowLoopback = true): void {
  const family = isIP(address);
  const refuse = (why: string) => {
    throw new AppError(ErrorCode.Forbidden, `the session's address ${JSON.stringify(address)} is ${why}`);
  };
  if (family === 0) refuse('not an IP address');
  const type = family === 4 ? 'ipv4' : 'ipv6';
  if (NEVER.check(address, type)) refuse('not a unicast address a container can have');
  if (!allowLoopback && LOOPBACK.check(address, type)) refuse('a loopback address');
}
