/**
 * Tenant isolation on the real stack (workerd edge, scripted agents), the
 * API's side: /health tells strangers nothing, requests for sessions that do
 * not exist leave no storage behind, and tokens without exp or with a loose
 * audience are refused. One `describe` per point of the tenant-isolation
 * issue; each test is an attack that worked before the point was built.
 * Agents are in isolation-agents.test.ts, previews in isolation-previews.test.ts.
 */
import fs from 'node:fs';
import path from 'node:path';
import { SignJWT } from 'jose';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newId } from '../../shared/ids';
import { api, rawRequest, registerUser, type TestUser } from '../helpers/client';
import { FakeAgent } from '../helpers/fake-agent';
import { TestStack } from '../helpers/stack';
import { poll } from '../helpers/wait';

/** `bytes` random bytes in hex. */
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

/** The status a WebSocket upgrade to `url` gets: 101, or the refusal's. */
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

describe('tenant isolation, the API (real stack)', () => {
  const stack = new TestStack({ edgeVars: { RATE_LIMIT_MAX: '100000', AUTH_RATE_LIMIT_MAX: '100000' } });
  let user: TestUser;

  beforeAll(async () => {
    await stack.startEdge();
    user = await registerUser(stack, 'iso');
  });
  afterAll(async () => {
    await stack.stop();
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

      // Anyone's view is a snapshot up to a second old (edge/fleet/cached.ts): the stack's start asked
      // for it just before the agent connected, so it is read until it counts the agent.
      const quiet = await poll(async () => {
        const anon = await fetch(`${stack.baseUrl}/health`);
        expect(anon.status).toBe(200);
        const body = (await anon.json()) as { system: { agentsConnected: number } } & Record<string, unknown>;
        return body.system.agentsConnected === 1 ? body : undefined;
      }, 'the quiet /health to count the agent', 10_000);
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
            if (kind === 'path') statuses.path!.push((await rawRequest(stack.port, { path: `/preview/${sid}/` })).status);
            else if (kind === 'host') statuses.host!.push((await rawRequest(stack.port, { path: '/', host: `3000-${sid}.preview.localhost:${stack.port}` })).status);
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
