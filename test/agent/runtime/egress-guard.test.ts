/**
 * The egress guard against this host's real firewall (iptables, nf_tables,
 * as root): after installing its policy it asks iptables again only when the
 * ruleset changed (xtables-monitor reports every change), re-installs a jump
 * someone removed, and without the monitor checks before every container.
 * The bridge name is made up: rules for an interface that does not exist
 * match nothing, so the host's traffic is untouched. Skips where this
 * process cannot change the firewall, except under REQUIRE_DOCKER=1 (CI).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type Docker from 'dockerode';
import { afterEach, describe, expect, it } from 'vitest';
import { EgressGuard } from '../../../agent/runtime/docker/egress-guard';
import { EgressPolicy, runIptables } from '../../../agent/runtime/docker/egress-policy';
import { memoryLogger } from '../../../agent/logger';
import { requireDocker } from '../../helpers/docker';
import { poll } from '../../helpers/wait';
import { canMakeNamespaces } from './netns';

const run = promisify(execFile);
const canFirewall = await canMakeNamespaces();
if (requireDocker && !canFirewall) throw new Error('REQUIRE_DOCKER=1 but this process cannot use iptables as root');

const tag = Math.random().toString(16).slice(2, 10);
const bridge = `br-eg${tag}`;
/** The agent's network as the guard sees it: a name and a bridge, no engine behind it. */
const network = { name: `mominai-eg-${tag}`, info: async () => ({ name: `mominai-eg-${tag}`, bridge }) };

describe.skipIf(!canFirewall)('egress guard on the real firewall', () => {
  const guards: EgressGuard[] = [];
  const policy = new EgressPolicy({ bridge, allowCidrs: [], logger: memoryLogger('error') });
  const jumps = [`-C DOCKER-USER -i ${bridge} -j ${policy.rules.forwardChain}`, `-C INPUT -i ${bridge} -j ${policy.rules.inputChain}`];

  /** A guard whose iptables calls are counted (the real iptables underneath). */
  function makeGuard(monitorCommand?: readonly string[]) {
    const calls: string[] = [];
    const iptables = (args: string[], input?: string) => {
      calls.push(args.join(' '));
      return runIptables(args, input);
    };
    const guard = new EgressGuard(
      { allowCidrs: [], iptables, production: true, monitorCommand: monitorCommand ?? ['stdbuf', '-oL', 'xtables-monitor', '--event'] },
      // The engine is asked only by close(), which these tests do not call.
      { docker: {} as Docker, network, logger: memoryLogger('error') },
    );
    guards.push(guard);
    return { guard, calls };
  }
  /** Runs the guard; resolves with the iptables calls it made. */
  async function guardCalls(g: { guard: EgressGuard; calls: string[] }): Promise<string[]> {
    const before = g.calls.length;
    await g.guard.guard();
    return g.calls.slice(before);
  }

  afterEach(async () => {
    for (const g of guards.splice(0)) g.stopWatching();
    await policy.remove();
  });

  it('asks iptables again only when the ruleset changed, and puts back a removed jump', async () => {
    const g = makeGuard();
    await g.guard.guard(); // installs
    expect(g.guard.state).toBe('enforced');
    expect(g.calls).toContain('restore');
    // Once the watch has seen the install's own changes, a guard costs no iptables call.
    await poll(async () => ((await guardCalls(g)).length === 0 ? true : undefined), 'a guard that asks iptables nothing');
    expect(await guardCalls(g)).toEqual([]);
    expect(await guardCalls(g)).toEqual([]);

    await run('iptables', ['-w', '5', '-D', 'DOCKER-USER', '-i', bridge, '-j', policy.rules.forwardChain]);
    expect(await policy.jumpsInPlace()).toBe(false);
    // As soon as the watch reports the removal, the next guard checks, finds the jump gone and installs again.
    const seen = await poll(async () => {
      const made = await guardCalls(g);
      return made.length > 0 ? made : undefined;
    }, 'a guard that noticed the removed jump');
    expect(seen[0]).toBe(jumps[0]);
    expect(seen.filter((c) => c === 'restore')).toEqual(['restore']);
    expect(await policy.jumpsInPlace()).toBe(true);
  });

  it('checks both jumps before every container when changes cannot be watched', async () => {
    const g = makeGuard(['/nonexistent/xtables-monitor']);
    await g.guard.guard();
    expect(g.guard.state).toBe('enforced');
    expect(await guardCalls(g)).toEqual(jumps);
    expect(await guardCalls(g)).toEqual(jumps);
  });
});
