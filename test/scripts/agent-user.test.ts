/** The agent image's choice of user (scripts/agent-user.ts). */
import { describe, expect, it } from 'vitest';
import { agentUser, dockerSocket } from '../../scripts/agent-user';

describe('agentUser', () => {
  it('keeps root while the egress policy is on and AGENT_USER is unset (iptables needs CAP_NET_ADMIN)', () => {
    expect(agentUser({})).toBeUndefined();
    expect(agentUser({ EGRESS_POLICY: 'on' })).toBeUndefined();
  });

  it('drops to 1000:1000 when the egress policy is off', () => {
    expect(agentUser({ EGRESS_POLICY: 'off' })).toEqual({ uid: 1000, gid: 1000 });
  });

  it('follows AGENT_USER whatever the policy: uid, uid:gid, or root', () => {
    expect(agentUser({ AGENT_USER: '1500' })).toEqual({ uid: 1500, gid: 1500 });
    expect(agentUser({ AGENT_USER: '1500:999', EGRESS_POLICY: 'off' })).toEqual({ uid: 1500, gid: 999 });
    expect(agentUser({ AGENT_USER: 'root', EGRESS_POLICY: 'off' })).toBeUndefined();
    expect(agentUser({ AGENT_USER: '0:0', EGRESS_POLICY: 'off' })).toBeUndefined();
  });

  it('refuses a name or anything else, naming the variable', () => {
    expect(() => agentUser({ AGENT_USER: 'node' })).toThrow('AGENT_USER must be uid[:gid] (numbers) or root, not "node"');
    expect(() => agentUser({ AGENT_USER: '1000:' })).toThrow('AGENT_USER must be uid[:gid] (numbers) or root, not "1000:"');
  });
});

describe('dockerSocket', () => {
  it('is the socket DOCKER_HOST names, the default one when unset, and none for TCP', () => {
    expect(dockerSocket({})).toBe('/var/run/docker.sock');
    expect(dockerSocket({ DOCKER_HOST: 'unix:///run/user/1000/docker.sock' })).toBe('/run/user/1000/docker.sock');
    expect(dockerSocket({ DOCKER_HOST: '/var/run/docker.sock' })).toBe('/var/run/docker.sock');
    expect(dockerSocket({ DOCKER_HOST: 'tcp://10.0.0.2:2375' })).toBeUndefined();
  });
});
