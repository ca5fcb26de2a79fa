/**
 * The bad-input suite against the real edge: every case below gets exactly
 * its documented status and error code in the one error shape, and none gets
 * a user in or a row written. Rate limits are raised so the suite measures
 * validation, not throttling (test/e2e/rate-limit.test.ts covers those).
 */
import { SignJWT, exportSPKI, generateKeyPair } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signToken } from '../../edge/auth/tokens';
import { call, newAccount, type AuthBody, type ErrorBody, type RequestOptions } from '../helpers/client';
import { d1Execute } from '../helpers/d1';
import { TestStack } from '../helpers/stack';

const stack = new TestStack({ edgeVars: { RATE_LIMIT_MAX: '100000', AUTH_RATE_LIMIT_MAX: '100000' } });
const existing = newAccount('taken');
let user: AuthBody['user'];

const b64url = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
const enc = (s: string) => new TextEncoder().encode(s);
const nowS = () => Math.floor(Date.now() / 1000);

/** A token shaped exactly like the edge's user tokens, with parts overridden. */
async function userLike(
  opts: { secret?: string | Uint8Array; alg?: string; typ?: string | null; aud?: string; iss?: string; sub?: string | null; exp?: number; nbf?: number } = {},
): Promise<string> {
  const header: { alg: string; typ?: string } = { alg: opts.alg ?? 'HS256' };
  if (opts.typ !== null) header.typ = opts.typ ?? 'user';
  let jwt = new SignJWT({})
    .setProtectedHeader(header)
    .setIssuer(opts.iss ?? 'mominai-edge')
    .setAudience(opts.aud ?? 'mominai:user')
    .setIssuedAt()
    .setExpirationTime(opts.exp ?? nowS() + 3600);
  if (opts.sub !== null) jwt = jwt.setSubject(opts.sub ?? user.id);
  if (opts.nbf !== undefined) jwt = jwt.setNotBefore(opts.nbf);
  const secret = opts.secret ?? stack.secrets.JWT_SECRET;
  return jwt.sign(typeof secret === 'string' ? enc(secret) : secret);
}

interface Case {
  name: string;
  path: string;
  /** Built when the case runs (tokens need the stack and the existing user). */
  request: () => Promise<RequestOptions> | RequestOptions;
  status: number;
  code: string;
  /** Extra check on the error details. */
  details?: (details: unknown) => void;
}

const register = (json: unknown): Pick<Case, 'path' | 'request'> => ({ path: '/api/auth/register', request: () => ({ json }) });
const login = (json: unknown): Pick<Case, 'path' | 'request'> => ({ path: '/api/auth/login', request: () => ({ json }) });
const me = (request: Case['request']): Pick<Case, 'path' | 'request'> => ({ path: '/api/auth/me', request });
const meWithToken = (token: () => Promise<string>): Pick<Case, 'path' | 'request'> => me(async () => ({ token: await token() }));
const meWithHeader = (value: string): Pick<Case, 'path' | 'request'> => me(() => ({ headers: { Authorization: value } }));
const valid = () => newAccount('fresh');
const fieldsNamed = (...fields: string[]) => (details: unknown) => expect(details).toEqual({ fields });
const issueAt = (path: string) => (details: unknown) =>
  expect((details as { issues: Array<{ path: string }> }).issues.map((i) => i.path)).toContain(path);

