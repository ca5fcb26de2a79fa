/**
 * Many agents on one edge (real workerd, two real agent processes, dockerd):
 * placement by free places under the edge's AGENT_MAX_SESSIONS ceiling, full
 * agents, stopped sessions freeing their place, draining, and an agent that
 * disappears and comes back.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, registerUser, type TestUser } from '../helpers/client';
import { hasDocker } from '../helpers/docker';
import { ensureTestImage } from '../helpers/images';
import { TestStack, type TestAgent } from '../helpers/stack';
import { poll } from '../helpers/wait';

const IMAGE = 'mominai/busybox:test';

interface Session {
  id: string;
  status: string;
  agentId: string;
  error?: string;
}

interface AdminAgent {
  id: string;
  name: string;
  connected: boolean;
  draining: boolean;
  capacity: { claimed: number; maxSessions: number } | null;
  running: number;
  sessions: number;
  free: number;
}

const hex = (n: number) => Array.from(crypto.getRandomValues(new Uint8Array(n)), (b) => b.toString(16).padStart(2, '0')).join('');

describe.skipIf(!hasDocker)('many agents on one edge (real stack, Docker)', () => {
  const stack = new TestStack({
    edgeVars: { RATE_LIMIT_MAX: '100000', AUTH_RATE_LIMIT_MAX: '100000', DEFAULT_IMAGE: IMAGE, AGENT_MAX_SESSIONS: '3', MAX_SESSIONS_PER_USER: '20' },
  });
  // Ids that sort A before B, so ties go to A.
  const idA = `agt_0${hex(11)}`;
  const idB = `agt_f${hex(11)}`;
  // A says 2 places; B says 10, which the edge caps at AGENT_MAX_SESSIONS = 3.
  const envA = { MAX_SESSIONS: '2', CONTAINER_MEMORY_LIMIT: '64m' };
  const envB = { MAX_SESSIONS: '10', CONTAINER_MEMORY_LIMIT: '64m' };
  let agentB: TestAgent;
  let user: TestUser;
  const placed: Session[] = [];

  const create = () => api<{ session: Session; error: { code: string; message: string } }>(stack, 'POST', '/api/containers', { token: user.token, body: {} });
  const get = async (id: string) => (await api<{ session: Session }>(stack, 'GET', `/api/containers/${id}`, { token: user.token })).body.session;
  const admin = async () => {
    const res = await api<{ agents: AdminAgent[] }>(stack, 'GET', '/api/admin/agents', { headers: stack.operatorAuth });
    expect(res.status).toBe(200);
    return new Map(res.body.agents.map((a) => [a.id, a]));
  };

  beforeAll(async () => {
    await ensureTestImage('busybox');
    await stack.startEdge();
    await stack.startAgent({ id: idA, name: `many-a-${idA.slice(-6)}`, env: envA });
    agentB = await stack.startAgent({ id: idB, name: `many-b-${idB.slice(-6)}`, env: envB });
    await stack.health((h) => [idA, idB].every((id) => h.agents.some((a) => a.id === id && a.connected)), 60_000);
    user = await registerUser(stack, 'many');
  });
  afterAll(async () => {
    await stack.stop();
  });

  it('places each session on the agent with the most free places, under the edge ceiling, until both are full (503 no_capacity)', async () => {
    for (let i = 0; i < 5; i++) {
      const res = await create();
      expect(res.status, JSON.stringify(res.body)).toBe(201);
      placed.push(res.body.session);
    }
    // Free places before each: A 2 / B 3 → B; 2/2 → A (tie: lower id); 1/2 → B; 1/1 → A; 0/1 → B.
    expect(placed.map((s) => s.agentId)).toEqual([idB, idA, idB, idA, idB]);
    const full = await create();
    expect(full.status).toBe(503);
    expect(full.body.error).toEqual({ code: 'no_capacity', message: 'every agent is full' });

    const agents = await admin();
    expect(agents.get(idA)).toMatchObject({ connected: true, draining: false, capacity: { claimed: 2, maxSessions: 2 }, running: 2, sessions: 2, free: 0 });
    expect(agents.get(idB)).toMatchObject({ connected: true, draining: false, capacity: { claimed: 10, maxSessions: 3 }, running: 3, sessions: 3, free: 0 });
  });

  it('counts running sessions only: a stopped session frees its place, and starting it again needs one', async () => {
    const onB = placed.filter((s) => s.agentId === idB);
    const stopped = await api<{ session: Session }>(stack, 'POST', `/api/containers/${onB[0]!.id}/stop`, { token: user.token });
    expect(stopped.body.session.status).toBe('stopped');
    const next = await create();
    expect(next.status).toBe(201);
    expect(next.body.session.agentId).toBe(idB);
    // B is full again, so the stopped one cannot start...
    const refused = await api<{ error: { code: string; message: string } }>(stack, 'POST', `/api/containers/${onB[0]!.id}/start`, { token: user.token });
    expect(refused.status).toBe(503);
    expect(refused.body.error).toEqual({ code: 'no_capacity', message: "the session's agent is full; stop another session first" });
    // ...until a place is free.
    expect((await api(stack, 'DELETE', `/api/containers/${next.body.session.id}`, { token: user.token })).status).toBe(200);
    const started = await api<{ session: Session }>(stack, 'POST', `/api/containers/${onB[0]!.id}/start`, { token: user.token });
    expect(started.status).toBe(200);
    expect(started.body.session.status).toBe('running');
  });

  it('drains an agent: no new placements there, while its sessions keep running', async () => {
    // Two places free on B, none on A.
    for (const s of placed.filter((x) => x.agentId === idB).slice(1)) {
      expect((await api(stack, 'DELETE', `/api/containers/${s.id}`, { token: user.token })).status).toBe(200);
    }
    const drained = await api<{ agent: AdminAgent }>(stack, 'POST', `/api/admin/agents/${idB}/drain`, { headers: stack.operatorAuth });
    expect(drained.status).toBe(200);
    expect(drained.body.agent).toMatchObject({ id: idB, draining: true, running: 1, free: 2 });
    const none = await create();
    expect(none.status).toBe(503);
    expect(none.body.error.code).toBe('no_capacity');

    // B's session still runs commands.
    const running = placed.find((s) => s.agentId === idB)!;
    const exec = await api<{ exitCode: number; stdout: string }>(stack, 'POST', `/api/containers/${running.id}/exec`, { token: user.token, body: { command: 'echo still here' } });
    expect(exec.status).toBe(200);
    expect(exec.body).toMatchObject({ exitCode: 0, stdout: 'still here\n' });

    // A place on A: the new session goes there, although B has more free places.
    const onA = placed.find((s) => s.agentId === idA)!;
    expect((await api(stack, 'DELETE', `/api/containers/${onA.id}`, { token: user.token })).status).toBe(200);
    const toA = await create();
    expect(toA.status).toBe(201);
    expect(toA.body.session.agentId).toBe(idA);

    const undrained = await api<{ agent: AdminAgent }>(stack, 'POST', `/api/admin/agents/${idB}/undrain`, { headers: stack.operatorAuth });
    expect(undrained.body.agent).toMatchObject({ id: idB, draining: false });
    const toB = await create();
    expect(toB.status).toBe(201);
    expect(toB.body.session.agentId).toBe(idB);
    expect((await admin()).get(idB)).toMatchObject({ draining: false, running: 2, free: 1 });
  });

  it('refuses admin routes without the operator token', async () => {
    const res = await api<{ error: { code: string } }>(stack, 'POST', `/api/admin/agents/${idB}/drain`, { token: user.token });
    expect(res.status).toBe(401);
    expect(res.body.error.code).toBe('invalid_token');
    expect((await admin()).get(idB)?.draining).toBe(false);
  });

  it('marks the sessions of an agent that disappears agent_unavailable, and they come back when it reconnects', async () => {
    const list = await api<{ sessions: Session[] }>(stack, 'GET', '/api/containers', { token: user.token });
    const onB = list.body.sessions.filter((s) => s.agentId === idB && s.status === 'running');
    const onA = list.body.sessions.filter((s) => s.agentId === idA && s.status === 'running');
    expect(onB.length).toBe(2);
    agentB.proc.child.kill('SIGKILL');
    await agentB.proc.exited;
    for (const s of onB) {
      const seen = await poll(async () => {
        const v = await get(s.id);
        if (v.status !== 'error') throw new Error(`still ${JSON.stringify(v)}`);
        return v;
      }, `${s.id} unavailable`);
      expect(seen).toMatchObject({ status: 'error', error: 'agent_unavailable', agentId: idB });
    }
    // A's sessions are untouched.
    for (const s of onA) expect((await get(s.id)).status).toBe('running');

    agentB = await stack.startAgent({ id: idB, name: `many-b-${idB.slice(-6)}`, env: envB });
    await stack.health((h) => h.agents.some((a) => a.id === idB && a.connected), 60_000);
    for (const s of onB) {
      const back = await get(s.id);
      expect(back.status).toBe('running');
      expect(back.error).toBeUndefined();
    }
    const exec = await api<{ exitCode: number; stdout: string }>(stack, 'POST', `/api/containers/${onB[0]!.id}/exec`, { token: user.token, body: { command: 'echo back' } });
    expect(exec.body).toMatchObject({ exitCode: 0, stdout: 'back\n' });
  });
});

describe('operator routes: refusals', () => {
  const stack = new TestStack();
  beforeAll(async () => {
    await stack.startEdge();
  });
  afterAll(async () => {
    await stack.stop();
  });

  it.each([
    ['no token', {}, 401, 'unauthorized'],
    ['a wrong token', { Authorization: 'Bearer not-the-operator-token' }, 401, 'invalid_token'],
  ])('refuses %s with %i %s', async (_n, headers, status, code) => {
    const res = await api<{ error: { code: string } }>(stack, 'GET', '/api/admin/agents', { headers });
    expect(res.status).toBe(status);
    expect(res.body.error.code).toBe(code);
  });

  it('refuses a bad registration with 400 validation_failed naming the field', async () => {
    for (const [body, field] of [
      [{ name: 'has space' }, 'name'],
      [{ name: 'ok', ttl: '5s' }, 'ttl'],
      [{ name: 'ok', ttl: 'forever' }, 'ttl'],
      [{ name: 'ok', id: 'usr_0123456789' }, 'id'],
    ] as const) {
      const res = await api<{ error: { code: string; details: { issues: Array<{ path: string }> } } }>(stack, 'POST', '/api/admin/agents', { headers: stack.operatorAuth, body });
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.error.code).toBe('validation_failed');
      expect(res.body.error.details.issues.map((i) => i.path)).toEqual([field]);
    }
  });

  it('answers 404 for draining or revoking an agent it does not know', async () => {
    const drain = await api<{ error: { code: string; message: string } }>(stack, 'POST', '/api/admin/agents/agt_0123456789/drain', { headers: stack.operatorAuth });
    expect(drain.status).toBe(404);
    expect(drain.body.error).toEqual({ code: 'not_found', message: 'agent agt_0123456789 has never connected to this edge' });
    const revoke = await api<{ error: { code: string; message: string } }>(stack, 'POST', '/api/admin/agents/nobody/revoke', { headers: stack.operatorAuth });
    expect(revoke.status).toBe(404);
    expect(revoke.body.error).toEqual({ code: 'not_found', message: 'no registered agent named nobody' });
  });

  it('lists a registered agent that has not connected yet', async () => {
    const token = await stack.agentToken({ id: 'agt_00112233aabbccdd', name: 'waiting' });
    expect(token.split('.')).toHaveLength(3);
    const res = await api<{ agents: Array<Record<string, unknown>> }>(stack, 'GET', '/api/admin/agents', { headers: stack.operatorAuth });
    expect(res.body.agents).toEqual([
      expect.objectContaining({ id: 'agt_00112233aabbccdd', name: 'waiting', revokedAt: null, mode: null, connected: false, draining: false, capacity: null, running: 0, sessions: 0, free: 0 }),
    ]);
  });
});
