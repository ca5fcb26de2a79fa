/**
 * The edge under Miniflare (EDGE_RUNNER=miniflare, scripts/edge-miniflare.ts),
 * which the benchmarks use: the same Worker and the same API as under
 * `wrangler dev`, and the same state files, so one runner opens what the
 * other wrote. The rest of the suite runs under wrangler dev, what `npm start` runs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasDocker } from '../helpers/docker';
import { api, assembleOutput, registerUser, TestSocket, type TestUser } from '../helpers/client';
import { refusedBodiesThenNormal } from '../helpers/refused-bodies';
import { createSession, startEdgeWithAgent } from '../helpers/sessions';
import { TestStack } from '../helpers/stack';

describe('edge under Miniflare', () => {
  const stack = new TestStack({ runner: 'miniflare', edgeVars: { DEFAULT_IMAGE: 'mominai/busybox:test' } });

  afterAll(async () => {
    await stack.stop();
  });

  it('serves the API, and its state opens under wrangler dev afterwards', async () => {
    await stack.startEdge();
    const health = await (await fetch(`${stack.baseUrl}/health`)).json();
    expect(health).toMatchObject({ system: { runtime: 'workerd' } });
    const user = await registerUser(stack, 'mf');
    expect((await api(stack, 'GET', '/api/auth/me', { token: user.token })).status).toBe(200);
    // A bad body gets the documented error shape here too.
    const bad = await api(stack, 'POST', '/api/auth/login', { body: { email: 'nope' } });
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ error: { code: 'validation_failed' } });

    // The same STATE_DIR under wrangler dev: the user is still there.
    await stack.stopEdge();
    const wrangler = new TestStack({ runner: 'wrangler', reuse: { stateDir: stack.stateDir, secrets: stack.secrets } });
    try {
      await wrangler.startEdge();
      const login = await fetch(`${wrangler.baseUrl}/api/auth/login`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ email: user.email, password: 'correct horse battery' }),
      });
      expect(login.status).toBe(200);
    } finally {
      await wrangler.stopEdge();
    }
  }, 120_000);
});

describe.skipIf(!hasDocker)('edge under Miniflare, with a Docker agent', () => {
  const stack = new TestStack({ runner: 'miniflare', edgeVars: { DEFAULT_IMAGE: 'mominai/busybox:test' } });
  let user: TestUser;
  let sessionId: string;

  beforeAll(async () => {
    await startEdgeWithAgent(stack, { agentName: 'mf-agent', image: 'busybox' });
    user = await registerUser(stack, 'mfd');
    sessionId = await createSession(stack, user);
  }, 120_000);
  afterAll(async () => {
    await stack.stop();
  });

  it('runs a command with binary output and round-trips a file', async () => {
    const sock = await TestSocket.open(stack, user.token, sessionId, { output: 'binary' });
    await sock.waitFor((f) => f.type === 'ready');
    const started = await sock.request('container_command', { command: 'printf "a\\000b"; echo err >&2; exit 3' });
    const pid = String(started.payload.processId);
    const exit = await sock.waitFor((f) => f.type === 'command_exit' && f.payload.processId === pid, 60_000);
    expect(exit.payload).toMatchObject({ exitCode: 3 });
    const out = assembleOutput(sock.frames, pid);
    expect(out.problems).toEqual([]);
    expect([...Buffer.from(out.stdout, 'latin1')]).toEqual([0x61, 0, 0x62]);
    expect(out.stderr).toBe('err\n');
    sock.close();

    const url = `${stack.baseUrl}/api/containers/${sessionId}/files/notes/a.txt?parents=1`;
    const put = await fetch(url, { method: 'PUT', headers: { Authorization: `Bearer ${user.token}`, 'Content-Type': 'text/plain' }, body: 'hello miniflare' });
    expect(put.status).toBe(200);
    const get = await fetch(url.replace('?parents=1', ''), { headers: { Authorization: `Bearer ${user.token}` } });
    expect(await get.text()).toBe('hello miniflare');
  }, 120_000);

  it('answers every request after a refused body on the same connection (no 503)', async () => {
    const stranger = await registerUser(stack, 'mfs');
    expect(await refusedBodiesThenNormal(stack.baseUrl, { token: user.token, sessionId }, stranger)).toEqual([]);
  }, 120_000);
});
