/**
 * The walking skeleton on real parts: the edge in workerd (wrangler dev) and
 * real agent processes dialling it over the tunnel.
 */
import { SignJWT } from 'jose';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signToken } from '../../edge/auth/tokens';
import { newId } from '../../shared/ids';
import { PROTOCOL_VERSION } from '../../shared/protocol/version';
import { hasDocker } from '../helpers/docker';
import { TestStack } from '../helpers/stack';

const HEARTBEAT_MS = 1000;

function system() {
  return { hostname: 't', platform: 'linux', arch: 'x64', cpus: 1, loadavg: [0, 0, 0], memTotal: 1, memFree: 1, uptime: 1 };
}

/** Opens a raw control socket with a token and resolves once it is open (or rejects with the HTTP status). */
function rawControlSocket(stack: TestStack, token: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${stack.wsUrl}/agent/connect`, { headers: { Authorization: `Bearer ${token}` } });
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    ws.once('error', reject);
  });
}

function nextMessage(ws: WebSocket, timeoutMs = 10_000): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('no message')), timeoutMs);
    ws.once('message', (data) => {
      clearTimeout(t);
      resolve(JSON.parse(data.toString()) as Record<string, unknown>);
    });
  });
}

describe('foundation: edge ⇄ agent tunnel on the real stack', () => {
  const stack = new TestStack({ edgeVars: { HEARTBEAT_INTERVAL_MS: String(HEARTBEAT_MS) } });

  beforeAll(async () => {
    await stack.startEdge();
  });
  afterAll(async () => {
    await stack.stop();
  });

  it('reports degraded health with no agent, in the seed shape', async () => {
    const res = await fetch(`${stack.baseUrl}/health`);
    expect(res.status).toBe(200);
    const h = (await res.json()) as Record<string, unknown>;
    expect(h.status).toBe('degraded');
    for (const key of ['timestamp', 'uptime', 'sessions', 'containers', 'previews', 'config', 'system', 'agents']) {
      expect(h).toHaveProperty(key);
    }
    expect(JSON.stringify(h.config)).not.toMatch(/secret/i);
  });

  it('answers unknown routes with 404 in the error shape', async () => {
    const res = await fetch(`${stack.baseUrl}/no/such/route`);
    expect(res.status).toBe(404);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('not_found');
    expect(typeof body.error.message).toBe('string');
  });

  it('shows a connected agent in the mode its runtime chose, then marks it disconnected when killed', async () => {
    const agent = await stack.startAgent({ name: 'primary' });
    const h = await stack.health((x) => x.agents.some((a) => a.id === agent.id && a.connected), 30_000);
    expect(h.status).toBe('ok');
    const me = h.agents.find((a) => a.id === agent.id)!;
    expect(me.name).toBe('primary');
    expect(me.mode).toBe(hasDocker ? 'docker' : 'local');

    const killedAt = Date.now();
    agent.proc.child.kill('SIGKILL');
    const after = await stack.health((x) => x.agents.some((a) => a.id === agent.id && !a.connected), 2 * HEARTBEAT_MS + 5_000);
    expect(after.status).toBe('degraded');
    // Within two heartbeat intervals (plus polling and process-exit slack on a slow machine).
    expect(Date.now() - killedAt).toBeLessThan(2 * HEARTBEAT_MS + 3_000);
  });

  it('notices a silent agent by its lapsed heartbeat', async () => {
    const id = newId('agt');
    const ws = await rawControlSocket(stack, await stack.agentToken({ id, name: 'silent' }));
    ws.send(
      JSON.stringify({
        type: 'hello',
        protocolVersion: PROTOCOL_VERSION,
        agent: { name: 'silent', version: 't', mode: 'local', capacity: { maxSessions: 1 }, docker: { available: false }, system: system() },
        sessions: [],
      }),
    );
    expect((await nextMessage(ws)).type).toBe('welcome');
    await stack.health((x) => x.agents.some((a) => a.id === id && a.connected));
    // Say nothing more: the edge must drop it on its own.
    const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
    await stack.health((x) => x.agents.some((a) => a.id === id && !a.connected), 4 * HEARTBEAT_MS + 5_000);
    expect(await closed).toBe(4008);
  });

  it('reconnects by itself within 10 s when the edge restarts', async () => {
    const agent = await stack.startAgent({ name: 'survivor' });
    await stack.health((x) => x.agents.some((a) => a.id === agent.id && a.connected));
    await stack.stopEdge();
    await agent.waitForLog((l) => l.msg === 'connection to edge lost');
    await stack.startEdge();
    const upAt = Date.now();
    await stack.health((x) => x.agents.some((a) => a.id === agent.id && a.connected), 15_000);
    expect(Date.now() - upAt).toBeLessThan(10_000);
    await agent.proc.stop();
  });

  describe('refuses bad agent tokens and stays up', () => {
    const cases: Array<[string, () => Promise<string>, RegExp]> = [
      ['a forged token (wrong secret)', () => stack.agentToken({ secret: 'f'.repeat(48) }), /signature/],
      ['an expired token', () => signToken({ secret: stack.secrets.AGENT_SECRET, typ: 'agent', sub: newId('agt'), ttlSeconds: 1, now: Date.now() - 3_600_000 }), /expired/],
      ['a user token', () => signToken({ secret: stack.secrets.JWT_SECRET, typ: 'user', sub: newId('usr'), ttlSeconds: 600 }), /(signature|typ|aud)/],
      ['a user-typed token signed with the agent secret', () => signToken({ secret: stack.secrets.AGENT_SECRET, typ: 'user', sub: newId('usr'), ttlSeconds: 600 }), /(typ|aud)/],
      [
        'an alg:none token',
        async () => {
          const header = Buffer.from(JSON.stringify({ alg: 'none', typ: 'agent' })).toString('base64url');
          const body = Buffer.from(JSON.stringify({ sub: 'agt_00000000', iss: 'mominai-edge', aud: 'mominai:agent' })).toString('base64url');
          return `${header}.${body}.`;
        },
        /(algorithm|malformed|signature)/,
      ],
      [
        'an HS512 token with the right secret',
        () =>
          new SignJWT({ name: 'x' })
            .setProtectedHeader({ alg: 'HS512', typ: 'agent' })
            .setIssuer('mominai-edge')
            .setAudience('mominai:agent')
            .setSubject(newId('agt'))
            .sign(new TextEncoder().encode(stack.secrets.AGENT_SECRET)),
        /algorithm/,
      ],
      ['garbage', async () => 'not.a.jwt', /malformed/],
    ];

    it.each(cases)('%s', async (_name, makeToken, reason) => {
      const agent = await stack.startAgent({ name: 'intruder', token: await makeToken() });
      const line = await agent.waitForLog((l) => l.msg === 'edge refused this agent');
      expect(line.status).toBe(401);
      expect(String(line.reason)).toMatch(reason);
      // It keeps retrying with backoff rather than exiting.
      await agent.waitForLog((l) => l.msg === 'reconnecting');
      expect(agent.proc.child.exitCode).toBeNull();
      await agent.proc.stop();
      const res = await fetch(`${stack.baseUrl}/health`);
      expect(res.status).toBe(200);
      const h = (await res.json()) as { agents: Array<{ name: string }> };
      expect(h.agents.some((a) => a.name === 'intruder')).toBe(false);
    });

    it('refuses a socket without a token with 401', async () => {
      await expect(rawControlSocket(stack, '')).rejects.toThrow('HTTP 401');
    });
  });

  it('answers thousands of garbage frames with error frames and keeps serving', async () => {
    const id = newId('agt');
    const ws = await rawControlSocket(stack, await stack.agentToken({ id, name: 'fuzzer' }));
    const replies: Array<Record<string, unknown>> = [];
    ws.on('message', (d) => replies.push(JSON.parse(d.toString()) as Record<string, unknown>));
    let seed = 7;
    const rand = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
    const N = 2_000;
    for (let i = 0; i < N; i++) {
      const kind = i % 4;
      if (kind === 0) ws.send(Buffer.from(Array.from({ length: 1 + Math.floor(rand() * 40) }, () => Math.floor(rand() * 256))));
      else if (kind === 1) ws.send(`{"type":"${['hello', 'req', 'nope', 'res'][Math.floor(rand() * 4)]}","id":"f${i}"`);
      else if (kind === 2) ws.send(JSON.stringify({ type: 'heartbeat', seq: -i, system: 'x' }));
      else ws.send(String.fromCharCode(...Array.from({ length: 20 }, () => 32 + Math.floor(rand() * 90))));
    }
    const deadline = Date.now() + 60_000;
    while (replies.length < N && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(replies.length).toBe(N);
    expect(replies.every((r) => r.type === 'error')).toBe(true);
    // The same socket still works: a proper hello is welcomed.
    ws.send(
      JSON.stringify({
        type: 'hello',
        protocolVersion: PROTOCOL_VERSION,
        agent: { name: 'fuzzer', version: 't', mode: 'local', capacity: { maxSessions: 1 }, docker: { available: false }, system: system() },
        sessions: [],
      }),
    );
    const deadline2 = Date.now() + 10_000;
    while (!replies.some((r) => r.type === 'welcome') && Date.now() < deadline2) await new Promise((r) => setTimeout(r, 50));
    expect(replies.some((r) => r.type === 'welcome')).toBe(true);
    ws.close();
    const res = await fetch(`${stack.baseUrl}/health`);
    expect(res.status).toBe(200);
  });

  it('refuses an unsupported protocol version with a reason', async () => {
    const ws = await rawControlSocket(stack, await stack.agentToken({ name: 'old' }));
    const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.once('close', (code, r) => resolve({ code, reason: r.toString() })));
    const msgs: Array<Record<string, unknown>> = [];
    ws.on('message', (d) => msgs.push(JSON.parse(d.toString()) as Record<string, unknown>));
    ws.send(
      JSON.stringify({
        type: 'hello',
        protocolVersion: 99,
        agent: { name: 'old', version: 't', mode: 'local', capacity: { maxSessions: 1 }, docker: { available: false }, system: system() },
        sessions: [],
      }),
    );
    const { code, reason } = await closed;
    expect(code).toBe(4002);
    expect(reason).toMatch(/version 99/);
    expect(msgs[0]).toMatchObject({ type: 'error', error: { code: 'unsupported_version' } });
  });
});