const tokenCases: Case[] = [
  { name: 'no Authorization header', ...me(() => ({})), status: 401, code: 'unauthorized' },
  { name: 'Basic credentials', ...meWithHeader('Basic dXNlcjpwYXNz'), status: 401, code: 'unauthorized' },
  { name: '"Bearer" with no token', ...meWithHeader('Bearer'), status: 401, code: 'unauthorized' },
  { name: '"Bearer" and spaces', ...meWithHeader('Bearer    '), status: 401, code: 'unauthorized' },
  { name: 'two tokens', ...meWithHeader('Bearer aaa.bbb.ccc ddd.eee.fff'), status: 401, code: 'unauthorized' },
  { name: 'another scheme name', ...meWithHeader('Token abc.def.ghi'), status: 401, code: 'unauthorized' },
  { name: 'characters no token has', ...meWithHeader('Bearer {"alg":"none"}'), status: 401, code: 'unauthorized' },
  { name: 'a 10 KB header', ...meWithHeader(`Bearer ${'a'.repeat(10_000)}`), status: 401, code: 'unauthorized' },
  { name: 'a token that is not a JWT', ...meWithHeader('Bearer not-a-jwt'), status: 401, code: 'invalid_token' },
  { name: 'three parts of garbage', ...meWithHeader('Bearer aaa.bbb.ccc'), status: 401, code: 'invalid_token' },
  {
    name: 'a header that is not JSON',
    ...meWithToken(async () => `${Buffer.from('not json').toString('base64url')}.${b64url({ sub: user.id })}.sig`),
    status: 401,
    code: 'invalid_token',
  },
  {
    name: 'alg "none" (unsigned)',
    ...meWithToken(async () =>
      `${b64url({ alg: 'none', typ: 'user' })}.${b64url({ iss: 'mominai-edge', aud: 'mominai:user', sub: user.id, exp: nowS() + 3600 })}.`,
    ),
    status: 401,
    code: 'invalid_token',
  },
  {
    name: 'alg "none" with the real signature kept',
    ...meWithToken(async () => {
      const [, payload, sig] = (await userLike()).split('.');
      return `${b64url({ alg: 'none', typ: 'user' })}.${payload}.${sig}`;
    }),
    status: 401,
    code: 'invalid_token',
  },
  { name: 'forged with the wrong key', ...meWithToken(() => userLike({ secret: 'x'.repeat(48) })), status: 401, code: 'invalid_token' },
  { name: 'signed with AGENT_SECRET', ...meWithToken(() => userLike({ secret: stack.secrets.AGENT_SECRET })), status: 401, code: 'invalid_token' },
  { name: 'HS512 with the right secret', ...meWithToken(() => userLike({ alg: 'HS512' })), status: 401, code: 'invalid_token' },
  {
    name: 'RS256 with a generated key pair',
    ...meWithToken(async () => userLike({ alg: 'RS256', secret: (await generateKeyPair('RS256')).privateKey as unknown as Uint8Array })),
    status: 401,
    code: 'invalid_token',
  },
  {
    name: 'ES256 with a generated key pair',
    ...meWithToken(async () => userLike({ alg: 'ES256', secret: (await generateKeyPair('ES256')).privateKey as unknown as Uint8Array })),
    status: 401,
    code: 'invalid_token',
  },
  {
    name: 'HS256 keyed with a public key PEM (RS/HS confusion)',
    ...meWithToken(async () => userLike({ secret: await exportSPKI((await generateKeyPair('RS256', { extractable: true })).publicKey) })),
    status: 401,
    code: 'invalid_token',
  },
  { name: 'expired', ...meWithToken(() => userLike({ exp: nowS() - 3600 })), status: 401, code: 'token_expired' },
  {
    name: 'expired, from signToken with an old clock',
    ...meWithToken(() => signToken({ secret: stack.secrets.JWT_SECRET, typ: 'user', sub: user.id, ttlSeconds: 60, now: Date.now() - 86_400_000 })),
    status: 401,
    code: 'token_expired',
  },
  { name: 'not valid before an hour from now (nbf)', ...meWithToken(() => userLike({ nbf: nowS() + 3600 })), status: 401, code: 'invalid_token' },
  { name: 'an agent join token', ...meWithToken(() => stack.agentToken({ id: user.id })), status: 401, code: 'invalid_token' },
  {
    name: 'an agent-typed token signed with JWT_SECRET',
    ...meWithToken(() => signToken({ secret: stack.secrets.JWT_SECRET, typ: 'agent', sub: user.id, ttlSeconds: 600 })),
    status: 401,
    code: 'invalid_token',
  },
  {
    name: 'a preview ticket signed with JWT_SECRET',
    ...meWithToken(() => signToken({ secret: stack.secrets.JWT_SECRET, typ: 'preview', sub: user.id, ttlSeconds: 600 })),
    status: 401,
    code: 'invalid_token',
  },
  { name: 'typ "JWT"', ...meWithToken(() => userLike({ typ: 'JWT' })), status: 401, code: 'invalid_token' },
  { name: 'no typ', ...meWithToken(() => userLike({ typ: null })), status: 401, code: 'invalid_token' },
  { name: 'wrong audience', ...meWithToken(() => userLike({ aud: 'mominai:agent' })), status: 401, code: 'invalid_token' },
  { name: 'wrong issuer', ...meWithToken(() => userLike({ iss: 'someone-else' })), status: 401, code: 'invalid_token' },
  { name: 'no subject', ...meWithToken(() => userLike({ sub: null })), status: 401, code: 'invalid_token' },
  { name: 'a user that does not exist', ...meWithToken(() => userLike({ sub: 'usr_000000000000000000000000' })), status: 401, code: 'invalid_token' },
  { name: 'a SQL-looking subject', ...meWithToken(() => userLike({ sub: "' OR 1=1--" })), status: 401, code: 'invalid_token' },
];

