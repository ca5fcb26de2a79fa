/**
 * The warm pool through the real stack (workerd edge, agent process,
 * dockerd): sessions of two users claimed from the pool see nothing of each
 * other; pooled containers carry no user label until claimed; an agent killed
 * with SIGKILL leaks no pooled container, because the next start removes
 * the unclaimed ones and keeps the claimed sessions (with their env).
 */
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Labels } from '../../agent/runtime/docker/container-spec';
import { POOL_LABEL } from '../../agent/runtime/docker/pool-claims';
import { api, assembleOutput, registerUser, TestSocket, type TestUser } from '../helpers/client';
import { hasDocker } from '../helpers/docker';
import { ensureTestImage } from '../helpers/images';
import { TestStack, type TestAgent } from '../helpers/stack';

const IMAGE = 'mominai/busybox:test';
const docker = new Docker();

describe.skipIf(!hasDocker)('warm pool (real stack, Docker)', () => {
  const stack = new TestStack({ edgeVars: { RATE_LIMIT_MAX: '100000', AUTH_RATE_LIMIT_MAX: '100000', DEFAULT_IMAGE: IMAGE } });
  const agentId = `agt_${'f00d'.repeat(4)}${Date.now().toString(16)}`;
  const name = 'pool-agent';
  let token: string;
  let agent: TestAgent;
  let alice: TestUser;
  let bob: TestUser;
  const sessions: Array<{ id: string; user: TestUser }> = [];
  const agentEnv = (size: number) => ({ WARM_POOL_SIZE: String(size), DEFAULT_IMAGE: IMAGE });

  const pooled = () => docker.listContainers({ all: true, filters: { label: [`${Labels.agent}=${agentId}`, POOL_LABEL] } });
  /** Polls the engine until `pred` holds: the pool fills in the background. */
  const poolUntil = async (pred: (list: Docker.ContainerInfo[]) => boolean, what: string, timeoutMs = 60_000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const list = await pooled();
      if (pred(list)) return list;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; pooled now: ${list.length}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const run = async (user: TestUser, sessionId: string, command: string) => {
    const sock = await TestSocket.open(stack, user.token, sessionId);
    await sock.waitFor((f) => f.type === 'ready');
    const reply = await sock.request('container_command', { command });
    expect(reply.type, JSON.stringify(reply)).toBe('process_started');
    const pid = String(reply.payload.processId);
    await sock.waitFor((f) => f.type === 'command_exit' && f.payload.processId === pid, 60_000);
    sock.close();
    return assembleOutput(sock.frames, pid).stdout;
  };
  const create = async (user: TestUser, env: string[]) => {
    const res = await api<{ session: { id: string; status: string } }>(stack, 'POST', '/api/containers', { token: user.token, body: { env } });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    sessions.push({ id: res.body.session.id, user });
    return res.body.session.id;
  };

  beforeAll(async () => {
    await ensureTestImage('busybox');
    await stack.startEdge();
    token = await stack.agentToken({ id: agentId, name });
    agent = await stack.startAgent({ id: agentId, name, token, env: agentEnv(2) });
    await stack.health((h) => h.agents.some((a) => a.id === agentId && a.connected));
    [alice, bob] = await Promise.all([registerUser(stack, 'poola'), registerUser(stack, 'poolb')]);
  });
  afterAll(async () => {
    for (const s of sessions) await api(stack, 'DELETE', `/api/containers/${s.id}`, { token: s.user.token }).catch(() => undefined);
    await stack.stop();
  });

  it('gives two users sessions from the pool that see nothing of each other: files, env, processes', async () => {
    await agent.waitForLog((l) => l.msg === 'warm pool full', 60_000);
    const before = await pooled();
    expect(before.length).toBe(2);
    for (const c of before) {
      expect(c.State).toBe('running');
      expect(c.Labels[Labels.user]).toBeUndefined();
      expect(c.Labels[Labels.session]).toBeUndefined();
    }
    const a = await create(alice, ['SECRET=alpha']);
    const b = await create(bob, ['SECRET=beta']);
    const ids = await Promise.all([a, b].map(async (s) => (await docker.getContainer(`mominai-${s}`).inspect()).Id));
    expect(ids.every((id) => before.some((c) => c.Id === id))).toBe(true);
    // Claimed containers keep their labels (Docker cannot change them): still no user label.
    for (const id of ids) expect((await docker.getContainer(id).inspect()).Config.Labels?.[Labels.user]).toBeUndefined();

    const sockA = await TestSocket.open(stack, alice.token, a);
    await sockA.waitFor((f) => f.type === 'ready');
    const bg = await sockA.request('container_command', { command: 'echo alpha > /workspace/mine; sleep 4243' });
    expect(bg.type).toBe('process_started');
    const look = 'ls -A /workspace; echo "env:$SECRET"; ps -o args | grep -c "[s]leep 4243" || true';
    // A's own view first: the look sees the file, the env and the process it looks for.
    const deadline = Date.now() + 30_000;
    let seenByA = '';
    while (seenByA !== 'mine\nenv:alpha\n1\n' && Date.now() < deadline) seenByA = await run(alice, a, look);
    expect(seenByA).toBe('mine\nenv:alpha\n1\n');
    expect(await run(bob, b, look)).toBe('env:beta\n0\n');
    await sockA.request('kill', { processId: String(bg.payload.processId), signal: 'SIGKILL' });
    sockA.close();
  });

  it('leaks no pooled container when the agent is killed: the next start removes the unclaimed ones and keeps the sessions', async () => {
    if (sessions.length === 0) {
      // Run alone: claim one session first, as the test above does.
      await agent.waitForLog((l) => l.msg === 'warm pool full', 60_000);
      const id = await create(alice, ['SECRET=alpha']);
      expect(await run(alice, id, 'echo alpha > /workspace/mine')).toBe('');
    }
    const a = sessions[0]!;
    // The pool refilled behind the claims.
    const full = await poolUntil((l) => l.length === sessions.length + 2, 'the pool to refill');
    const claimed = await Promise.all(sessions.map(async (s) => (await docker.getContainer(`mominai-${s.id}`).inspect()).Id));
    expect(full.filter((c) => !claimed.includes(c.Id)).length).toBe(2);

    process.kill(-agent.proc.child.pid!, 'SIGKILL');
    await agent.proc.exited;
    expect((await pooled()).length).toBe(sessions.length + 2);

    const next = await stack.startAgent({ id: agentId, name, token, env: agentEnv(0) });
    const line = await next.waitForLog((l) => l.msg === 'warm pool reconciled', 60_000);
    expect(line).toMatchObject({ removedUnclaimed: 2, claimed: sessions.length, size: 0 });
    expect((await pooled()).map((c) => c.Id).sort()).toEqual([...claimed].sort());
    await stack.health((h) => h.agents.some((x) => x.id === agentId && x.connected));
    const got = await api<{ session: { status: string } }>(stack, 'GET', `/api/containers/${a.id}`, { token: alice.token });
    expect(got.status).toBe(200);
    expect(got.body.session.status).toBe('running');
    // The claim record outlived the agent: the session's env still reaches its commands.
    expect(await run(alice, a.id, 'echo "env:$SECRET"; cat /workspace/mine')).toBe('env:alpha\nalpha\n');
  });
});
