/** The sandbox's pure pieces: egress rules, image policy, start-up refusals (no engine, fake iptables). */
import Docker from 'dockerode';
import { describe, expect, it } from 'vitest';
import { loadAgentConfig } from '../../../agent/config';
import { createLogger } from '../../../agent/logger';
import { createRuntime, StartupRefused } from '../../../agent/runtime/create-runtime';
import {
  BLOCKED_RANGES,
  chainNames,
  EgressPolicy,
  findResolvers,
  hostSubnets,
  networkOf,
  policyRules,
  restoreScript,
  sweepStaleChains,
  type Iptables,
} from '../../../agent/runtime/docker/egress-policy';
import { checkImageAllowed, imageMatches, isInternalRegistry, registryHost } from '../../../agent/runtime/docker/image-policy';

const logger = createLogger({ level: 'error', base: {} });

describe('egress rules', () => {
  const rules = policyRules({ bridge: 'br-0123456789ab', resolvers: ['10.255.255.53'], allowCidrs: ['10.9.0.0/16'], blockCidrs: [...BLOCKED_RANGES] });

  it('writes allowed CIDRs in the canonical form iptables prints', () => {
    expect(networkOf('10.9.1.7/16')).toBe('10.9.0.0/16');
    expect(networkOf('192.168.5.0/24')).toBe('192.168.5.0/24');
  });

  it('names one forward and one input chain per bridge', () => {
    expect(chainNames('br-0123456789ab')).toEqual({ forwardChain: 'MOMINAI-F-0123456789ab', inputChain: 'MOMINAI-I-0123456789ab' });
  });
  it('lets replies, the resolvers on port 53 and allowed CIDRs through before any block, and ends with the internet', () => {
    expect(rules.forward.map((r) => r.join(' '))).toEqual([
      '-m conntrack --ctstate RELATED,ESTABLISHED -j RETURN',
      '-d 10.255.255.53/32 -p udp -m udp --dport 53 -j RETURN',
      '-d 10.255.255.53/32 -p tcp -m tcp --dport 53 -j RETURN',
      '-d 10.9.0.0/16 -j RETURN',
      ...BLOCKED_RANGES.map((c) => `-d ${c} -j REJECT --reject-with icmp-admin-prohibited`),
      '-j RETURN',
    ]);
  });
  it('closes the host itself to the bridge except replies and DNS', () => {
    expect(rules.input.map((r) => r.join(' '))).toEqual([
      '-m conntrack --ctstate RELATED,ESTABLISHED -j RETURN',
      '-d 10.255.255.53/32 -p udp -m udp --dport 53 -j RETURN',
      '-d 10.255.255.53/32 -p tcp -m tcp --dport 53 -j RETURN',
      '-j REJECT --reject-with icmp-admin-prohibited',
    ]);
  });
  it('blocks private, link-local and CGNAT ranges but no documentation range', () => {
    expect(BLOCKED_RANGES).toEqual(expect.arrayContaining(['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10', '169.254.0.0/16']));
    expect(BLOCKED_RANGES.some((c) => /^(192\.0\.2|198\.51\.100|203\.0\.113)\./.test(c))).toBe(false);
  });
  it('fills both chains in one iptables-restore transaction', () => {
    const text = restoreScript(rules);
    expect(text.split('\n').slice(0, 3)).toEqual(['*filter', ':MOMINAI-F-0123456789ab - [0:0]', ':MOMINAI-I-0123456789ab - [0:0]']);
    expect(text.trimEnd().endsWith('COMMIT')).toBe(true);
  });
  it('finds the resolvers Docker forwards to, skipping loopback ones', () => {
    const files: Record<string, string> = {
      '/etc/resolv.conf': 'search x\nnameserver 10.255.255.53\nnameserver 127.0.0.53\nnameserver fd00::1\n',
      '/etc/docker/daemon.json': '{"dns": ["169.254.169.253"]}',
    };
    expect(findResolvers((f) => files[f])).toEqual(['10.255.255.53', '169.254.169.253']);
  });
  it("adds the host's on-link subnets but not Docker's bridges", () => {
    const iface = (address: string, cidr: string) => ({ address, cidr, family: 'IPv4' as const, internal: false, mac: '', netmask: '' });
    expect(hostSubnets({ eth0: [iface('192.0.2.2', '192.0.2.2/24')], docker0: [iface('172.17.0.1', '172.17.0.1/16')], 'br-1': [iface('172.28.0.1', '172.28.0.1/16')] })).toEqual([
      '192.0.2.0/24',
    ]);
  });
  it('installs, verifies and reports rules that did not stick', async () => {
    const calls: string[] = [];
    const present = new Set<string>();
    const ipt: Iptables = async (args, input) => {
      calls.push(args.join(' '));
      if (args[0] === 'restore') {
        for (const line of (input ?? '').split('\n')) if (line.startsWith('-A ')) present.add(line.slice(3));
        return '';
      }
      const [op, ...rest] = args;
      if (op === '-S') return [...present].filter((r) => r.startsWith(`${rest[0]} `)).map((r) => `-A ${r}`).join('\n');
      if (op === '-C') {
        if (!present.has(rest.join(' '))) throw new Error('no such rule');
        return '';
      }
      if (op === '-I') present.add([rest[0], ...rest.slice(2)].join(' '));
      return '';
    };
    const policy = new EgressPolicy({ bridge: 'br-0123456789ab', allowCidrs: [], logger, iptables: ipt, resolvers: [], blockCidrs: ['10.0.0.0/8'] });
    await policy.install();
    expect(calls).toContain('-I DOCKER-USER 1 -i br-0123456789ab -j MOMINAI-F-0123456789ab');
    expect(calls).toContain('-I INPUT 1 -i br-0123456789ab -j MOMINAI-I-0123456789ab');
    expect(await policy.missing()).toEqual([]);
    present.delete('MOMINAI-F-0123456789ab -d 10.0.0.0/8 -j REJECT --reject-with icmp-admin-prohibited');
    expect(await policy.missing()).toEqual(['-A MOMINAI-F-0123456789ab -d 10.0.0.0/8 -j REJECT --reject-with icmp-admin-prohibited']);
    present.delete('DOCKER-USER -i br-0123456789ab -j MOMINAI-F-0123456789ab');
    expect(await policy.jumpsInPlace()).toBe(false);
  });
  it('sweeps chains of bridges that are gone', async () => {
    const calls: string[] = [];
    const ipt: Iptables = async (args) => {
      calls.push(args.join(' '));
      if (args[0] === '-S') return '-N DOCKER-USER\n-A DOCKER-USER -i br-gone00000000 -j MOMINAI-F-gone00000000\n-A DOCKER-USER -i br-here -j MOMINAI-F-here\n-A DOCKER-USER -j RETURN\n';
      if (args[0] === '-D' && calls.filter((c) => c === args.join(' ')).length > 1) throw new Error('gone');
      return '';
    };
    expect(await sweepStaleChains(ipt, (name) => name === 'br-here')).toEqual(['br-gone00000000']);
    expect(calls).toContain('-X MOMINAI-F-gone00000000');
    expect(calls).toContain('-X MOMINAI-I-gone00000000');
    expect(calls.some((c) => c.includes('MOMINAI-F-here') && !c.startsWith('-S'))).toBe(false);
  });
});