const bodyCases: Case[] = [
  { name: 'register: empty object', ...register({}), status: 400, code: 'validation_failed', details: issueAt('email') },
  { name: 'register: no password', ...register({ email: 'a@example.com', username: 'abc' }), status: 400, code: 'validation_failed', details: issueAt('password') },
  { name: 'register: no username', ...register({ email: 'a@example.com', password: 'password1' }), status: 400, code: 'validation_failed', details: issueAt('username') },
  { name: 'register: email is a number', ...register({ ...valid(), email: 42 }), status: 400, code: 'validation_failed', details: issueAt('email') },
  { name: 'register: password is a number', ...register({ ...valid(), password: 12345678 }), status: 400, code: 'validation_failed', details: issueAt('password') },
  { name: 'register: username is an array', ...register({ ...valid(), username: ['abc'] }), status: 400, code: 'validation_failed', details: issueAt('username') },
  { name: 'register: password is null', ...register({ ...valid(), password: null }), status: 400, code: 'validation_failed', details: issueAt('password') },
  { name: 'register: body is an array', ...register([valid()]), status: 400, code: 'validation_failed' },
  { name: 'register: body is a string', ...register('hello'), status: 400, code: 'validation_failed' },
  { name: 'register: body is null', ...register(null), status: 400, code: 'validation_failed' },
  { name: 'register: email without @', ...register({ ...valid(), email: 'not-an-email' }), status: 400, code: 'validation_failed', details: issueAt('email') },
  { name: 'register: email without a domain dot', ...register({ ...valid(), email: 'a@b' }), status: 400, code: 'validation_failed' },
  { name: 'register: email with no local part', ...register({ ...valid(), email: '@example.com' }), status: 400, code: 'validation_failed' },
  { name: 'register: email with two @', ...register({ ...valid(), email: 'a@@example.com' }), status: 400, code: 'validation_failed' },
  { name: 'register: email with a space', ...register({ ...valid(), email: 'a b@example.com' }), status: 400, code: 'validation_failed' },
  { name: 'register: 300-character email', ...register({ ...valid(), email: `${'a'.repeat(288)}@example.com` }), status: 400, code: 'validation_failed' },
  {
    name: 'register: SQL in the email',
    ...register({ ...valid(), email: "x'); DROP TABLE users;--@example.com" }),
    status: 400,
    code: 'validation_failed',
    details: issueAt('email'),
  },
  { name: 'register: 7-character password', ...register({ ...valid(), password: 'short12' }), status: 400, code: 'validation_failed', details: issueAt('password') },
  { name: 'register: 129-character password', ...register({ ...valid(), password: 'p'.repeat(129) }), status: 400, code: 'validation_failed', details: issueAt('password') },
  { name: 'register: empty password', ...register({ ...valid(), password: '' }), status: 400, code: 'validation_failed' },
  { name: 'register: 2-character username', ...register({ ...valid(), username: 'ab' }), status: 400, code: 'validation_failed', details: issueAt('username') },
  { name: 'register: 33-character username', ...register({ ...valid(), username: 'u'.repeat(33) }), status: 400, code: 'validation_failed' },
  { name: 'register: username with a space', ...register({ ...valid(), username: 'has space' }), status: 400, code: 'validation_failed' },
  { name: 'register: username with punctuation', ...register({ ...valid(), username: 'bad!name' }), status: 400, code: 'validation_failed' },
  { name: "register: username a' OR 1=1--", ...register({ ...valid(), username: "a' OR 1=1--" }), status: 400, code: 'validation_failed', details: issueAt('username') },
  { name: 'register: username with a path', ...register({ ...valid(), username: '../etc' }), status: 400, code: 'validation_failed' },
  { name: 'register: username with non-ASCII letters', ...register({ ...valid(), username: 'ünïcödé' }), status: 400, code: 'validation_failed' },
  {
    name: 'register: taken email',
    ...register({ ...valid(), email: existing.email }),
    status: 409,
    code: 'conflict',
    details: fieldsNamed('email'),
  },
  {
    name: 'register: taken email in other case',
    ...register({ ...valid(), email: existing.email.toUpperCase() }),
    status: 409,
    code: 'conflict',
    details: fieldsNamed('email'),
  },
  {
    name: 'register: taken username',
    ...register({ ...valid(), username: existing.username }),
    status: 409,
    code: 'conflict',
    details: fieldsNamed('username'),
  },
  {
    name: 'register: taken username in other case',
    ...register({ ...valid(), username: existing.username.toUpperCase() }),
    status: 409,
    code: 'conflict',
    details: fieldsNamed('username'),
  },
  { name: 'register: both taken', ...register(existing), status: 409, code: 'conflict', details: fieldsNamed('email', 'username') },
  { name: 'login: wrong password', ...login({ email: existing.email, password: 'wrong-password' }), status: 401, code: 'invalid_credentials' },
  { name: 'login: unknown email', ...login({ email: 'nobody@example.com', password: existing.password }), status: 401, code: 'invalid_credentials' },
  { name: 'login: SQL as the password', ...login({ email: existing.email, password: "' OR '1'='1" }), status: 401, code: 'invalid_credentials' },
  { name: 'login: SQL as the email', ...login({ email: "' OR 1=1--", password: 'whatever1' }), status: 400, code: 'validation_failed' },
  { name: 'login: no password', ...login({ email: existing.email }), status: 400, code: 'validation_failed', details: issueAt('password') },
  { name: 'login: 129-character password', ...login({ email: existing.email, password: 'p'.repeat(129) }), status: 400, code: 'validation_failed' },
  { name: 'login: password is an object', ...login({ email: existing.email, password: { $ne: '' } }), status: 400, code: 'validation_failed' },
];

