/**
 * The egress policy of the agent's bridge: what a session container may reach.
 *
 * Two chains of our own per bridge, jumped to from the chains Docker leaves
 * to operators and from INPUT, each matching only traffic that enters from
 * this agent's bridge (`-i <bridge>`):
 *
 *   DOCKER-USER -i br-x → MOMINAI-F-x   traffic the host forwards (LAN, metadata, internet)
 *     replies of allowed connections          RETURN
 *     the resolvers, udp/tcp port 53 only     RETURN   (Docker's embedded DNS asks them from the container's namespace)
 *     EGRESS_ALLOW_CIDRS                      RETURN
 *     private, link-local, loopback, CGNAT,
 *     multicast, reserved, the host's own
 *     on-link subnets                         REJECT (icmp-admin-prohibited: "no route to host", at once)
 *     everything else (the internet)          RETURN   (Docker's own rules go on: ICC off, NAT)
 *   INPUT -i br-x → MOMINAI-I-x          traffic addressed to the host itself (the gateway, any host address)
 *     replies of connections the agent opened RETURN   (preview relay, port waits)
 *     the resolvers, port 53                  RETURN   (when a resolver is a host address)
 *     everything else                         REJECT
 *
 * Why here: DOCKER-USER is where Docker expects operators' rules and Docker
 * never flushes it; INPUT is needed too because packets to any of the host's
 * addresses never pass FORWARD. The chain contents are replaced in one
 * `iptables-restore --noflush` transaction, so there is no moment without
 * rules. Containers outlive the agent process (they survive agent restarts by
 * design), so the rules stay while containers are attached to the bridge and
 * are removed on a clean exit once none are; chains of bridges that no longer
 * exist are swept at start. IPv6: the agent's network has IPv6 off and Docker
 * disables IPv6 inside its containers, so fe80::/10 and fc00::/7 have no
 * route from a container at all.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { promisify } from 'node:util';
import { z } from 'zod';
import { jsonText } from '../../../shared/json-text';
import type { Logger } from '../../logger';

/** The resolvers dockerd hands containers, from its daemon.json. */
const DaemonJsonDns = jsonText(z.object({ dns: z.array(z.unknown()).optional() }));

const execFileP = promisify(execFile);

/** Ranges a container never reaches unless EGRESS_ALLOW_CIDRS lists them. Documentation ranges stay open (the npm registry resolves into 203.0.113.0/24 on some networks). */
export const BLOCKED_RANGES = [
  '0.0.0.0/8',
  '10.0.0.0/8',
  '100.64.0.0/10',
  '127.0.0.0/8',
  '169.254.0.0/16',
  '172.16.0.0/12',
  '192.168.0.0/16',
  '224.0.0.0/4',
  '240.0.0.0/4',
] as const;

const REJECT = ['-j', 'REJECT', '--reject-with', 'icmp-admin-prohibited'];

export type Iptables = (args: string[], input?: string) => Promise<string>;

/** Runs `iptables` (or `iptables-restore` when args[0] is `restore`) with the xtables lock. */
export const runIptables: Iptables = async (args, input) => {
  if (args[0] === 'restore') {
    return new Promise((resolve, reject) => {
      const child = execFile('iptables-restore', ['-w', '5', '--noflush'], { timeout: 15_000 }, (err, stdout, stderr) =>
        err ? reject(new Error(`iptables-restore: ${stderr.trim() || err.message}`)) : resolve(stdout),
      );
      child.stdin?.end(input ?? '');
    });
  }
  try {
    const { stdout } = await execFileP('iptables', ['-w', '5', ...args], { timeout: 15_000 });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`iptables ${args.join(' ')}: ${(e.stderr ?? '').trim() || e.message}`);
  }
};

export interface PolicyInput {
  bridge: string;
  resolvers: string[];
  allowCidrs: string[];
  /** Defaults to BLOCKED_RANGES plus the host's on-link subnets. */
  blockCidrs: string[];
}

export interface PolicyRules {
  forwardChain: string;
  inputChain: string;
  /** Rule bodies (what follows `-A <chain>`). */
  forward: string[][];
  input: string[][];
}

export function chainNames(bridge: string): { forwardChain: string; inputChain: string } {
  const id = bridge.replace(/^br-/, '').replace(/[^A-Za-z0-9_.-]/g, '_').slice(-16);
  return { forwardChain: `MOMINAI-F-${id}`, inputChain: `MOMINAI-I-${id}` };
}

