/**
 * Container sessions on the real stack: workerd edge, agent process, dockerd.
 */
import fs from 'node:fs';
import path from 'node:path';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { hasDocker } from '../helpers/docker';
import { api, registerUser, TestSocket, type TestUser } from '../helpers/client';
import { ensureTestImage } from '../helpers/images';
import { TestStack, type TestAgent } from '../helpers/stack';

const IMAGE = 'mominai/busybox:test';
const IDLE_MS = 6_000;

interface Session {
  id: string;
  status: string;
  agentId: string;
  ports: number[];
  image: string;
  limits: { cpu: number; memory: number };
  resources?: Record<string, number> | null;
}

describe.skipIf(!hasDocker)('container sessions (real stack, Docker)', () => {
  const docker = new Docker();
  const stack = new TestStack({ edgeVars: { RATE_LIMIT_MAX: '100000', AUTH_RATE_LIMIT_MAX: '100000', DEFAULT_IMAGE: IMAGE, SESSION_IDLE_TIMEOUT: String(IDLE_MS) } });
  let agent: TestAgent;
  const agentId = `agt_${'e2e0'.repeat(4)}${Date.now().toString(16)}`;
  let alice: TestUser;
  let bob: TestUser;

  const containersOf = async (sessionId: string) =>
    docker.listContainers({ all: true, filters: { label: [`dev.mominai.session=${sessionId}`] } });
  const workspaceOf = (user: TestUser, sessionId: string) => path.join(stack.stateDir, 'workspaces', user.id, sessionId);
  /** Activity on these sessions every second until the test ends, so this suite's short idle timeout does not stop them while the agent is away. */
  const keepActive = (user: TestUser, ids: string[]) => {
    const timer = setInterval(() => {
      for (const id of ids) void api(stack, 'GET', `/api/containers/${id}`, { token: user.token }).catch(() => undefined);
    }, 1000);
    onTestFinished(() => clearInterval(timer));
  };
  const create = async (user: TestUser, body: Record<string, unknown> = {}) => {
    const res = await api<{ session: Session }>(stack, 'POST', '/api/containers', { token: user.token, body });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return res.body.session;
  };

  beforeAll(async () => {
    await ensureTestImage('busybox');
    await stack.startEdge();
    agent = await stack.startAgent({ id: agentId, name: 'docker-agent', env: { CONTAINER_MEMORY_LIMIT: '256m', CONTAINER_CPU_LIMIT: '0.5' } });
    await stack.health((h) => h.agents.some((a) => a.id === agentId && a.connected));
    [alice, bob] = await Promise.all([registerUser(stack, 'alice'), registerUser(stack, 'bob')]);
  });
  afterAll(async () => {
    await stack.stop();
    for (const c of await docker.listContainers({ all: true, filters: { label: [`dev.mominai.agent`] } })) {
      if (c.Labels['dev.mominai.agent'] === agentId) await docker.getContainer(c.Id).remove({ force: true });
    }
  });

  it('creates a hardened, limited container with the workspace mounted and no published ports', async () => {
    const session = await create(alice, { name: 'hardened', env: ['FOO=bar'], ports: [3000] });
    expect(session).toMatchObject({ status: 'running', agentId, image: IMAGE, ports: [3000] });
    expect(session.limits).toEqual({ cpu: 0.5, memory: 256 * 1024 * 1024 });

    const [summary] = await containersOf(session.id);
    expect(summary).toBeDefined();
    const info = await docker.getContainer(summary!.Id).inspect();
    const hc = info.HostConfig;
    expect(hc.Memory).toBe(256 * 1024 * 1024);
    expect(hc.MemorySwap).toBe(256 * 1024 * 1024);
    expect(hc.NanoCpus).toBe(0.5e9);
    expect(hc.PidsLimit).toBe(512);
    expect(hc.CapDrop).toEqual(['ALL']);
    expect(hc.SecurityOpt).toContain('no-new-privileges');
    expect(hc.Init).toBe(true);
    expect(hc.Privileged).toBe(false);
    expect(hc.NetworkMode).not.toBe('host');
    expect(hc.NetworkMode).not.toBe('default');
    expect(hc.PortBindings ?? {}).toEqual({});
    expect(hc.PublishAllPorts).toBeFalsy();
    expect(info.Config.User).not.toMatch(/^(|0|root)(:.*)?$/);
    expect(info.Config.Env).toContain('FOO=bar');
    expect(info.Config.Labels).toMatchObject({ 'dev.mominai.session': session.id, 'dev.mominai.user': alice.id, 'dev.mominai.agent': agentId });
    const mount = info.Mounts.find((m) => m.Destination === '/workspace');
    expect(mount?.Source).toBe(workspaceOf(alice, session.id));
    expect(mount?.RW).toBe(true);
    expect(info.Mounts.some((m) => m.Source.includes('docker.sock'))).toBe(false);
    expect(fs.existsSync(workspaceOf(alice, session.id))).toBe(true);
  });

  it('shows the record with live resources, stops, starts and deletes, leaving nothing behind', async () => {
    const session = await create(alice, { name: 'lifecycle' });
    const got = await api<{ session: Session }>(stack, 'GET', `/api/containers/${session.id}`, { token: alice.token });
    expect(got.status).toBe(200);
    expect(got.body.session.resources).toMatchObject({ memoryLimit: expect.any(Number), cpuPercent: expect.any(Number) });
    expect(got.body.session.resources!.memoryUsed).toBeGreaterThan(0);

    const stopped = await api<{ session: Session }>(stack, 'POST', `/api/containers/${session.id}/stop`, { token: alice.token });
    expect(stopped.body.session.status).toBe('stopped');
    expect((await containersOf(session.id))[0]?.State).not.toBe('running');

    const started = await api<{ session: Session }>(stack, 'POST', `/api/containers/${session.id}/start`, { token: alice.token });
    expect(started.body.session.status).toBe('running');
    expect((await containersOf(session.id))[0]?.State).toBe('running');

    const del = await api(stack, 'DELETE', `/api/containers/${session.id}`, { token: alice.token });
    expect(del.status).toBe(200);
    expect(await containersOf(session.id)).toEqual([]);
    expect(fs.existsSync(workspaceOf(alice, session.id))).toBe(false);
    expect((await api(stack, 'GET', `/api/containers/${session.id}`, { token: alice.token })).status).toBe(404);
    const list = await api<{ sessions: Session[] }>(stack, 'GET', '/api/containers', { token: alice.token });
    expect(list.body.sessions.some((s) => s.id === session.id)).toBe(false);
  });

  it('keeps users apart: 403 on another user\'s session, lists only one\'s own', async () => {
    const mine = await create(bob, { name: 'bobs' });
    for (const [method, suffix] of [
      ['GET', ''],
      ['POST', '/stop'],
      ['POST', '/start'],
      ['DELETE', ''],
    ] as const) {
      const res = await api<{ error: { code: string } }>(stack, method, `/api/containers/${mine.id}${suffix}`, { token: alice.token });
      expect(res.status, `${method} ${suffix}`).toBe(403);
      expect(res.body.error.code).toBe('forbidden');
    }
    const aliceList = await api<{ sessions: Session[] }>(stack, 'GET', '/api/containers', { token: alice.token });
    expect(aliceList.body.sessions.some((s) => s.id === mine.id)).toBe(false);
    const bobList = await api<{ sessions: Session[] }>(stack, 'GET', '/api/containers', { token: bob.token });
    expect(bobList.body.sessions.map((s) => s.id)).toEqual([mine.id]);
    await expect(TestSocket.open(stack, alice.token, mine.id)).rejects.toMatchObject({ status: 403 });
    expect((await containersOf(mine.id))[0]?.State).toBe('running');
  });

  it('answers bad requests with the documented errors', async () => {
    const cases: Array<[string, string, unknown, number, string]> = [
      ['GET', '/api/containers/ses_0123456789abcdef', undefined, 404, 'not_found'],
      ['GET', '/api/containers/not-an-id', undefined, 404, 'not_found'],
      ['POST', '/api/containers', { ports: [0] }, 400, 'validation_failed'],
      ['POST', '/api/containers', { ports: Array.from({ length: 11 }, (_, i) => 3000 + i) }, 400, 'validation_failed'],
      ['POST', '/api/containers', { env: ['1BAD=x'] }, 400, 'validation_failed'],
      ['POST', '/api/containers', { env: ['NOEQUALS'] }, 400, 'validation_failed'],
      ['POST', '/api/containers', { image: 'bad image; rm -rf /' }, 400, 'validation_failed'],
      ['POST', '/api/containers', { surprise: true }, 400, 'validation_failed'],
    ];
    for (const [method, p, body, status, code] of cases) {
      const res = await api<{ error: { code: string } }>(stack, method, p, { token: alice.token, ...(body !== undefined ? { body } : {}) });
      expect(res.status, `${method} ${p} ${JSON.stringify(body)}`).toBe(status);
      expect(res.body.error.code).toBe(code);
    }
    expect((await api(stack, 'GET', '/api/containers')).status).toBe(401);
  });

  it('says clearly, and quickly, that an image is missing, and leaves nothing behind', async () => {
    const started = Date.now();
    const res = await api<{ error: { code: string; message: string } }>(stack, 'POST', '/api/containers', {
      token: alice.token,
      body: { image: 'mominai/does-not-exist:never' },
    });
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('image_not_found');
    expect(res.body.error.message).toContain('mominai/does-not-exist:never');
    expect(Date.now() - started).toBeLessThan(60_000);
    const list = await api<{ sessions: Session[] }>(stack, 'GET', '/api/containers', { token: alice.token });
    expect(list.body.sessions.every((s) => s.image !== 'mominai/does-not-exist:never')).toBe(true);
  });

  it('serves the session WebSocket: ready, errors that keep the socket open, 401 without a token', async () => {
    const user = await registerUser(stack, 'wsuser');
    const session = await create(user);
    const sock = await TestSocket.open(stack, user.token); // the only session: no sessionId needed
    const ready = await sock.waitFor((f) => f.type === 'ready');
    expect((ready.payload.session as Session).id).toBe(session.id);
    sock.ws.send('not json');
    expect((await sock.waitFor((f) => f.type === 'error' && f.payload.code === 'invalid_json')).payload.code).toBe('invalid_json');
    const unknown = await sock.request('warp_drive', {});
    expect(unknown).toMatchObject({ type: 'error', payload: { code: 'protocol_error' } });
    expect((await sock.request('ping')).type).toBe('pong');
    expect(sock.closed).toBeUndefined();

    const statusSeen = sock.waitFor((f) => f.type === 'container_status' && f.payload.status === 'stopped');
    await api(stack, 'POST', `/api/containers/${session.id}/stop`, { token: user.token });
    await statusSeen;
    sock.close();
    await expect(TestSocket.open(stack, 'garbage')).rejects.toMatchObject({ status: 401 });
    await expect(TestSocket.open(stack, '')).rejects.toMatchObject({ status: 401 });
  });

  it('stops an idle session after warning, keeps its workspace, and starts it again', async () => {
    const user = await registerUser(stack, 'idler');
    const session = await create(user);
    fs.writeFileSync(path.join(workspaceOf(user, session.id), 'keep.txt'), 'still here');
    const sock = await TestSocket.open(stack, user.token, session.id);
    const warning = await sock.waitFor((f) => f.type === 'idle_warning', IDLE_MS + 30_000);
    expect(Number(warning.payload.inMs)).toBeGreaterThan(0);
    const stopped = await sock.waitFor((f) => f.type === 'container_status' && f.payload.status === 'stopped', IDLE_MS + 30_000);
    expect(stopped.payload.reason).toBe('idle');
    expect((await containersOf(session.id))[0]?.State).not.toBe('running');
    expect(fs.readFileSync(path.join(workspaceOf(user, session.id), 'keep.txt'), 'utf8')).toBe('still here');
    const started = await api<{ session: Session }>(stack, 'POST', `/api/containers/${session.id}/start`, { token: user.token });
    expect(started.body.session.status).toBe('running');
    sock.close();
  });

  it('re-attaches running sessions when the agent restarts, losing and duplicating none', async () => {
    const user = await registerUser(stack, 'restart');
    const a = await create(user, { name: 'one' });
    const b = await create(user, { name: 'two' });
    keepActive(user, [a.id, b.id]);
    await agent.proc.stop();
    await stack.health((h) => h.agents.some((x) => x.id === agentId && !x.connected));
    agent = await stack.startAgent({ id: agentId, name: 'docker-agent', env: { CONTAINER_MEMORY_LIMIT: '256m', CONTAINER_CPU_LIMIT: '0.5' } });
    await stack.health((h) => h.agents.some((x) => x.id === agentId && x.connected));
    for (const s of [a, b]) {
      const got = await api<{ session: Session }>(stack, 'GET', `/api/containers/${s.id}`, { token: user.token });
      expect(got.body.session.status).toBe('running');
      expect(await containersOf(s.id)).toHaveLength(1);
    }
    const list = await api<{ sessions: Session[] }>(stack, 'GET', '/api/containers', { token: user.token });
    expect(list.body.sessions.map((s) => s.id).sort()).toEqual([a.id, b.id].sort());
  });

  it('answers 503 while the agent is away, and removes containers no session owns when it reconnects', async () => {
    const user = await registerUser(stack, 'orphan');
    const s = await create(user);
    keepActive(user, [s.id]);
    await agent.proc.stop();
    // Deleting while the agent is away fails cleanly (503) and loses nothing.
    const del = await api<{ error: { code: string } }>(stack, 'DELETE', `/api/containers/${s.id}`, { token: user.token });
    expect(del.status).toBe(503);
    expect(del.body.error.code).toBe('agent_unavailable');
    // A container labelled for this agent whose session the edge never knew (as after a create that timed out).
    const orphanId = `ses_${'0d'.repeat(12)}`;
    const orphan = await docker.createContainer({
      Image: IMAGE,
      Cmd: ['sleep', '600'],
      Labels: { 'dev.mominai.session': orphanId, 'dev.mominai.user': user.id, 'dev.mominai.agent': agentId, 'dev.mominai.managed': 'true' },
      HostConfig: { Init: true },
    });
    await orphan.start();
    agent = await stack.startAgent({ id: agentId, name: 'docker-agent', env: { CONTAINER_MEMORY_LIMIT: '256m', CONTAINER_CPU_LIMIT: '0.5' } });
    await stack.health((h) => h.agents.some((x) => x.id === agentId && x.connected));
    const deadline = Date.now() + 30_000;
    while ((await containersOf(orphanId)).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    expect(await containersOf(orphanId)).toEqual([]);
    // The real session was re-attached, not removed.
    expect((await containersOf(s.id))[0]?.State).toBe('running');
    expect((await api(stack, 'DELETE', `/api/containers/${s.id}`, { token: user.token })).status).toBe(200);
    expect(await containersOf(s.id)).toEqual([]);
  });

  it('limits sessions per user and answers 503 no_capacity without an agent', async () => {
    const user = await registerUser(stack, 'greedy');
    const made: Session[] = [];
    for (let i = 0; i < 5; i++) made.push(await create(user));
    const sixth = await api<{ error: { code: string } }>(stack, 'POST', '/api/containers', { token: user.token, body: {} });
    expect(sixth.status).toBe(409);
    expect(sixth.body.error.code).toBe('conflict');
    for (const s of made) expect((await api(stack, 'DELETE', `/api/containers/${s.id}`, { token: user.token })).status).toBe(200);

    await agent.proc.stop();
    await stack.health((h) => h.agents.every((x) => !x.connected));
    const none = await api<{ error: { code: string } }>(stack, 'POST', '/api/containers', { token: user.token, body: {} });
    expect(none.status).toBe(503);
    expect(none.body.error.code).toBe('no_capacity');
  });
});