const oneMiB = 1024 * 1024;
const transportCases: Case[] = [
  {
    name: 'body over 1 MiB (Content-Length)',
    path: '/api/auth/register',
    request: () => ({ json: { ...valid(), padding: 'x'.repeat(oneMiB) } }),
    status: 413,
    code: 'payload_too_large',
  },
  {
    name: 'body over 1 MiB (chunked, no Content-Length)',
    path: '/api/auth/register',
    request: () => ({
      headers: { 'Content-Type': 'application/json' },
      raw: new ReadableStream({
        start(controller) {
          for (let i = 0; i < 20; i++) controller.enqueue(new Uint8Array(64 * 1024).fill(0x20));
          controller.close();
        },
      }),
    }),
    status: 413,
    code: 'payload_too_large',
  },
  { name: 'truncated JSON', path: '/api/auth/register', request: () => ({ headers: { 'Content-Type': 'application/json' }, raw: '{"email":' }), status: 400, code: 'invalid_json' },
  { name: 'JSON with a trailing comma', path: '/api/auth/login', request: () => ({ headers: { 'Content-Type': 'application/json' }, raw: '{"email":"a@b.co",}' }), status: 400, code: 'invalid_json' },
  { name: 'empty JSON body', path: '/api/auth/login', request: () => ({ method: 'POST', headers: { 'Content-Type': 'application/json' } }), status: 400, code: 'invalid_json' },
  {
    name: 'bytes that are not UTF-8',
    path: '/api/auth/login',
    request: () => ({ headers: { 'Content-Type': 'application/json' }, raw: new Uint8Array([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]) }),
    status: 400,
    code: 'invalid_json',
  },
  { name: 'text/plain body', path: '/api/auth/register', request: () => ({ headers: { 'Content-Type': 'text/plain' }, raw: JSON.stringify(valid()) }), status: 415, code: 'unsupported_media_type' },
  {
    name: 'form-encoded body',
    path: '/api/auth/login',
    request: () => ({ headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, raw: 'email=a%40b.co&password=x' }),
    status: 415,
    code: 'unsupported_media_type',
  },
  { name: 'no Content-Type', path: '/api/auth/login', request: () => ({ raw: new Uint8Array(Buffer.from('{}')) }), status: 415, code: 'unsupported_media_type' },
  { name: 'unknown /api route', path: '/api/nope', request: () => ({}), status: 404, code: 'not_found' },
  { name: 'unknown route outside /api', path: '/definitely/not/here', request: () => ({}), status: 404, code: 'not_found' },
  { name: 'GET on a POST-only route', path: '/api/auth/register', request: () => ({ method: 'GET' }), status: 404, code: 'not_found' },
  { name: 'a near-miss path', path: '/api/auth/registerx', request: () => ({ json: valid() }), status: 404, code: 'not_found' },
];

