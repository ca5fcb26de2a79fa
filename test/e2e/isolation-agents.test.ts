/**
 * Tenant isolation on the real stack (workerd edge, scripted agents), the
 * agents' side: agents cannot impersonate each other, are registered and
 * revoked by the operator, and hold only the places the edge allows. One
 * `describe` per point of the tenant-isolation issue; each test is an attack
 * that worked before the point was built. The API's side is in
 * isolation-api.test.ts, previews in isolation-previews.test.ts.
 */
import { decodeJwt } from 'jose';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newId } from '../../shared/ids';
import { api, registerUser, type TestUser } from '../helpers/client';
import { FakeAgent } from '../helpers/fake-agent';
import { runOperatorScript } from '../helpers/operator';
import { TestStack } from '../helpers/stack';
import { poll } from '../helpers/wait';

const HEARTBEAT_MS = 1000;

describe('tenant isolation, agents (real stack)', () => {
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
      const { stdout, stderr } = await runOperatorScript(stack, 'agent-token.ts', ['--name', 'box-one']);
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
      const short = decodeJwt((await runOperatorScript(stack, 'agent-token.ts', ['--name', 'box-two', '--ttl', '2h'])).stdout.trim());
      expect(short.exp! - short.iat!).toBe(7200);
    });

    it('refuses a validly signed token whose agent was never registered', async () => {
      const token = await stack.agentToken({ register: false });
      await expect(FakeAgent.open(stack, { token })).rejects.toMatchObject({ status: 401 });
    });

    it('disconnects a revoked agent within a heartbeat (npm run agent:revoke) and refuses it after', async () => {
      const agent = await stack.startAgent({ name: 'to-revoke' });
      await stack.health((h) => h.agents.some((a) => a.id === agent.id && a.connected), 60_000);
      const { stdout } = await runOperatorScript(stack, 'agent-revoke.ts', [agent.id]);
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
      const seen = await poll(
        async () => {
          const s = (await api<{ session: { status: string; error?: string } }>(stack, 'GET', `/api/containers/${sessionId}`, { token: user.token })).body.session;
          if (s.status !== 'error') throw new Error(`still ${JSON.stringify(s)}`);
          return s;
        },
        `${sessionId} to be marked unavailable`,
        10_000,
      );
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
      const replaced = await poll(() => stack.edgeLogs.find((l) => l.includes('"agent socket replaced"') && l.includes(id)), 'the "agent socket replaced" log line', 10_000);
      expect(replaced).toMatch(/"level":"warn"/);
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
