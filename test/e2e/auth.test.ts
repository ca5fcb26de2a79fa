/**
 * Accounts on the real edge (workerd under wrangler dev, real local D1):
 * register, log in, /api/auth/me, persistence across an edge restart, and the
 * front door every response passes (security headers, CORS).
 */
import { jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, median, newAccount, type AuthBody, type ErrorBody } from '../helpers/client';
import { d1Execute } from '../helpers/d1';
import { TestStack } from '../helpers/stack';

const ALLOWED_ORIGIN = 'https://ide.example.com';

describe('accounts on the real edge', () => {
  const stack = new TestStack({ edgeVars: { RATE_LIMIT_MAX: '10000', AUTH_RATE_LIMIT_MAX: '10000', CORS_ORIGINS: ALLOWED_ORIGIN } });
  const alice = newAccount('alice');
  let registered: AuthBody;

  beforeAll(async () => {
    await stack.startEdge();
  });
  afterAll(async () => {
    await stack.stop();
  });

  describe('POST /api/auth/register', () => {
    it('creates the user and answers 201 in the seed shape with a user token', async () => {
      const res = await call<AuthBody>(stack.baseUrl, '/api/auth/register', { json: { ...alice, email: alice.email.toUpperCase() } });
      expect(res.status).toBe(201);
      expect(Object.keys(res.body).sort()).toEqual(['message', 'token', 'user']);
      expect(res.body.message).toBe('User created successfully');
      expect(res.body.user).toEqual({ id: expect.stringMatching(/^usr_[0-9a-f]{24}$/), email: alice.email, username: alice.username });
      registered = res.body;

      const { payload, protectedHeader } = await jwtVerify(res.body.token, new TextEncoder().encode(stack.secrets.JWT_SECRET), {
        algorithms: ['HS256'],
      });
      expect(protectedHeader).toMatchObject({ alg: 'HS256', typ: 'user' });
      expect(payload).toMatchObject({ iss: 'mominai-edge', aud: 'mominai:user', sub: res.body.user.id });
      expect(payload.exp! - payload.iat!).toBe(24 * 3600);
    });

    it('stores a PBKDF2 hash, never the password, and the email lowercased', async () => {
      const rows = await d1Execute<{ email: string; username: string; password_hash: string; created_at: string }>(
        stack.stateDir,
        `SELECT email, username, password_hash, created_at FROM users WHERE id = '${registered.user.id}'`,
      );
      expect(rows).toHaveLength(1);
      expect(rows[0]!.email).toBe(alice.email);
      expect(rows[0]!.password_hash).toMatch(/^pbkdf2-sha256\$100000\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/);
      expect(rows[0]!.password_hash).not.toContain(alice.password);
      expect(Date.parse(rows[0]!.created_at)).toBeGreaterThan(Date.now() - 120_000);
    });
  });

  describe('POST /api/auth/login', () => {
    it('returns a token for the right password, whatever the email case', async () => {
      const res = await call<AuthBody>(stack.baseUrl, '/api/auth/login', {
        json: { email: alice.email.replace(/^a/, 'A'), password: alice.password },
      });
      expect(res.status).toBe(200);
      expect(res.body.message).toEqual(expect.any(String));
      expect(res.body.user).toEqual(registered.user);
      expect(res.body.token.split('.')).toHaveLength(3);
    });

    it('gives a wrong password and an unknown email the same 401, after about the same time', async () => {
      const wrong = () => call<ErrorBody>(stack.baseUrl, '/api/auth/login', { json: { email: alice.email, password: 'not-the-password' } });
      const unknown = () => call<ErrorBody>(stack.baseUrl, '/api/auth/login', { json: { email: 'nobody@example.com', password: 'not-the-password' } });
      const [a, b] = [await wrong(), await unknown()];
      expect(a.status).toBe(401);
      expect(b.status).toBe(401);
      expect(a.body).toEqual(b.body);
      expect(a.body.error.code).toBe('invalid_credentials');

      const timeOf = async (f: () => Promise<unknown>) => {
        const t = performance.now();
        await f();
        return performance.now() - t;
      };
      const wrongTimes: number[] = [];
      const unknownTimes: number[] = [];
      for (let i = 0; i < 7; i++) {
        wrongTimes.push(await timeOf(wrong));
        unknownTimes.push(await timeOf(unknown));
      }
      // Both run one 100,000-round PBKDF2; skipping it for unknown emails would make them several times faster.
      expect(median(unknownTimes)).toBeGreaterThan(median(wrongTimes) * 0.5);
      expect(median(wrongTimes)).toBeGreaterThan(median(unknownTimes) * 0.5);
    });
  });

  describe('GET /api/auth/me', () => {
    it('answers the current user for a valid token', async () => {
      const res = await call(stack.baseUrl, '/api/auth/me', { token: registered.token });
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ user: registered.user });
    });

    it('accepts the scheme name in any case, as RFC 6750 allows', async () => {
      const res = await call(stack.baseUrl, '/api/auth/me', { headers: { Authorization: `bearer ${registered.token}` } });
      expect(res.status).toBe(200);
    });

    it("refuses a valid token once its user has been deleted", async () => {
      const bob = newAccount('bob');
      const reg = await call<AuthBody>(stack.baseUrl, '/api/auth/register', { json: bob });
      expect(reg.status).toBe(201);
      expect((await call(stack.baseUrl, '/api/auth/me', { token: reg.body.token })).status).toBe(200);
      await d1Execute(stack.stateDir, `DELETE FROM users WHERE id = '${reg.body.user.id}'`);
      const res = await call<ErrorBody>(stack.baseUrl, '/api/auth/me', { token: reg.body.token });
      expect(res.status).toBe(401);
      expect(res.body.error.code).toBe('invalid_token');
    });
  });

  describe('persistence', () => {
    it('keeps users and accepts their tokens after the edge restarts', async () => {
      const port = stack.port;
      await stack.stopEdge();
      await expect(fetch(`${stack.baseUrl}/health`)).rejects.toThrow();
      await stack.startEdge();
      expect(stack.port).toBe(port);

      const me = await call(stack.baseUrl, '/api/auth/me', { token: registered.token });
      expect(me.status).toBe(200);
      expect(me.body).toEqual({ user: registered.user });
      const login = await call<AuthBody>(stack.baseUrl, '/api/auth/login', { json: { email: alice.email, password: alice.password } });
      expect(login.status).toBe(200);
      expect(login.body.user.id).toBe(registered.user.id);
      const again = await call<ErrorBody>(stack.baseUrl, '/api/auth/register', { json: alice });
      expect(again.status).toBe(409);
    });
  });

  describe('front door', () => {
    const securityHeaders = {
      'x-content-type-options': 'nosniff',
      'x-frame-options': 'DENY',
      'referrer-policy': 'no-referrer',
      'strict-transport-security': expect.stringContaining('max-age='),
      'content-security-policy': expect.stringContaining("default-src 'none'"),
      'cross-origin-opener-policy': 'same-origin',
    };

    it.each([
      ['a success', '/api/auth/me', true],
      ['an error', '/api/auth/me', false],
      ['an unknown route', '/nowhere', false],
      ['/health', '/health', false],
    ])('puts the security headers on %s', async (_name, path, withToken) => {
      const res = await call(stack.baseUrl, path, withToken ? { token: registered.token } : {});
      const headers: Record<string, string> = {};
      res.headers.forEach((value, name) => (headers[name] = value));
      expect(headers).toMatchObject(securityHeaders);
      expect(res.headers.get('x-powered-by')).toBeNull();
    });

    it('answers a preflight from an allowed origin with 204 and what it may send', async () => {
      const res = await call(stack.baseUrl, '/api/auth/register', {
        method: 'OPTIONS',
        headers: { Origin: ALLOWED_ORIGIN, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'content-type,authorization' },
      });
      expect(res.status).toBe(204);
      expect(res.headers.get('access-control-allow-origin')).toBe(ALLOWED_ORIGIN);
      expect(res.headers.get('access-control-allow-methods')).toContain('POST');
      expect(res.headers.get('access-control-allow-headers')?.toLowerCase()).toContain('authorization');
      expect(res.headers.get('access-control-allow-credentials')).toBeNull();
      expect(res.headers.get('vary')).toContain('Origin');
    });

    it('gives a preflight from any other origin no Access-Control-Allow-Origin', async () => {
      for (const origin of ['https://evil.example', 'http://localhost:5173', 'null']) {
        const res = await call(stack.baseUrl, '/api/auth/register', {
          method: 'OPTIONS',
          headers: { Origin: origin, 'Access-Control-Request-Method': 'POST' },
        });
        expect(res.headers.get('access-control-allow-origin')).toBeNull();
      }
    });

    it('lets an allowed origin read responses, including the rate-limit headers', async () => {
      const res = await call(stack.baseUrl, '/api/auth/me', { token: registered.token, headers: { Origin: ALLOWED_ORIGIN } });
      expect(res.headers.get('access-control-allow-origin')).toBe(ALLOWED_ORIGIN);
      expect(res.headers.get('access-control-expose-headers')).toContain('RateLimit-Remaining');
      const other = await call(stack.baseUrl, '/api/auth/me', { token: registered.token, headers: { Origin: 'https://evil.example' } });
      expect(other.headers.get('access-control-allow-origin')).toBeNull();
    });
  });
});
