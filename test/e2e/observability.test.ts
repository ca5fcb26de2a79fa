/**
 * What an operator watches, on the real stack (workerd edge, agent, dockerd):
 * the edge's request log and X-Request-Id, and the agent's Prometheus
 * endpoint moving with real work (a session, a process, relayed output).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, registerUser, TestSocket, type TestUser } from '../helpers/client';
import { hasDocker } from '../helpers/docker';
import { ensureTestImage } from '../helpers/images';
import { freePort, TestStack, type TestAgent } from '../helpers/stack';
import { poll } from '../helpers/wait';

describe.skipIf(!hasDocker)('observability (real stack, Docker)', () => {
  // The Miniflare runner passes the Worker's stdout through whole (wrangler dev at --log-level warn drops info lines).
  const stack = new TestStack({
    runner: 'miniflare',
    edgeVars: { RATE_LIMIT_MAX: '100000', AUTH_RATE_LIMIT_MAX: '100000', DEFAULT_IMAGE: 'mominai/busybox:test' },
  });
  let agent: TestAgent;
  let metricsUrl = '';
  let user: TestUser;
  let sessionId = '';

  /** One sample's value, or undefined when the series is not there. */
  const sample = async (series: string): Promise<number | undefined> => {
    const text = await (await fetch(metricsUrl)).text();
    const line = text.split('\n').find((l) => l.startsWith(`${series} `));
    return line === undefined ? undefined : Number(line.slice(series.length + 1));
  };
  const eventually = async (series: string, pred: (v: number | undefined) => boolean, timeoutMs = 60_000): Promise<void> => {
    await poll(
      async () => {
        const v = await sample(series);
        if (!pred(v)) throw new Error(`${series} is ${v}, still not what the test waits for`);
        return true;
      },
      `${series} to move`,
      timeoutMs,
    );
  };

  beforeAll(async () => {
    await ensureTestImage('busybox');
    await stack.startEdge();
    const port = await freePort();
    metricsUrl = `http://127.0.0.1:${port}/metrics`;
    agent = await stack.startAgent({ name: 'metrics-agent', env: { METRICS_ADDR: `127.0.0.1:${port}` } });
    await agent.waitForLog((l) => l.msg === 'serving metrics', 60_000);
    await stack.health((h) => h.agents.some((a) => a.id === agent.id && a.connected), 60_000);
    user = await registerUser(stack, 'obs');
  });

  afterAll(async () => {
    await stack.stop();
  });

  it('logs one line per request with its route, status and the id returned as X-Request-Id', async () => {
    const res = await api<{ session: { id: string } }>(stack, 'POST', '/api/containers', { token: user.token, body: {} });
    expect(res.status).toBe(201);
    sessionId = res.body.session.id;
    const id = res.headers.get('X-Request-Id')!;
    expect(id).toMatch(/^req_[0-9a-f]{16}$/);
    const line = await poll(() => stack.edgeLogs.map(parse).find((l) => l?.msg === 'request' && l.requestId === id), `the request line of ${id}`, 10_000);
    expect(line).toEqual({
      time: expect.any(String),
      level: 'info',
      component: 'edge',
      msg: 'request',
      method: 'POST',
      route: '/api/containers',
      status: 201,
      durationMs: expect.any(Number),
      requestId: id,
    });
    const mine = await api(stack, 'GET', `/api/containers/${sessionId}`, { token: user.token, headers: { 'X-Request-Id': 'ide-7f3a' } });
    expect(mine.status).toBe(200);
    expect(mine.headers.get('X-Request-Id')).toBe('ide-7f3a');
    const second = await poll(() => stack.edgeLogs.map(parse).find((l) => l?.msg === 'request' && l.requestId === 'ide-7f3a'), 'the request line of ide-7f3a', 10_000);
    expect([second?.method, second?.route, second?.status]).toEqual(['GET', '/api/containers/:sessionId', 200]);
  });

  it('serves agent metrics that follow the work: tunnel, Docker calls, sessions, processes, relayed output', async () => {
    expect(await sample('mominai_agent_tunnel_connected')).toBe(1);
    expect(await sample('mominai_agent_tunnel_reconnects_total')).toBe(0);
    expect(await sample('mominai_agent_docker_call_seconds_count{method="POST",operation="containers/create",outcome="ok"}')).toBeGreaterThanOrEqual(1);
    await eventually('mominai_agent_sessions{state="running"}', (v) => v === 1);

    const sock = await TestSocket.open(stack, user.token, sessionId);
    await sock.waitFor((f) => f.type === 'ready');
    const before = (await sample('mominai_agent_relayed_bytes_total{direction="to_edge"}')) ?? 0;
    const burst = await sock.request('container_command', { command: 'head -c 200000 /dev/zero | tr "\\0" a' });
    expect(burst.type, JSON.stringify(burst)).toBe('process_started');
    await sock.waitFor((f) => f.type === 'command_exit' && f.payload.processId === burst.payload.processId, 60_000);
    // 200,000 bytes of output went to the edge in binary frames (plus their 16-byte headers).
    const after = await sample('mominai_agent_relayed_bytes_total{direction="to_edge"}');
    expect(after! - before).toBeGreaterThanOrEqual(200_000);
    expect(after! - before).toBeLessThan(200_000 + 16 * 64);

    const sleeper = await sock.request('container_command', { command: 'sleep 60' });
    expect(sleeper.type).toBe('process_started');
    await eventually('mominai_agent_processes', (v) => v === 1);
    expect(await sample('mominai_agent_output_streams')).toBeGreaterThanOrEqual(2);
    await sock.request('kill', { processId: sleeper.payload.processId });
    await eventually('mominai_agent_processes', (v) => v === 0);
    sock.close();

    const stop = await api(stack, 'POST', `/api/containers/${sessionId}/stop`, { token: user.token });
    expect(stop.status).toBe(200);
    await eventually('mominai_agent_sessions{state="running"}', (v) => v === undefined);
    expect(await sample('mominai_agent_sessions{state="stopped"}')).toBe(1);
  });
});

function parse(line: string): Record<string, unknown> | undefined {
  try {
    return JSON.parse(line) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}