describe('image policy', () => {
  it('matches patterns with * and an implied :latest', () => {
    expect(imageMatches('node:20-bullseye', 'node:*')).toBe(true);
    expect(imageMatches('evil/node:20', 'node:*')).toBe(false);
    expect(() => checkImageAllowed('node', ['node:*'])).not.toThrow();
  });
  it('refuses what no pattern matches with image_not_allowed', () => {
    expect(() => checkImageAllowed('alpine:3', ['node:*'])).toThrow(expect.objectContaining({ code: 'image_not_allowed' }));
  });
  it('refuses registries on loopback, private or link-local addresses whatever the patterns say', () => {
    expect(registryHost('localhost:5000/node:20')).toBe('localhost:5000');
    expect(registryHost('node:20')).toBeUndefined();
    expect(registryHost('library/node:20')).toBeUndefined();
    for (const host of ['localhost:5000', '127.0.0.1:5000', '10.1.2.3', '192.168.1.5:5000', '169.254.169.254', '[::1]:5000', 'registry.internal']) {
      expect(isInternalRegistry(host), host).toBe(true);
    }
    expect(isInternalRegistry('ghcr.io')).toBe(false);
    expect(() => checkImageAllowed('10.0.0.5:5000/node:20', ['*'])).toThrow(/loopback or private address/);
  });
});

