import { describe, expect, it } from 'vitest';
import { loadConfig, parseDurationSeconds } from '../../edge/config';

const secrets = { AGENT_SECRET: 'a'.repeat(40), JWT_SECRET: 'j'.repeat(40) };
const load = (vars: Record<string, string>) => loadConfig({ ...secrets, ...vars });

describe('edge config: auth and rate-limit settings', () => {
  it('has the documented defaults', () => {
    const c = load({});
    expect(c.jwtTtlSeconds).toBe(86_400);
    expect(c.rateLimit).toEqual({ max: 100, windowMs: 900_000 });
    expect(c.authRateLimit).toEqual({ max: 10, windowMs: 60_000 });
    expect(c.trustProxy).toBe(false);
    expect(c.corsOrigins).toEqual(['http://localhost:*', 'http://127.0.0.1:*']);
    expect(c.maxBodyBytes).toBe(1_048_576);
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('allows no cross-origin caller by default in production', () => {
    expect(load({ NODE_ENV: 'production' }).corsOrigins).toEqual([]);
  });

  it('reads JWT_TTL as seconds or 30m / 24h / 7d', () => {
    expect(parseDurationSeconds('3600')).toBe(3600);
    expect(parseDurationSeconds('90s')).toBe(90);
    expect(parseDurationSeconds('30m')).toBe(1800);
    expect(parseDurationSeconds('24h')).toBe(86_400);
    expect(parseDurationSeconds('7d')).toBe(604_800);
    expect(parseDurationSeconds('1w')).toBeUndefined();
    expect(parseDurationSeconds('-5')).toBeUndefined();
    expect(load({ JWT_TTL: '30m' }).jwtTtlSeconds).toBe(1800);
  });

  it.each([
    ['JWT_TTL', 'forever', /JWT_TTL/],
    ['JWT_TTL', '5', /JWT_TTL/],
    ['RATE_LIMIT_MAX', '0', /RATE_LIMIT_MAX must be an integer/],
    ['RATE_LIMIT_WINDOW_MS', '1.5', /RATE_LIMIT_WINDOW_MS/],
    ['AUTH_RATE_LIMIT_MAX', 'ten', /AUTH_RATE_LIMIT_MAX/],
    ['TRUST_PROXY', 'maybe', /TRUST_PROXY must be true or false/],
    ['MAX_BODY_BYTES', '10', /MAX_BODY_BYTES/],
    ['JWT_SECRET', 'short', /JWT_SECRET must be set/],
  ])('fails fast naming %s when it is "%s"', (name, value, message) => {
    expect(() => load({ [name]: value })).toThrow(message);
  });

  it('refuses a development JWT secret in production', () => {
    expect(() => load({ NODE_ENV: 'production', JWT_SECRET: `dev-${'x'.repeat(40)}` })).toThrow(/JWT_SECRET is a development secret/);
  });

  it('parses TRUST_PROXY and CORS_ORIGINS', () => {
    expect(load({ TRUST_PROXY: '1' }).trustProxy).toBe(true);
    expect(load({ TRUST_PROXY: 'true' }).trustProxy).toBe(true);
    expect(load({ CORS_ORIGINS: ' https://a.example , https://b.example ,' }).corsOrigins).toEqual(['https://a.example', 'https://b.example']);
  });
});

describe('edge config: operator and fleet settings', () => {
  it('has the documented defaults', () => {
    const c = load({});
    expect(c.operatorToken).toBeNull();
    expect(c.agentMaxSessions).toBe(50);
    expect(c.allowLocalAgents).toBe(true);
    expect(load({ NODE_ENV: 'production' }).allowLocalAgents).toBe(false);
  });

  it('reads OPERATOR_TOKEN, AGENT_MAX_SESSIONS and ALLOW_LOCAL_AGENTS', () => {
    const c = load({ OPERATOR_TOKEN: 'o'.repeat(32), AGENT_MAX_SESSIONS: '3', ALLOW_LOCAL_AGENTS: '0' });
    expect(c.operatorToken).toBe('o'.repeat(32));
    expect(c.agentMaxSessions).toBe(3);
    expect(c.allowLocalAgents).toBe(false);
    expect(load({ NODE_ENV: 'production', ALLOW_LOCAL_AGENTS: '1' }).allowLocalAgents).toBe(true);
  });

  it.each([
    ['OPERATOR_TOKEN', 'short', /OPERATOR_TOKEN must be set to a secret of at least 32 characters/],
    ['AGENT_MAX_SESSIONS', '-1', /AGENT_MAX_SESSIONS must be an integer from 0 to 100000/],
    ['ALLOW_LOCAL_AGENTS', 'sometimes', /ALLOW_LOCAL_AGENTS must be true or false/],
  ])('fails fast naming %s when it is "%s"', (name, value, message) => {
    expect(() => load({ [name]: value })).toThrow(message);
  });

  it('refuses a development operator token in production', () => {
    expect(() => load({ NODE_ENV: 'production', OPERATOR_TOKEN: `dev-${'x'.repeat(40)}` })).toThrow(/OPERATOR_TOKEN is a development secret/);
  });
});
