/**
 * Tenant isolation on the real stack (workerd edge, real or scripted agents):
 * one `describe` per point of the tenant-isolation issue. Each test is an
 * attack that worked before the point was built.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { promisify } from 'node:util';
import { decodeJwt, SignJWT } from 'jose';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newId } from '../../shared/ids';
import { ROOT } from '../../scripts/lib/stack';
import { api, registerUser, TestSocket, type TestUser } from '../helpers/client';
import { hasDocker } from '../helpers/docker';
import { FakeAgent } from '../helpers/fake-agent';
import { ensureTestImage } from '../helpers/images';
import { TestStack, type TestAgent } from '../helpers/stack';

const HEARTBEAT_MS = 1000;
const run = promisify(execFile);

/** Runs one of the operator's scripts against the stack, as an operator would. */
async function script(stack: TestStack, file: string, args: string[]): Promise<{ stdout: string; stderr: string }> {
  return run(process.execPath, ['--import', 'tsx', path.join(ROOT, 'scripts', file), ...args], {
    cwd: ROOT,
    timeout: 60_000,
    env: { ...process.env, EDGE_URL: stack.wsUrl, OPERATOR_TOKEN: stack.secrets.OPERATOR_TOKEN, STATE_DIR: stack.stateDir },
  });
}

function hex(bytes: number): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(bytes)), (b) => b.toString(16).padStart(2, '0')).join('');
}

/** SQLite databases under a folder, recursively: one per Durable Object that has storage (its -wal/-shm files come and go). */
function countDatabases(dir: string): number {
  if (!fs.existsSync(dir)) return 0;
  let n = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) n += e.isDirectory() ? countDatabases(path.join(dir, e.name)) : e.name.endsWith('.sqlite') ? 1 : 0;
  return n;
}

function rawGet(port: number, reqPath: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: reqPath, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
  });
}

function upgradeStatus(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.once('unexpected-response', (_req, res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    ws.once('open', () => {
      ws.close();
      resolve(101);
    });
    ws.once('error', reject);
  });
}