describe('bad input on the real edge', () => {
  beforeAll(async () => {
    await stack.startEdge();
    const res = await call<AuthBody>(stack.baseUrl, '/api/auth/register', { json: existing });
    expect(res.status).toBe(201);
    user = res.body.user;
  });
  afterAll(async () => {
    await stack.stop();
  });

  const all = [...tokenCases, ...bodyCases, ...transportCases];
  it('has at least 40 cases', () => {
    expect(all.length).toBeGreaterThanOrEqual(40);
  });

  describe.each([
    ['tokens and Authorization headers', tokenCases],
    ['request bodies', bodyCases],
    ['transport: sizes, encodings, content types, routes', transportCases],
  ])('%s', (_group, cases) => {
    it.each(cases.map((c) => [c.name, c] as const))('%s → the documented status and code', async (_name, c) => {
      const res = await call<ErrorBody>(stack.baseUrl, c.path, await c.request());
      expect({ status: res.status, code: res.body?.error?.code }).toEqual({ status: c.status, code: c.code });
      expect(Object.keys(res.body)).toEqual(['error']);
      expect(res.body.error.message).toEqual(expect.any(String));
      expect(JSON.stringify(res.body)).not.toContain(existing.password);
      c.details?.(res.body.error.details);
    });
  });

  describe('oversized bodies', () => {
    it('answers the next request normally after refusing a chunked body mid-stream', async () => {
      for (let round = 0; round < 2; round++) {
        const big = await call<ErrorBody>(stack.baseUrl, '/api/auth/login', {
          headers: { 'Content-Type': 'application/json' },
          raw: new ReadableStream({
            start(controller) {
              for (let i = 0; i < 24; i++) controller.enqueue(new Uint8Array(64 * 1024).fill(0x20));
              controller.close();
            },
          }),
        });
        expect(big.status).toBe(413);
        const next = await call<AuthBody>(stack.baseUrl, '/api/auth/login', { json: { email: existing.email, password: existing.password } });
        expect(next.status).toBe(200);
      }
    });
  });

  describe('SQL-looking input is data', () => {
    it("stores an email with quotes literally, and that exact email (and password) logs in", async () => {
      const account = { email: "o'brien'--@example.com", password: "' OR '1'='1' --", username: 'obrien-sql' };
      const reg = await call<AuthBody>(stack.baseUrl, '/api/auth/register', { json: account });
      expect(reg.status).toBe(201);
      expect(reg.body.user.email).toBe(account.email);
      expect((await call(stack.baseUrl, '/api/auth/login', { json: account })).status).toBe(200);
      const near = await call<ErrorBody>(stack.baseUrl, '/api/auth/login', { json: { ...account, password: "' OR '1'='2' --" } });
      expect(near.status).toBe(401);
    });

    it('leaves exactly the users that registered successfully in D1', async () => {
      const rows = await d1Execute<{ email: string; username: string }>(stack.stateDir, 'SELECT email, username FROM users ORDER BY email');
      expect(rows).toEqual([
        { email: "o'brien'--@example.com", username: 'obrien-sql' },
        { email: existing.email, username: existing.username },
      ]);
    });
  });
});
