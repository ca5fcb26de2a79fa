import { describe, expect, it } from 'vitest';
import { ConfigError, loadAgentConfig } from '../../agent/config';

describe('agent config', () => {
  const base = { AGENT_TOKEN: 't' };
  it('has documented defaults and is frozen', () => {
    const c = loadAgentConfig({ ...base, AGENT_NAME: 'n' });
    expect(c).toMatchObject({ edgeUrl: 'ws://127.0.0.1:3001', agentName: 'n', maxSessions: 50, cpuLimit: 0.5, memoryLimitBytes: 512 * 1024 ** 2, runtime: 'auto' });
    expect(Object.isFrozen(c)).toBe(true);
  });
  it('turns http(s) edge URLs into ws(s)', () => {
    expect(loadAgentConfig({ ...base, EDGE_URL: 'https://edge.example/' }).edgeUrl).toBe('wss://edge.example');
  });
  it.each([
    [{}, /AGENT_TOKEN/],
    [{ ...base, EDGE_URL: 'ftp://x' }, /EDGE_URL/],
    [{ ...base, EDGE_URL: 'nope' }, /EDGE_URL/],
    [{ ...base, MAX_SESSIONS: '-1' }, /MAX_SESSIONS/],
    [{ ...base, MAX_SESSIONS: '1.5' }, /MAX_SESSIONS/],
    [{ ...base, CONTAINER_CPU_LIMIT: 'lots' }, /CONTAINER_CPU_LIMIT/],
    [{ ...base, CONTAINER_MEMORY_LIMIT: '12q' }, /CONTAINER_MEMORY_LIMIT/],
    [{ ...base, CONTAINER_MEMORY_LIMIT: '1m' }, /CONTAINER_MEMORY_LIMIT/],
    [{ ...base, AGENT_RUNTIME: 'vm' }, /AGENT_RUNTIME/],
    [{ ...base, EGRESS_POLICY: 'maybe' }, /EGRESS_POLICY/],
    [{ ...base, EGRESS_ALLOW_CIDRS: '10.0.0.0/33' }, /EGRESS_ALLOW_CIDRS/],
    [{ ...base, EGRESS_ALLOW_CIDRS: 'registry.lan' }, /EGRESS_ALLOW_CIDRS/],
    [{ ...base, DEFAULT_NETWORK: 'bridge' }, /DEFAULT_NETWORK/],
    [{ ...base, CONTAINER_USER: '0:0' }, /CONTAINER_USER/],
    [{ ...base, CONTAINER_USER: 'node' }, /CONTAINER_USER/],
    [{ ...base, CONTAINER_RUNTIME: 'run sc' }, /CONTAINER_RUNTIME/],
    [{ ...base, SESSION_DAEMON: 'on' }, /SESSION_DAEMON must be auto or off, not "on"/],
    [{ ...base, ALLOWED_IMAGES: 'node:*,bad image' }, /ALLOWED_IMAGES/],
    [{ ...base, MAX_PROCESSES_PER_SESSION: '0' }, /MAX_PROCESSES_PER_SESSION/],
    [{ ...base, WORKSPACE_QUOTA: 'lots' }, /WORKSPACE_QUOTA/],
    [{ ...base, STATE_DIR: '/srv/state', USER_WORKSPACE_BASE: '/srv' }, /USER_WORKSPACE_BASE/],
    [{ ...base, STATE_DIR: '/srv/state', USER_WORKSPACE_BASE: '/srv/state' }, /USER_WORKSPACE_BASE/],
  ])('fails fast naming the variable: %j', (env, message) => {
    expect(() => loadAgentConfig(env)).toThrow(ConfigError);
    expect(() => loadAgentConfig(env)).toThrow(message);
  });
  it('has sandbox defaults: egress policy on, internet, never root, node images, 64 processes, 5g quota, runc, the session daemon', () => {
    const c = loadAgentConfig({ ...base, AGENT_NAME: 'n' });
    expect(c).toMatchObject({
      production: false,
      egressPolicy: 'on',
      egressAllowCidrs: [],
      defaultNetwork: 'internet',
      containerUser: { uid: 1000, gid: 1000 },
      allowRootContainers: false,
      allowedImages: ['node:*', 'node:20-bullseye'],
      containerRuntime: 'runc',
      sessionDaemon: 'auto',
      maxProcessesPerSession: 64,
      workspaceQuotaBytes: 5 * 1024 ** 3,
    });
    expect(loadAgentConfig({ ...base, DEFAULT_IMAGE: 'mominai/node:test' }).allowedImages).toEqual(['node:*', 'mominai/node:test']);
    expect(loadAgentConfig({ ...base, EGRESS_ALLOW_CIDRS: '10.1.0.0/16, 192.168.5.0/24' }).egressAllowCidrs).toEqual(['10.1.0.0/16', '192.168.5.0/24']);
    expect(loadAgentConfig({ ...base, STATE_DIR: '/srv/state', USER_WORKSPACE_BASE: '/srv/state/ws' }).workspaceBase).toBe('/srv/state/ws');
  });
  it('turns on debug logs with DEBUG=*', () => {
    expect(loadAgentConfig({ ...base, DEBUG: '*' }).logLevel).toBe('debug');
    expect(loadAgentConfig({ ...base, LOG_LEVEL: 'warn' }).logLevel).toBe('warn');
  });
});