export function policyRules(input: PolicyInput): PolicyRules {
  const { forwardChain, inputChain } = chainNames(input.bridge);
  const established = ['-m', 'conntrack', '--ctstate', 'RELATED,ESTABLISHED', '-j', 'RETURN'];
  const dns = input.resolvers.flatMap((r) => [
    ['-d', `${r}/32`, '-p', 'udp', '-m', 'udp', '--dport', '53', '-j', 'RETURN'],
    ['-d', `${r}/32`, '-p', 'tcp', '-m', 'tcp', '--dport', '53', '-j', 'RETURN'],
  ]);
  return {
    forwardChain,
    inputChain,
    forward: [
      established,
      ...dns,
      ...input.allowCidrs.map((c) => ['-d', c, '-j', 'RETURN']),
      ...input.blockCidrs.map((c) => ['-d', c, ...REJECT]),
      ['-j', 'RETURN'],
    ],
    input: [established, ...dns, [...REJECT]],
  };
}

/** The `iptables-restore --noflush` text that (re)fills both chains in one transaction. */
export function restoreScript(rules: PolicyRules): string {
  const lines = ['*filter', `:${rules.forwardChain} - [0:0]`, `:${rules.inputChain} - [0:0]`];
  for (const r of rules.forward) lines.push(`-A ${rules.forwardChain} ${r.join(' ')}`);
  for (const r of rules.input) lines.push(`-A ${rules.inputChain} ${r.join(' ')}`);
  lines.push('COMMIT', '');
  return lines.join('\n');
}

/** IPv4 name servers Docker forwards to: the host's resolv.conf (and systemd-resolved's upstream file), plus daemon.json `dns`. */
export function findResolvers(read: (file: string) => string | undefined = readIfExists): string[] {
  const found = new Set<string>();
  for (const file of ['/etc/resolv.conf', '/run/systemd/resolve/resolv.conf']) {
    for (const line of (read(file) ?? '').split('\n')) {
      const m = /^\s*nameserver\s+(\S+)/.exec(line);
      // Docker never hands a loopback resolver to a container (it falls back to public ones).
      if (m?.[1] && net.isIPv4(m[1]) && !m[1].startsWith('127.')) found.add(m[1]);
    }
  }
  // An unreadable daemon.json, or one without a list of resolvers, names none.
  const daemon = DaemonJsonDns.safeParse(read('/etc/docker/daemon.json') ?? '{}');
  for (const d of daemon.success ? (daemon.data.dns ?? []) : []) if (typeof d === 'string' && net.isIPv4(d)) found.add(d);
  return [...found];
}

/** IPv4 subnets the host is directly attached to, except Docker's bridges (the LAN a container must not scan). */
export function hostSubnets(ifaces: NodeJS.Dict<os.NetworkInterfaceInfo[]> = os.networkInterfaces()): string[] {
  const out = new Set<string>();
  for (const [name, addrs] of Object.entries(ifaces)) {
    if (name === 'lo' || name === 'docker0' || name.startsWith('br-') || name.startsWith('veth')) continue;
    for (const a of addrs ?? []) if (a.family === 'IPv4' && a.cidr && !a.internal) out.add(networkOf(a.cidr));
  }
  return [...out];
}

/** The canonical form of an IPv4 CIDR (host bits cleared), as iptables prints it. */
export function networkOf(cidr: string): string {
  const [addr = '', bitsRaw = '32'] = cidr.split('/');
  const bits = Number(bitsRaw);
  const n = addr.split('.').reduce((acc, o) => acc * 256 + Number(o), 0);
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  const base = (n & mask) >>> 0;
  return `${[24, 16, 8, 0].map((s) => (base >>> s) & 255).join('.')}/${bits}`;
}

