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
  ])('fails fast naming the variable: %j', (env, message) => {
    expect(() => loadAgentConfig(env)).toThrow(ConfigError);
    expect(() => loadAgentConfig(env)).toThrow(message);
  });
  it('turns on debug logs with DEBUG=*', () => {
    expect(loadAgentConfig({ ...base, DEBUG: '*' }).logLevel).toBe('debug');
    expect(loadAgentConfig({ ...base, LOG_LEVEL: 'warn' }).logLevel).toBe('warn');
  });
});