describe('start-up refusals', () => {
  const env = { AGENT_TOKEN: 't', STATE_DIR: '/tmp/mominai-refusal-test' };
  const deadDocker = () => new Docker({ socketPath: '/nonexistent/docker.sock' });

  it('refuses local mode by accident in production', async () => {
    const config = loadAgentConfig({ ...env, NODE_ENV: 'production' });
    await expect(createRuntime({ config, logger, dockerFactory: deadDocker })).rejects.toThrow(StartupRefused);
    await expect(createRuntime({ config, logger, dockerFactory: deadDocker })).rejects.toThrow(/AGENT_RUNTIME=local/);
  });
  it('falls back to local mode in development, and in production when AGENT_RUNTIME=local says so', async () => {
    const dev = await createRuntime({ config: loadAgentConfig(env), logger, dockerFactory: deadDocker });
    expect(dev.mode).toBe('local');
    const chosen = await createRuntime({
      config: loadAgentConfig({ ...env, NODE_ENV: 'production', AGENT_RUNTIME: 'local', USER_WORKSPACE_BASE: '/tmp/mominai-refusal-ws' }),
      logger,
      dockerFactory: deadDocker,
    });
    expect(chosen.mode).toBe('local');
    expect(chosen.egress?.()).toBe('unenforced');
  });
  it('refuses production local mode with workspaces inside STATE_DIR, beside secrets.json', async () => {
    const config = loadAgentConfig({ ...env, NODE_ENV: 'production', AGENT_RUNTIME: 'local' });
    await expect(createRuntime({ config, logger, dockerFactory: deadDocker })).rejects.toThrow(/USER_WORKSPACE_BASE .* is inside STATE_DIR/);
  });
});

describe('agent capacity', () => {
  it('counts running sessions only: a stopped one does not hold a place', async () => {
    const { Dispatcher } = await import('../../../agent/connection/dispatcher');
    const { SessionService } = await import('../../../agent/services/sessions');
    const sessions = [{ sessionId: 'ses_00000001', userId: 'u1', state: 'stopped' as const, workspace: '/w/1' }];
    const created: string[] = [];
    const runtime = {
      mode: 'docker' as const,
      list: async () => sessions,
      create: async (spec: { sessionId: string; userId: string }) => {
        created.push(spec.sessionId);
        return { sessionId: spec.sessionId, userId: spec.userId, state: 'running' as const, workspace: '/w/2' };
      },
    };
    const service = new SessionService({
      runtime: runtime as unknown as ConstructorParameters<typeof SessionService>[0]['runtime'],
      config: { maxSessions: 1, cpuLimit: 0.5, memoryLimitBytes: 1 << 28, pidsLimit: 64, keepWorkspaces: false },
      logger,
    });
    const dispatcher = new Dispatcher(logger);
    service.register(dispatcher);
    const create = (sessionId: string) =>
      dispatcher.handle({ type: 'req', id: sessionId, method: 'session.create', params: { sessionId, userId: 'u1', image: 'node:20', env: [], ports: [], limits: {} } });
    expect(await create('ses_00000002')).toMatchObject({ ok: true, result: { sessionId: 'ses_00000002', state: 'running' } });
    sessions.push({ sessionId: 'ses_00000002', userId: 'u1', state: 'running' as never, workspace: '/w/2' });
    expect(await create('ses_00000003')).toMatchObject({ ok: false, error: { code: 'no_capacity' } });
    expect(created).toEqual(['ses_00000002']);
  });
});