function readIfExists(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

export interface EgressPolicyOptions {
  bridge: string;
  allowCidrs: string[];
  logger: Logger;
  iptables?: Iptables;
  resolvers?: string[];
  blockCidrs?: string[];
}

export class EgressPolicy {
  readonly rules: PolicyRules;
  readonly bridge: string;
  private readonly ipt: Iptables;

  constructor(private readonly opts: EgressPolicyOptions) {
    this.ipt = opts.iptables ?? runIptables;
    this.bridge = opts.bridge;
    this.rules = policyRules({
      bridge: opts.bridge,
      resolvers: opts.resolvers ?? findResolvers(),
      allowCidrs: opts.allowCidrs.map(networkOf),
      blockCidrs: opts.blockCidrs ?? [...BLOCKED_RANGES, ...hostSubnets()],
    });
  }

  private jumps(): string[][] {
    const { bridge } = this.opts;
    return [
      ['DOCKER-USER', '-i', bridge, '-j', this.rules.forwardChain],
      ['INPUT', '-i', bridge, '-j', this.rules.inputChain],
    ];
  }

  /** Fills the chains and puts the jumps first in DOCKER-USER and INPUT; then checks every rule is there. */
  async install(): Promise<void> {
    await this.ipt(['restore'], restoreScript(this.rules));
    for (const [chain, ...rule] of this.jumps()) {
      if (!(await this.has(chain!, rule))) await this.ipt(['-I', chain!, '1', ...rule]);
    }
    const missing = await this.missing();
    if (missing.length > 0) throw new Error(`egress rules missing after install: ${missing.join('; ')}`);
    this.opts.logger.info('egress policy installed', {
      bridge: this.opts.bridge,
      chains: [this.rules.forwardChain, this.rules.inputChain],
      rules: this.rules.forward.length + this.rules.input.length,
    });
  }

  /**
   * Rules that should be there and are not (empty when the policy holds), read
   * from one `iptables -S` listing per chain (the rules are written in the
   * form iptables prints them).
   */
  async missing(): Promise<string[]> {
    const { forwardChain, inputChain } = this.rules;
    const wanted = [
      ...this.jumps().map(([chain, ...rule]) => [chain!, rule] as const),
      ...this.rules.forward.map((r) => [forwardChain, r] as const),
      ...this.rules.input.map((r) => [inputChain, r] as const),
    ];
    const listed = new Set<string>();
    for (const chain of ['DOCKER-USER', 'INPUT', forwardChain, inputChain]) {
      const text = await this.ipt(['-S', chain]).catch(() => '');
      for (const line of text.split('\n')) listed.add(line.trim());
    }
    return wanted.map(([chain, rule]) => `-A ${chain} ${rule.join(' ')}`).filter((line) => !listed.has(line));
  }

  /** Cheap check for the hot path: both jumps are in place. */
  async jumpsInPlace(): Promise<boolean> {
    for (const [chain, ...rule] of this.jumps()) if (!(await this.has(chain!, rule))) return false;
    return true;
  }

  async remove(): Promise<void> {
    await removeChains(this.ipt, this.opts.bridge, this.rules.forwardChain, this.rules.inputChain);
    this.opts.logger.info('egress policy removed', { bridge: this.opts.bridge });
  }

  private async has(chain: string, rule: string[]): Promise<boolean> {
    try {
      await this.ipt(['-C', chain, ...rule]);
      return true;
    } catch {
      return false;
    }
  }
}

async function removeChains(ipt: Iptables, bridge: string, forwardChain: string, inputChain: string): Promise<void> {
  for (const [chain, target] of [
    ['DOCKER-USER', forwardChain],
    ['INPUT', inputChain],
  ] as const) {
    // -D removes one copy per call; loop until none is left.
    for (let i = 0; i < 8; i++) {
      try {
        await ipt(['-D', chain, '-i', bridge, '-j', target]);
      } catch {
        break;
      }
    }
    await ipt(['-F', target]).catch(() => undefined);
    await ipt(['-X', target]).catch(() => undefined);
  }
}

/** Removes our chains whose bridge interface no longer exists (left by networks removed while no agent ran). */
export async function sweepStaleChains(
  ipt: Iptables = runIptables,
  bridgeExists: (name: string) => boolean = (name) => fs.existsSync(`/sys/class/net/${name}`),
): Promise<string[]> {
  const swept: string[] = [];
  let listing: string;
  try {
    listing = await ipt(['-S', 'DOCKER-USER']);
  } catch {
    return swept;
  }
  for (const line of listing.split('\n')) {
    const m = /^-A DOCKER-USER -i (\S+) -j (MOMINAI-F-\S+)$/.exec(line.trim());
    if (!m?.[1] || !m[2] || bridgeExists(m[1])) continue;
    await removeChains(ipt, m[1], m[2], m[2].replace('MOMINAI-F-', 'MOMINAI-I-'));
    swept.push(m[1]);
  }
  return swept;
}