describe('tenant isolation (real stack)', () => {
  const stack = new TestStack({
    edgeVars: { HEARTBEAT_INTERVAL_MS: String(HEARTBEAT_MS), RATE_LIMIT_MAX: '100000', AUTH_RATE_LIMIT_MAX: '100000', AGENT_MAX_SESSIONS: '7' },
  });
  let user: TestUser;

  beforeAll(async () => {
    await stack.startEdge();
    user = await registerUser(stack, 'iso');
  });
  afterAll(async () => {
    await stack.stop();
  });

  describe('5. agents cannot impersonate each other', () => {
    it("ignores a second agent's forged res carrying the id of another agent's request", async () => {
      const a = await FakeAgent.open(stack, { token: await stack.agentToken({ name: 'honest' }), name: 'honest', maxSessions: 5 });
      // B takes no sessions, so every placement goes to A.
      const b = await FakeAgent.open(stack, { token: await stack.agentToken({ name: 'forger' }), name: 'forger', maxSessions: 0 });
      await Promise.all([a.waitFor((f) => f.type === 'welcome'), b.waitFor((f) => f.type === 'welcome')]);
      a.answer = (req) => (req.method === 'session.remove' ? { ok: true, result: { removed: true } } : null);
      const creating = api<{ error: { code: string; message: string } }>(stack, 'POST', '/api/containers', { token: user.token, body: {} });
      const req = await a.request('session.create');
      // B answers A's request (as if it had guessed or seen the id): a running session on B's word.
      b.send({ type: 'res', id: req.id, ok: true, result: { sessionId: req.params.sessionId, userId: user.id, state: 'running' } });
      // A frame after it on the same socket proves the edge has read the forged answer.
      b.send({ type: 'heartbeat', seq: 4242, system: b.system(), activeSessions: 0 });
      await b.waitFor((f) => f.type === 'heartbeat_ack' && f.seq === 4242);
      a.send({ type: 'res', id: req.id, ok: false, error: { code: 'image_not_found', message: 'the honest agent has no such image' } });
      const res = await creating;
      expect(res.status).toBe(404);
      expect(res.body.error).toEqual({ code: 'image_not_found', message: 'the honest agent has no such image' });
      a.close();
      b.close();
    });

    it('makes request ids that are 128 random bits', async () => {
      const a = await FakeAgent.open(stack, { token: await stack.agentToken({ name: 'ids' }), name: 'ids', maxSessions: 5 });
      a.answer = (req) => (req.method === 'session.remove' ? { ok: true, result: { removed: true } } : { ok: false, error: { code: 'image_not_found', message: 'no' } });
      await a.waitFor((f) => f.type === 'welcome');
      for (let i = 0; i < 2; i++) await api(stack, 'POST', '/api/containers', { token: user.token, body: {} });
      const ids = a.requests.map((r) => r.id);
      expect(ids.length).toBe(4);
      for (const id of ids) expect(id).toMatch(/^r[0-9a-f]{32}$/);
      a.close();
    });

    it('registers an agent with npm run agent:token (id, name, created, expires in D1) and prints a token that expires in 90 days', async () => {
      const { stdout, stderr } = await script(stack, 'agent-token.ts', ['--name', 'box-one']);
      const token = stdout.trim();
      const claims = decodeJwt(token);
      expect(claims.exp! - claims.iat!).toBe(90 * 86_400);
      expect(claims.name).toBe('box-one');
      const record = JSON.parse(stderr.trim().split('\n').pop()!) as Record<string, string>;
      expect(record).toMatchObject({ msg: 'agent registered', id: claims.sub, name: 'box-one', revokedAt: null });
      const listed = await api<{ agents: Array<Record<string, unknown>> }>(stack, 'GET', '/api/admin/agents', { headers: stack.operatorAuth });
      expect(listed.status).toBe(200);
      const listedAgent = listed.body.agents.find((x) => x.id === claims.sub);
      expect(listedAgent).toMatchObject({ name: 'box-one', createdAt: record.createdAt, expiresAt: record.expiresAt, revokedAt: null, connected: false });
      const lag = Date.parse(record.expiresAt!) - claims.exp! * 1000;
      expect(lag >= 0 && lag < 1000).toBe(true);
      const short = decodeJwt((await script(stack, 'agent-token.ts', ['--name', 'box-two', '--ttl', '2h'])).stdout.trim());
      expect(short.exp! - short.iat!).toBe(7200);
    });

    it('refuses a validly signed token whose agent was never registered', async () => {
      const token = await stack.agentToken({ register: false });
      await expect(FakeAgent.open(stack, { token })).rejects.toMatchObject({ status: 401 });
    });

    it('disconnects a revoked agent within a heartbeat (npm run agent:revoke) and refuses it after', async () => {
      const agent = await stack.startAgent({ name: 'to-revoke' });
      await stack.health((h) => h.agents.some((a) => a.id === agent.id && a.connected), 60_000);
      const { stdout } = await script(stack, 'agent-revoke.ts', [agent.id]);
      const match = new RegExp(`^revoked ${agent.id} \\(to-revoke\\) at (\\S+)$`).exec(stdout.trim());
      expect(match).not.toBeNull();
      const lost = await agent.waitForLog((l) => l.msg === 'connection to edge lost');
      expect(lost.code).toBe(4001);
      const closeMs = Date.parse(String(lost.time)) - Date.parse(match![1]!);
      process.stderr.write(`[isolation] revoked → agent saw its socket close in ${closeMs} ms\n`);
      expect(closeMs).toBeLessThan(HEARTBEAT_MS);
      const refused = await agent.waitForLog((l) => l.msg === 'edge refused this agent');
      expect(refused.status).toBe(401);
      expect(String(refused.reason)).toMatch(/agent token revoked/);
      const h = await stack.health((x) => x.agents.some((a) => a.id === agent.id && !a.connected));
      expect(h.agents.find((a) => a.id === agent.id)?.connected).toBe(false);
      // Registering it again is refused too: a revoked id stays revoked.
      await expect(stack.agentToken({ id: agent.id, name: 'to-revoke' })).rejects.toMatchObject({ status: 409, code: 'conflict' });
      await agent.proc.stop();
    });

    it("marks a revoked agent's sessions agent_unavailable, and lets their owner delete them without the agent", async () => {
      const id = newId('agt');
      const fake = await FakeAgent.open(stack, { token: await stack.agentToken({ id, name: 'leaked' }), name: 'leaked', maxSessions: 50 });
      fake.answer = (req) => (req.method === 'session.create' ? { ok: true, result: { sessionId: req.params.sessionId, userId: user.id, state: 'running' } } : null);
      await fake.waitFor((f) => f.type === 'welcome');
      // Other fake agents of this suite are gone, so the session lands here.
      const created = await api<{ session: { id: string; agentId: string } }>(stack, 'POST', '/api/containers', { token: user.token, body: {} });
      expect(created.status).toBe(201);
      expect(created.body.session.agentId).toBe(id);
      const sessionId = created.body.session.id;
      const revoked = await api<{ revoked: Array<{ id: string }> }>(stack, 'POST', `/api/admin/agents/${id}/revoke`, { headers: stack.operatorAuth });
      expect(revoked.body.revoked.map((a) => a.id)).toEqual([id]);
      expect(await fake.closed).toEqual({ code: 4001, reason: 'agent token revoked' });
      const deadline = Date.now() + 10_000;
      let seen: { status: string; error?: string } | undefined;
      while (Date.now() < deadline) {
        seen = (await api<{ session: { status: string; error?: string } }>(stack, 'GET', `/api/containers/${sessionId}`, { token: user.token })).body.session;
        if (seen.status === 'error') break;
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(seen).toMatchObject({ status: 'error', error: 'agent_unavailable' });
      const del = await api(stack, 'DELETE', `/api/containers/${sessionId}`, { token: user.token });
      expect(del.status).toBe(200);
      expect((await api(stack, 'GET', `/api/containers/${sessionId}`, { token: user.token })).status).toBe(404);
    });

    it('lets a second socket of the same agent replace the first only once it has said hello, and logs it', async () => {
      const id = newId('agt');
      const token = await stack.agentToken({ id, name: 'twice' });
      const first = await FakeAgent.open(stack, { token, name: 'twice' });
      await first.waitFor((f) => f.type === 'welcome');
      const second = await FakeAgent.open(stack, { token, name: 'twice', hello: false });
      // The silent second socket changes nothing: the first keeps answering heartbeats.
      first.send({ type: 'heartbeat', seq: 77, system: first.system(), activeSessions: 0 });
      await first.waitFor((f) => f.type === 'heartbeat_ack' && f.seq === 77);
      expect(first.ws.readyState).toBe(WebSocket.OPEN);
      second.sayHello();
      await second.waitFor((f) => f.type === 'welcome');
      expect(await first.closed).toEqual({ code: 4003, reason: 'replaced by a newer connection of the same agent' });
      const deadline = Date.now() + 10_000;
      while (!stack.edgeLogs.some((l) => l.includes('"agent socket replaced"') && l.includes(id)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(stack.edgeLogs.find((l) => l.includes('"agent socket replaced"') && l.includes(id))).toMatch(/"level":"warn"/);
      second.close();
    });

    it("caps an agent's claimed capacity at AGENT_MAX_SESSIONS", async () => {
      const id = newId('agt');
      const greedy = await FakeAgent.open(stack, { token: await stack.agentToken({ id, name: 'greedy' }), name: 'greedy', maxSessions: 1e15 });
      await greedy.waitFor((f) => f.type === 'welcome');
      const h = await stack.health((x) => x.agents.some((a) => a.id === id && a.connected));
      expect((h.agents.find((a) => a.id === id) as unknown as { capacity: unknown }).capacity).toEqual({ maxSessions: 7, claimed: 1e15, activeSessions: 0 });
      greedy.close();
    });
  });

  describe('6. a quiet /health', () => {
    it('tells anyone counts and status only; the operator sees ids, host names, versions and modes', async () => {
      const id = newId('agt');
      const fake = await FakeAgent.open(stack, {
        token: await stack.agentToken({ id, name: 'secret-box' }),
        name: 'secret-box',
        mode: 'local',
        hostname: 'very-secret-host.internal',
      });
      const sessionId = `ses_${hex(12)}`;
      fake.containers = [{ sessionId, state: 'running' }];
      await fake.waitFor((f) => f.type === 'heartbeat_ack');
      const full = await stack.health((x) => x.agents.some((a) => a.id === id && a.connected));
      const fullText = JSON.stringify(full);
      for (const seen of [sessionId, id, 'very-secret-host.internal', 'secret-box', '20.10.99', 'local']) expect(fullText).toContain(seen);

      const anon = await fetch(`${stack.baseUrl}/health`);
      expect(anon.status).toBe(200);
      const quiet = (await anon.json()) as Record<string, unknown>;
      const text = JSON.stringify(quiet);
      for (const key of ['status', 'timestamp', 'uptime', 'sessions', 'containers', 'previews', 'config', 'system', 'agents']) expect(quiet).toHaveProperty(key);
      for (const hidden of ['ses_', 'usr_', 'agt_', 'very-secret-host', 'secret-box', '20.10.99', 'fake-1.0', 'local', 'isolation']) expect(text).not.toContain(hidden);
      expect(quiet.agents).toEqual([]);
      expect(quiet.status).toBe('ok');

      // A wrong operator token gets the quiet view, not an error and not the full one.
      const wrong = await fetch(`${stack.baseUrl}/health`, { headers: { Authorization: `Bearer ${stack.secrets.OPERATOR_TOKEN}x` } });
      expect(JSON.stringify(await wrong.json())).not.toContain(id);
      // An operator JWT opens the full view as well.
      const jwt = await new SignJWT({})
        .setProtectedHeader({ alg: 'HS256', typ: 'operator' })
        .setIssuer('mominai-edge')
        .setAudience('mominai:operator')
        .setSubject('ops')
        .setIssuedAt()
        .setExpirationTime('5m')
        .sign(new TextEncoder().encode(stack.secrets.JWT_SECRET));
      const viaJwt = await fetch(`${stack.baseUrl}/health`, { headers: { Authorization: `Bearer ${jwt}` } });
      expect(JSON.stringify(await viaJwt.json())).toContain(id);
      fake.close();
    });
  });

  describe('7. no storage for strangers', () => {
    it('leaves no Durable Object storage after 1,000 requests for random session ids', async () => {
      const doRoot = path.join(stack.stateDir, 'edge', 'v3', 'do');
      const sessionFiles = () =>
        fs.existsSync(doRoot)
          ? fs
              .readdirSync(doRoot)
              .filter((d) => d.includes('SessionDO'))
              .reduce((n, d) => n + countDatabases(path.join(doRoot, d)), 0)
          : 0;
      const before = sessionFiles();
      const kinds = ['path', 'host', 'ws', 'files'] as const;
      const statuses: Record<string, number[]> = { path: [], host: [], ws: [], files: [] };
      for (let batch = 0; batch < 40; batch++) {
        await Promise.all(
          Array.from({ length: 25 }, async (_, i) => {
            const kind = kinds[(batch * 25 + i) % 4]!;
            const sid = `ses_${hex(12)}`;
            if (kind === 'path') statuses.path!.push((await rawGet(stack.port, `/preview/${sid}/`, {})).status);
            else if (kind === 'host') statuses.host!.push((await rawGet(stack.port, '/', { Host: `3000-${sid}.preview.localhost:${stack.port}` })).status);
            else if (kind === 'ws') statuses.ws!.push(await upgradeStatus(`${stack.wsUrl}/ws?token=${user.token}&sessionId=${sid}`));
            else statuses.files!.push((await api(stack, 'GET', `/api/containers/${sid}/files/a.txt`, { token: user.token })).status);
          }),
        );
      }
      for (const k of kinds) {
        expect(statuses[k]!.length).toBe(250);
        expect(new Set(statuses[k])).toEqual(new Set([404]));
      }
      expect(sessionFiles()).toBe(before);
    });
  });

  describe('8. tokens', () => {
    const userToken = (claims: Record<string, unknown>, exp: boolean) => {
      let jwt = new SignJWT({ iss: 'mominai-edge', sub: user.id, ...claims }).setProtectedHeader({ alg: 'HS256', typ: 'user' }).setIssuedAt();
      if (exp) jwt = jwt.setExpirationTime('10m');
      return jwt.sign(new TextEncoder().encode(stack.secrets.JWT_SECRET));
    };

    it('accepts a user token with exp and the exact audience (the control case)', async () => {
      const res = await api(stack, 'GET', '/api/auth/me', { token: await userToken({ aud: 'mominai:user' }, true) });
      expect(res.status).toBe(200);
    });

    it('refuses a user token without exp with 401', async () => {
      const res = await api(stack, 'GET', '/api/auth/me', { token: await userToken({ aud: 'mominai:user' }, false) });
      expect(res).toMatchObject({ status: 401, body: { error: { code: 'invalid_token', message: 'token rejected: exp claim missing' } } });
    });

    it('refuses a user token whose aud is an array holding the audience with 401', async () => {
      const res = await api(stack, 'GET', '/api/auth/me', { token: await userToken({ aud: ['mominai:user', 'mominai:other'] }, true) });
      expect(res).toMatchObject({ status: 401, body: { error: { code: 'invalid_token', message: 'token rejected: aud claim invalid' } } });
    });

    it('refuses an agent token without exp on the tunnel with 401', async () => {
      const id = newId('agt');
      await stack.agentToken({ id, name: 'no-exp' });
      const token = await new SignJWT({ name: 'no-exp' })
        .setProtectedHeader({ alg: 'HS256', typ: 'agent' })
        .setIssuer('mominai-edge')
        .setAudience('mominai:agent')
        .setSubject(id)
        .setIssuedAt()
        .sign(new TextEncoder().encode(stack.secrets.AGENT_SECRET));
      await expect(FakeAgent.open(stack, { token })).rejects.toMatchObject({ status: 401 });
    });
  });
});

describe('the sandbox issue, edge side: local-mode agents and agent places', () => {
  const stack = new TestStack({
    edgeVars: { ALLOW_LOCAL_AGENTS: '0', AGENT_MAX_SESSIONS: '1', MAX_SESSIONS_PER_USER: '2', RATE_LIMIT_MAX: '100000', AUTH_RATE_LIMIT_MAX: '100000' },
  });
  beforeAll(async () => {
    await stack.startEdge();
  });
  afterAll(async () => {
    await stack.stop();
  });

  it('places no session on a local-mode agent when ALLOW_LOCAL_AGENTS is off, and does on a Docker one', async () => {
    const user = await registerUser(stack, 'nolocal');
    const local = await FakeAgent.open(stack, { token: await stack.agentToken({ name: 'laptop' }), name: 'laptop', mode: 'local', maxSessions: 50 });
    await local.waitFor((f) => f.type === 'welcome');
    const refused = await api<{ error: { code: string; message: string } }>(stack, 'POST', '/api/containers', { token: user.token, body: {} });
    expect(refused.status).toBe(503);
    expect(refused.body.error).toEqual({
      code: 'no_capacity',
      message: 'the connected agents run in local mode (no isolation), which this edge does not use (ALLOW_LOCAL_AGENTS)',
    });
    expect(local.requests).toEqual([]);

    const docker = await FakeAgent.open(stack, { token: await stack.agentToken({ name: 'box' }), name: 'box', mode: 'docker', maxSessions: 1 });
    docker.answer = (req) => (req.method === 'session.create' ? { ok: true, result: { sessionId: req.params.sessionId, userId: user.id, state: 'running' } } : null);
    await docker.waitFor((f) => f.type === 'welcome');
    const placed = await api<{ session: { agentId: string; status: string } }>(stack, 'POST', '/api/containers', { token: user.token, body: {} });
    expect(placed.status).toBe(201);
    expect(placed.body.session.status).toBe('running');
    expect(local.requests).toEqual([]);
    expect(docker.requests.map((r) => r.method)).toEqual(['session.create']);
    local.close();
    docker.close();
  });

  it('frees an agent place when a session stops, while MAX_SESSIONS_PER_USER still counts the stopped session', async () => {
    const user = await registerUser(stack, 'places');
    const agent = await FakeAgent.open(stack, { token: await stack.agentToken({ name: 'one-place' }), name: 'one-place', mode: 'docker', maxSessions: 5 });
    agent.answer = (req) => {
      const info = { sessionId: req.params.sessionId, userId: user.id };
      if (req.method === 'session.create' || req.method === 'session.start') return { ok: true, result: { ...info, state: 'running' } };
      if (req.method === 'session.stop') return { ok: true, result: { ...info, state: 'stopped' } };
      return null;
    };
    await agent.waitFor((f) => f.type === 'welcome');
    const create = () => api<{ session: { id: string }; error: { code: string; message: string } }>(stack, 'POST', '/api/containers', { token: user.token, body: {} });
    const first = await create();
    expect(first.status).toBe(201);
    // AGENT_MAX_SESSIONS = 1: the agent's claim of 5 counts for one place.
    expect((await create()).body.error).toEqual({ code: 'no_capacity', message: 'every agent is full' });
    expect((await api(stack, 'POST', `/api/containers/${first.body.session.id}/stop`, { token: user.token })).status).toBe(200);
    const second = await create();
    expect(second.status).toBe(201);
    expect((await api(stack, 'POST', `/api/containers/${second.body.session.id}/stop`, { token: user.token })).status).toBe(200);
    // The agent has a free place again, but the user holds two live sessions.
    const third = await create();
    expect(third.status).toBe(409);
    expect(third.body.error).toMatchObject({ code: 'conflict', message: 'session limit reached: at most 2 sessions per user' });
    agent.close();
  });
});

interface Got {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A request to the edge with any Host and headers (fetch would not let us set Host or Origin). */
function send(port: number, opts: { path: string; host?: string; method?: string; headers?: Record<string, string>; body?: string }): Promise<Got> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: opts.path, method: opts.method ?? 'GET', headers: { ...(opts.host ? { Host: opts.host } : {}), ...opts.headers } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** A WebSocket upgrade through the edge: 101 and the first echo, or the refusal's status and body. */
function upgrade(port: number, reqPath: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}${reqPath}`, { headers });
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    ws.once('open', () => {
      ws.once('message', (d) => {
        ws.close();
        resolve({ status: 101, body: d.toString() });
      });
      ws.send('ping');
    });
    ws.once('error', reject);
  });
}

describe.skipIf(!hasDocker)('tenant isolation, previews (real stack, Docker)', () => {
  const DOMAIN = 'preview.localhost';
  const stack = new TestStack({
    edgeVars: { HEARTBEAT_INTERVAL_MS: String(HEARTBEAT_MS), RATE_LIMIT_MAX: '100000', AUTH_RATE_LIMIT_MAX: '100000', PREVIEW_DOMAIN: DOMAIN },
  });
  let owner: TestUser;
  let stranger: TestUser;
  let agent: TestAgent;
  let sessionId: string;
  let hostCookie = '';
  let pathCookie = '';
  let hostSetCookie = '';
  let links: { url: string; pathUrl: string };
  const previewHost = () => `3000-${sessionId}.${DOMAIN}:${stack.port}`;
  const previewOrigin = () => `http://${previewHost()}`;
  // Another user's preview on the same PREVIEW_DOMAIN: a sibling site.
  const siblingOrigin = () => `http://3000-ses_${'ab'.repeat(12)}.${DOMAIN}:${stack.port}`;

  /** Creates a session running the fixture server on port 3000, its preview ready; returns its id. */
  const sessionWithServer = async (user: TestUser): Promise<{ id: string; sock: TestSocket }> => {
    const res = await api<{ session: { id: string } }>(stack, 'POST', '/api/containers', { token: user.token, body: { image: 'mominai/node:test', ports: [3000] } });
    expect(res.status).toBe(201);
    const id = res.body.session.id;
    fs.copyFileSync(path.resolve(__dirname, '../fixtures/preview-server.cjs'), path.join(stack.stateDir, 'workspaces', user.id, id, 'server.cjs'));
    const sock = await TestSocket.open(stack, user.token, id);
    await sock.waitFor((f) => f.type === 'ready');
    const started = await sock.request('container_command', { command: 'node server.cjs' });
    expect(started.type, JSON.stringify(started)).toBe('process_started');
    const ready = await sock.request('start_preview', { port: 3000 }, 120_000);
    expect(ready.type, JSON.stringify(ready)).toBe('preview_ready');
    return { id, sock };
  };

  /** Follows a signed preview link once; returns the Set-Cookie it answered with. */
  const follow = async (link: string): Promise<string> => {
    const u = new URL(link);
    const res = await send(stack.port, { path: u.pathname + u.search, host: u.host });
    expect(res.status).toBe(302);
    return String(res.headers['set-cookie']?.[0] ?? '');
  };

  beforeAll(async () => {
    await ensureTestImage('node');
    await stack.startEdge();
    agent = await stack.startAgent({ name: 'iso-preview-agent' });
    await stack.health((h) => h.agents.some((a) => a.id === agent.id && a.connected));
    [owner, stranger] = await Promise.all([registerUser(stack, 'iso-owner'), registerUser(stack, 'iso-stranger')]);
    const made = await sessionWithServer(owner);
    sessionId = made.id;
    made.sock.close();
    const link = await api<{ url: string; pathUrl: string }>(stack, 'GET', `/api/containers/${sessionId}/preview-url?port=3000`, { token: owner.token });
    expect(link.status).toBe(200);
    links = link.body;
    hostSetCookie = await follow(links.url);
    hostCookie = hostSetCookie.split(';')[0]!;
    pathCookie = (await follow(links.pathUrl)).split(';')[0]!;
  }, 240_000);
  afterAll(async () => {
    await stack.stop();
  });

  describe("1. a session's state follows its container", () => {
    it('stops the session with a reason within 5 s of `kill -KILL -1`, ends its processes, and its preview answers 503 session_stopped until it runs again', async () => {
      const { id, sock } = await sessionWithServer(owner);
      const server = sock.frames.find((f) => f.type === 'process_started')!;
      const link = await api<{ url: string }>(stack, 'GET', `/api/containers/${id}/preview-url?port=3000`, { token: owner.token });
      const cookie = (await follow(link.body.url)).split(';')[0]!;
      const host = `3000-${id}.${DOMAIN}:${stack.port}`;
      expect((await send(stack.port, { path: '/hello', host, headers: { Cookie: cookie } })).body).toBe('hello from 3000 GET');

      const killedAt = Date.now();
      sock.send('container_command', { command: 'kill -KILL -1' });
      const status = await sock.waitFor((f) => f.type === 'container_status' && f.payload.status === 'stopped', 5_000);
      const took = Date.now() - killedAt;
      expect(took).toBeLessThan(5_000);
      expect(status.payload.reason).toBe('killed');
      const exit = await sock.waitFor((f) => f.type === 'command_exit' && f.payload.processId === server.payload.processId, 10_000);
      expect(exit.payload.reason).toBe('lost');
      const view = await api<{ session: { status: string } }>(stack, 'GET', `/api/containers/${id}`, { token: owner.token });
      expect(view.body.session.status).toBe('stopped');
      const stopped = await send(stack.port, { path: '/hello', host, headers: { Cookie: cookie } });
      expect(stopped.status).toBe(503);
      expect(JSON.parse(stopped.body).error.code).toBe('session_stopped');
      console.log(JSON.stringify({ measured: 'kill -KILL -1 to container_status stopped', ms: took }));

      // It runs again: a new server, a fresh start_preview, and the preview answers from the live container.
      expect((await api(stack, 'POST', `/api/containers/${id}/start`, { token: owner.token })).status).toBe(200);
      const again = await TestSocket.open(stack, owner.token, id);
      await again.waitFor((f) => f.type === 'ready');
      await again.request('container_command', { command: 'node server.cjs' });
      expect((await again.request('start_preview', { port: 3000 }, 120_000)).type).toBe('preview_ready');
      expect((await send(stack.port, { path: '/hello', host, headers: { Cookie: cookie } })).body).toBe('hello from 3000 GET');
      again.close();
      sock.close();
      await api(stack, 'DELETE', `/api/containers/${id}`, { token: owner.token });
    }, 240_000);
  });

  describe('2. previews on their own origins; the path forms are owner-only and sanitised', () => {
    it('points pathUrl at the bare PREVIEW_DOMAIN, off the API origin', () => {
      expect(links.pathUrl.startsWith(`http://${DOMAIN}:${stack.port}/${sessionId}/__mominai/auth?ticket=`)).toBe(true);
    });

    it('never passes Service-Worker-Allowed, Clear-Site-Data or a preview cookie on either path form, and keeps cookie paths inside the prefix', async () => {
      const forms = [
        { path: `/preview/${sessionId}/hostile?victim=${sessionId}`, host: undefined, prefix: `/preview/${sessionId}` },
        { path: `/${sessionId}/hostile?victim=${sessionId}`, host: `${DOMAIN}:${stack.port}`, prefix: `/${sessionId}` },
      ];
      for (const f of forms) {
        const res = await send(stack.port, { path: f.path, ...(f.host ? { host: f.host } : {}), headers: { Cookie: pathCookie } });
        expect(res.status).toBe(200);
        expect(res.body).toBe('hostile');
        expect(res.headers['service-worker-allowed']).toBe(undefined);
        expect(res.headers['clear-site-data']).toBe(undefined);
        expect(res.headers['set-cookie']).toEqual([`app=1; Path=${f.prefix}/`]);
      }
    });

    it('serves a public port on the host form to anyone, and on the path forms to nobody but the owner', async () => {
      expect((await api(stack, 'POST', `/api/containers/${sessionId}/ports/3000`, { token: owner.token, body: { visibility: 'public' } })).status).toBe(200);
      try {
        expect((await send(stack.port, { path: '/hello', host: previewHost() })).body).toBe('hello from 3000 GET');
        const anonymous = await send(stack.port, { path: `/preview/${sessionId}/hello` });
        expect(anonymous.status).toBe(401);
        expect(JSON.parse(anonymous.body).error).toEqual({
          code: 'unauthorized',
          message:
            'this preview is private (public ports are served on the preview host only; the path form is for the owner): open it through a preview link from GET /api/containers/:id/preview-url',
        });
        const bare = await send(stack.port, { path: `/${sessionId}/hello`, host: `${DOMAIN}:${stack.port}` });
        expect(bare.status).toBe(401);
        // A stranger holding a valid preview cookie (for a session of their own) is still refused.
        const theirs = await api<{ session: { id: string } }>(stack, 'POST', '/api/containers', { token: stranger.token, body: { image: 'mominai/node:test' } });
        const theirLink = await api<{ pathUrl: string }>(stack, 'GET', `/api/containers/${theirs.body.session.id}/preview-url`, { token: stranger.token });
        const theirCookie = (await follow(theirLink.body.pathUrl)).split(';')[0]!;
        const forged = theirCookie.replace(theirs.body.session.id, sessionId);
        const withForged = await send(stack.port, { path: `/${sessionId}/hello`, host: `${DOMAIN}:${stack.port}`, headers: { Cookie: forged } });
        expect(withForged.status).toBe(401);
        await api(stack, 'DELETE', `/api/containers/${theirs.body.session.id}`, { token: stranger.token });
        expect((await send(stack.port, { path: `/preview/${sessionId}/hello`, headers: { Cookie: pathCookie } })).body).toBe('hello from 3000 GET');
      } finally {
        await api(stack, 'POST', `/api/containers/${sessionId}/ports/3000`, { token: owner.token, body: { visibility: 'private' } });
      }
    });
  });

  describe('3. cross-preview requests are refused', () => {
    it('refuses a POST carrying the valid cookie from another origin with 403 before the dev server, and lets the same-origin one pass', async () => {
      const cross = await send(stack.port, { path: '/upload', method: 'POST', host: previewHost(), headers: { Cookie: hostCookie, Origin: siblingOrigin() }, body: 'x' });
      expect(cross.status).toBe(403);
      expect(JSON.parse(cross.body).error).toEqual({
        code: 'forbidden',
        message: `a POST request from ${siblingOrigin()} to this preview is refused: only the preview's own origin may do that`,
      });
      const same = await send(stack.port, { path: '/upload', method: 'POST', host: previewHost(), headers: { Cookie: hostCookie, Origin: previewOrigin() }, body: 'x' });
      expect(same.status).toBe(200);
      expect(JSON.parse(same.body)).toEqual({ bytes: 1, sha256: '2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881' });
    });

    it('refuses a WebSocket upgrade carrying the valid cookie from another origin with 403, and relays the same-origin one', async () => {
      const cross = await upgrade(stack.port, '/socket', { Host: previewHost(), Cookie: hostCookie, Origin: siblingOrigin() });
      expect(cross.status).toBe(403);
      expect(JSON.parse(cross.body).error.message).toBe(`a WebSocket from ${siblingOrigin()} to this preview is refused: only the preview's own origin may do that`);
      expect(await upgrade(stack.port, '/socket', { Host: previewHost(), Cookie: hostCookie, Origin: previewOrigin() })).toEqual({ status: 101, body: 'echo:ping' });
      // The dev server saw the preview's own origin as its own (Host localhost:3000), so Vite-like checks pass.
      const seen = JSON.parse((await send(stack.port, { path: '/last-upgrade', host: previewHost(), headers: { Cookie: hostCookie } })).body) as Record<string, string>;
      expect(seen.origin).toBe('http://localhost:3000');
    });

    it('sets a host-only, __Host- prefixed, Secure, SameSite=None, Partitioned cookie on *.localhost', () => {
      expect(hostSetCookie).toMatch(new RegExp(`^__Host-mominai_preview_${sessionId}=[^;]+; Path=/; HttpOnly; Secure; SameSite=None; Partitioned; Max-Age=\\d+$`));
    });
  });

  describe('4. header hygiene both ways', () => {
    const hostile = {
      'X-Forwarded-For': '6.6.6.6',
      'X-Forwarded-Host': 'evil.example',
      'X-Forwarded-Proto': 'gopher',
      'X-Forwarded-Prefix': '/evil',
      Forwarded: 'for=6.6.6.6;host=evil.example',
      'X-Real-IP': '6.6.6.6',
      'X-Preview-Info': '{"userId":"usr_forged","cookieName":"x"}',
      'X-User-Id': 'usr_forged',
      'X-Agent-Id': 'agt_forged',
      'X-File-Mtime': '1',
      'X-Mominai-Host': '169.254.169.254',
      'X-Session-Call': 'forged',
    };
    const internal = /^(x-preview-info|x-user-id|x-agent-|x-file-|x-mominai-|x-session-call|forwarded$|x-real-ip$|cf-)/;

    it("shows the dev server no client forwarding header and no internal header over HTTP, only the edge's own X-Forwarded-*", async () => {
      const res = await send(stack.port, { path: '/headers', host: previewHost(), headers: { ...hostile, Cookie: `${hostCookie}; app=1` } });
      expect(res.status).toBe(200);
      const seen = JSON.parse(res.body) as Record<string, string>;
      expect(Object.keys(seen).filter((k) => internal.test(k))).toEqual([]);
      expect(seen['x-forwarded-host']).toBe(previewHost());
      expect(seen['x-forwarded-proto']).toBe('http');
      expect(seen['x-forwarded-prefix']).toBe('/');
      expect(seen['x-forwarded-for']).toBe('127.0.0.1');
      expect(seen.host).toBe('localhost:3000');
      expect(seen.cookie).toBe('app=1');
    });

    it('shows the dev server no client forwarding header and no internal header on a WebSocket upgrade', async () => {
      expect((await upgrade(stack.port, '/socket', { ...hostile, Host: previewHost(), Cookie: hostCookie })).status).toBe(101);
      const seen = JSON.parse((await send(stack.port, { path: '/last-upgrade', host: previewHost(), headers: { Cookie: hostCookie } })).body) as Record<string, string>;
      expect(Object.keys(seen).filter((k) => internal.test(k))).toEqual([]);
      expect(seen['x-forwarded-host']).toBe(previewHost());
      expect(seen['x-forwarded-for']).toBe('127.0.0.1');
      expect(seen.cookie).toBe(undefined);
      expect(seen.origin).toBe(undefined);
    });
  });

  // Last: it revokes this suite's agent.
  describe("revoking an agent drops its sessions' data sockets", () => {
    it('closes the data socket of each of its sessions at once, so its previews stop with it', async () => {
      expect((await send(stack.port, { path: '/hello', host: previewHost(), headers: { Cookie: hostCookie } })).body).toBe('hello from 3000 GET');
      const { stdout } = await script(stack, 'agent-revoke.ts', [agent.id]);
      expect(stdout.trim()).toMatch(new RegExp(`^revoked ${agent.id} \\(iso-preview-agent\\) at \\S+$`));
      // The data socket was closed by the edge: the agent dials it again and is refused.
      const refused = await agent.waitForLog((l) => l.msg === 'edge refused a session data socket' && l.sessionId === sessionId);
      expect(refused.status).toBe(401);
      const after = await send(stack.port, { path: '/hello', host: previewHost(), headers: { Cookie: hostCookie } });
      expect(after.status).toBe(503);
    });
  });
});
