/**
 * Per-IP rate limits on the real edge (RateLimiterDO in workerd), with small
 * budgets and a short window so the whole cycle (spend, refuse, reset) fits
 * in a few seconds. Clients are told apart by CF-Connecting-IP, as on
 * Cloudflare; forwarding headers count only with TRUST_PROXY.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, newAccount, type ApiResponse, type AuthBody, type ErrorBody } from '../helpers/client';
import { TestStack } from '../helpers/stack';

const MAX = 5;
const WINDOW_MS = 3000;
const AUTH_MAX = 3;
const AUTH_WINDOW_MS = 60_000;

const limitHeaders = (res: ApiResponse) => ({
  limit: res.headers.get('RateLimit-Limit'),
  remaining: res.headers.get('RateLimit-Remaining'),
  reset: Number(res.headers.get('RateLimit-Reset')),
  retryAfter: res.headers.get('Retry-After'),
});

describe('rate limits on the real edge', () => {
  const stack = new TestStack({
    edgeVars: {
      RATE_LIMIT_MAX: String(MAX),
      RATE_LIMIT_WINDOW_MS: String(WINDOW_MS),
      AUTH_RATE_LIMIT_MAX: String(AUTH_MAX),
      AUTH_RATE_LIMIT_WINDOW_MS: String(AUTH_WINDOW_MS),
    },
  });
  let token: string;
  const asIp = (ip: string, extra: Record<string, string> = {}) => ({ 'CF-Connecting-IP': ip, ...extra });
  const me = (ip: string, extra: Record<string, string> = {}) => call(stack.baseUrl, '/api/auth/me', { token, headers: asIp(ip, extra) });

  beforeAll(async () => {
    await stack.startEdge();
    const reg = await call<AuthBody>(stack.baseUrl, '/api/auth/register', { json: newAccount('limited'), headers: asIp('192.0.2.250') });
    expect(reg.status).toBe(201);
    token = reg.body.token;
  });
  afterAll(async () => {
    await stack.stop();
  });

  describe('the /api budget', () => {
    const ipA = '198.51.100.10';
    let windowOpened = 0;

    it(`lets ${MAX} requests from one IP through, counting down in the headers`, async () => {
      windowOpened = Date.now();
      for (let i = 1; i <= MAX; i++) {
        const res = await me(ipA);
        expect(res.status).toBe(200);
        const h = limitHeaders(res);
        expect(h).toMatchObject({ limit: String(MAX), remaining: String(MAX - i), retryAfter: null });
        expect(h.reset).toBeGreaterThanOrEqual(0);
        expect(h.reset).toBeLessThanOrEqual(WINDOW_MS / 1000);
      }
    });

    it(`refuses request ${MAX + 1} with 429, Retry-After and the error shape`, async () => {
      const res = await me(ipA);
      expect(res.status).toBe(429);
      expect((res.body as ErrorBody).error.code).toBe('rate_limited');
      expect(res.headers.get('Content-Type')).toContain('application/json');
      const h = limitHeaders(res);
      expect(h.limit).toBe(String(MAX));
      expect(h.remaining).toBe('0');
      expect(Number(h.retryAfter)).toBeGreaterThanOrEqual(1);
      expect(Number(h.retryAfter)).toBeLessThanOrEqual(WINDOW_MS / 1000);
      expect(h.reset).toBeLessThanOrEqual(WINDOW_MS / 1000);
      expect(res.headers.get('X-Content-Type-Options')).toBe('nosniff');
    });

    it('refuses every route under /api for that IP, known or not, authenticated or not', async () => {
      expect((await call(stack.baseUrl, '/api/nope', { headers: asIp(ipA) })).status).toBe(429);
      expect((await call(stack.baseUrl, '/api/auth/me', { headers: asIp(ipA) })).status).toBe(429);
    });

    it('ignores X-Forwarded-For and X-Real-IP without TRUST_PROXY', async () => {
      const res = await me(ipA, { 'X-Forwarded-For': '203.0.113.99', 'X-Real-IP': '203.0.113.98' });
      expect(res.status).toBe(429);
    });

    it('leaves another IP unaffected', async () => {
      const res = await me('198.51.100.11');
      expect(res.status).toBe(200);
      expect(limitHeaders(res).remaining).toBe(String(MAX - 1));
    });

    it('does not limit /health', async () => {
      for (let i = 0; i < MAX + 3; i++) {
        const res = await call(stack.baseUrl, '/health', { headers: asIp(ipA) });
        expect(res.status).toBe(200);
        expect(res.headers.get('RateLimit-Limit')).toBeNull();
      }
    });

    it('opens a fresh window once the old one closes, and not before', async () => {
      const deadline = Date.now() + WINDOW_MS + 10_000;
      let res = await me(ipA);
      while (res.status === 429 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
        res = await me(ipA);
      }
      const reopenedAfter = Date.now() - windowOpened;
      expect(res.status).toBe(200);
      expect(reopenedAfter).toBeGreaterThanOrEqual(WINDOW_MS - 250);
      expect(reopenedAfter).toBeLessThan(WINDOW_MS + 5_000);
      // The refused polls spent nothing: this is the first request of the new window.
      expect(limitHeaders(res).remaining).toBe(String(MAX - 1));
    });
  });

  describe('the register/login budget', () => {
    const ipC = '198.51.100.20';

    it(`allows ${AUTH_MAX} login attempts per window, then 429 for login and register alike`, async () => {
      for (let i = 1; i <= AUTH_MAX; i++) {
        const res = await call(stack.baseUrl, '/api/auth/login', { json: { email: 'x@example.com', password: 'wrong-pass' }, headers: asIp(ipC) });
        expect(res.status).toBe(401);
        expect(limitHeaders(res)).toMatchObject({ limit: String(AUTH_MAX), remaining: String(AUTH_MAX - i) });
        expect(limitHeaders(res).reset).toBeGreaterThan(WINDOW_MS / 1000);
      }
      const login = await call<ErrorBody>(stack.baseUrl, '/api/auth/login', { json: { email: 'x@example.com', password: 'wrong-pass' }, headers: asIp(ipC) });
      expect(login.status).toBe(429);
      expect(login.body.error.code).toBe('rate_limited');
      expect(limitHeaders(login).limit).toBe(String(AUTH_MAX));
      expect(Number(login.headers.get('Retry-After'))).toBeGreaterThan(WINDOW_MS / 1000);
      expect(Number(login.headers.get('Retry-After'))).toBeLessThanOrEqual(AUTH_WINDOW_MS / 1000);

      const register = await call<ErrorBody>(stack.baseUrl, '/api/auth/register', { json: newAccount('late'), headers: asIp(ipC) });
      expect(register.status).toBe(429);
      // A percent-encoded path routes to login, so it spends the same budget.
      const encoded = await call(stack.baseUrl, '/api/auth/%6Cogin', { json: { email: 'x@example.com', password: 'wrong-pass' }, headers: asIp(ipC) });
      expect(encoded.status).toBe(429);
    });

    it('still lets that IP use the rest of the API', async () => {
      const res = await me(ipC);
      expect(res.status).toBe(200);
      expect(limitHeaders(res).limit).toBe(String(MAX));
    });

    it('routes a percent-encoded login path to login (so the check above is about the budget)', async () => {
      const res = await call(stack.baseUrl, '/api/auth/%6Cogin', { json: { email: 'x@example.com', password: 'wrong-pass' }, headers: asIp('198.51.100.22') });
      expect(res.status).toBe(401);
    });

    it('leaves another IP its own login budget', async () => {
      const res = await call(stack.baseUrl, '/api/auth/login', { json: { email: 'x@example.com', password: 'wrong-pass' }, headers: asIp('198.51.100.21') });
      expect(res.status).toBe(401);
      expect(limitHeaders(res).remaining).toBe(String(AUTH_MAX - 1));
    });
  });
});

describe('rate limits behind a trusted proxy (TRUST_PROXY=1)', () => {
  const stack = new TestStack({ edgeVars: { TRUST_PROXY: '1', RATE_LIMIT_MAX: '2', RATE_LIMIT_WINDOW_MS: '60000' } });
  beforeAll(async () => {
    await stack.startEdge();
  });
  afterAll(async () => {
    await stack.stop();
  });

  it('tells clients apart by X-Real-IP, else by the last X-Forwarded-For hop', async () => {
    const hit = (headers: Record<string, string>) => call(stack.baseUrl, '/api/nope', { headers });
    expect((await hit({ 'X-Real-IP': '203.0.113.1' })).status).toBe(404);
    expect((await hit({ 'X-Real-IP': '203.0.113.1' })).status).toBe(404);
    expect((await hit({ 'X-Real-IP': '203.0.113.1' })).status).toBe(429);
    // The same client seen through X-Forwarded-For, whatever it put in front.
    expect((await hit({ 'X-Forwarded-For': '10.0.0.1, 203.0.113.1' })).status).toBe(429);
    // A different last hop is a different client, even with the limited one claimed first.
    expect((await hit({ 'X-Forwarded-For': '203.0.113.1, 203.0.113.2' })).status).toBe(404);
  });
});
