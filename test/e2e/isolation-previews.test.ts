/**
 * Tenant isolation on the real stack (workerd edge, agent, dockerd), the
 * previews' side: a session's state follows its container, previews live on
 * their own origins (the path forms owner-only and sanitised), cross-preview
 * requests are refused, headers are cleaned both ways, and revoking an agent
 * ends its previews. One `describe` per point of the tenant-isolation issue;
 * each test is an attack that worked before the point was built. Agents are
 * in isolation-agents.test.ts, the API in isolation-api.test.ts.
 */
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, rawRequest, registerUser, TestSocket, type TestUser } from '../helpers/client';
import { hasDocker } from '../helpers/docker';
import { FORGED_FORWARDING_HEADERS } from '../helpers/forged-headers';
import { runOperatorScript } from '../helpers/operator';
import { followPreviewLink, previewCookie, sessionWithPreview } from '../helpers/preview';
import { startEdgeWithAgent } from '../helpers/sessions';
import { TestStack, type TestAgent } from '../helpers/stack';

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
    edgeVars: { HEARTBEAT_INTERVAL_MS: '1000', RATE_LIMIT_MAX: '100000', AUTH_RATE_LIMIT_MAX: '100000', PREVIEW_DOMAIN: DOMAIN },
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

  beforeAll(async () => {
    agent = await startEdgeWithAgent(stack, { agentName: 'iso-preview-agent', image: 'node' });
    [owner, stranger] = await Promise.all([registerUser(stack, 'iso-owner'), registerUser(stack, 'iso-stranger')]);
    const made = await sessionWithPreview(stack, owner);
    sessionId = made.id;
    made.sock.close();
    const link = await api<{ url: string; pathUrl: string }>(stack, 'GET', `/api/containers/${sessionId}/preview-url?port=3000`, { token: owner.token });
    expect(link.status).toBe(200);
    links = link.body;
    hostSetCookie = await followPreviewLink(stack, links.url);
    hostCookie = hostSetCookie.split(';')[0]!;
    pathCookie = await previewCookie(stack, links.pathUrl);
  }, 240_000);
  afterAll(async () => {
    await stack.stop();
  });

  describe("1. a session's state follows its container", () => {
    it('stops the session with a reason within 5 s of `kill -KILL -1`, ends its processes, and its preview answers 503 session_stopped until it runs again', async () => {
      const { id, sock } = await sessionWithPreview(stack, owner);
      const server = sock.frames.find((f) => f.type === 'process_started')!;
      const link = await api<{ url: string }>(stack, 'GET', `/api/containers/${id}/preview-url?port=3000`, { token: owner.token });
      const cookie = await previewCookie(stack, link.body.url);
      const host = `3000-${id}.${DOMAIN}:${stack.port}`;
      expect((await rawRequest(stack.port, { path: '/hello', host, headers: { Cookie: cookie } })).body.toString()).toBe('hello from 3000 GET');

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
      const stopped = await rawRequest(stack.port, { path: '/hello', host, headers: { Cookie: cookie } });
      expect(stopped.status).toBe(503);
      expect(JSON.parse(stopped.body.toString()).error.code).toBe('session_stopped');
      console.log(JSON.stringify({ measured: 'kill -KILL -1 to container_status stopped', ms: took }));

      // It runs again: a new server, a fresh start_preview, and the preview answers from the live container.
      expect((await api(stack, 'POST', `/api/containers/${id}/start`, { token: owner.token })).status).toBe(200);
      const again = await TestSocket.open(stack, owner.token, id);
      await again.waitFor((f) => f.type === 'ready');
      await again.request('container_command', { command: 'node server.cjs' });
      expect((await again.request('start_preview', { port: 3000 }, 120_000)).type).toBe('preview_ready');
      expect((await rawRequest(stack.port, { path: '/hello', host, headers: { Cookie: cookie } })).body.toString()).toBe('hello from 3000 GET');
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
        const res = await rawRequest(stack.port, { path: f.path, ...(f.host ? { host: f.host } : {}), headers: { Cookie: pathCookie } });
        expect(res.status).toBe(200);
        expect(res.body.toString()).toBe('hostile');
        expect(res.headers['service-worker-allowed']).toBe(undefined);
        expect(res.headers['clear-site-data']).toBe(undefined);
        expect(res.headers['set-cookie']).toEqual([`app=1; Path=${f.prefix}/`]);
      }
    });

    it('serves a public port on the host form to anyone, and on the path forms to nobody but the owner', async () => {
      expect((await api(stack, 'POST', `/api/containers/${sessionId}/ports/3000`, { token: owner.token, body: { visibility: 'public' } })).status).toBe(200);
      try {
        expect((await rawRequest(stack.port, { path: '/hello', host: previewHost() })).body.toString()).toBe('hello from 3000 GET');
        const anonymous = await rawRequest(stack.port, { path: `/preview/${sessionId}/hello` });
        expect(anonymous.status).toBe(401);
        expect(JSON.parse(anonymous.body.toString()).error).toEqual({
          code: 'unauthorized',
          message:
            'this preview is private (public ports are served on the preview host only; the path form is for the owner): open it through a preview link from GET /api/containers/:id/preview-url',
        });
        const bare = await rawRequest(stack.port, { path: `/${sessionId}/hello`, host: `${DOMAIN}:${stack.port}` });
        expect(bare.status).toBe(401);
        // A stranger holding a valid preview cookie (for a session of their own) is still refused.
        const theirs = await api<{ session: { id: string } }>(stack, 'POST', '/api/containers', { token: stranger.token, body: { image: 'mominai/node:test' } });
        const theirLink = await api<{ pathUrl: string }>(stack, 'GET', `/api/containers/${theirs.body.session.id}/preview-url`, { token: stranger.token });
        const theirCookie = await previewCookie(stack, theirLink.body.pathUrl);
        const forged = theirCookie.replace(theirs.body.session.id, sessionId);
        const withForged = await rawRequest(stack.port, { path: `/${sessionId}/hello`, host: `${DOMAIN}:${stack.port}`, headers: { Cookie: forged } });
        expect(withForged.status).toBe(401);
        await api(stack, 'DELETE', `/api/containers/${theirs.body.session.id}`, { token: stranger.token });
        expect((await rawRequest(stack.port, { path: `/preview/${sessionId}/hello`, headers: { Cookie: pathCookie } })).body.toString()).toBe('hello from 3000 GET');
      } finally {
        await api(stack, 'POST', `/api/containers/${sessionId}/ports/3000`, { token: owner.token, body: { visibility: 'private' } });
      }
    });
  });

  describe('3. cross-preview requests are refused', () => {
    it('refuses a POST carrying the valid cookie from another origin with 403 before the dev server, and lets the same-origin one pass', async () => {
      const cross = await rawRequest(stack.port, { path: '/upload', method: 'POST', host: previewHost(), headers: { Cookie: hostCookie, Origin: siblingOrigin() }, body: 'x' });
      expect(cross.status).toBe(403);
      expect(JSON.parse(cross.body.toString()).error).toEqual({
        code: 'forbidden',
        message: `a POST request from ${siblingOrigin()} to this preview is refused: only the preview's own origin may do that`,
      });
      const same = await rawRequest(stack.port, { path: '/upload', method: 'POST', host: previewHost(), headers: { Cookie: hostCookie, Origin: previewOrigin() }, body: 'x' });
      expect(same.status).toBe(200);
      expect(JSON.parse(same.body.toString())).toEqual({ bytes: 1, sha256: '2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881' });
    });

    it('refuses a WebSocket upgrade carrying the valid cookie from another origin with 403, and relays the same-origin one', async () => {
      const cross = await upgrade(stack.port, '/socket', { Host: previewHost(), Cookie: hostCookie, Origin: siblingOrigin() });
      expect(cross.status).toBe(403);
      expect(JSON.parse(cross.body.toString()).error.message).toBe(`a WebSocket from ${siblingOrigin()} to this preview is refused: only the preview's own origin may do that`);
      expect(await upgrade(stack.port, '/socket', { Host: previewHost(), Cookie: hostCookie, Origin: previewOrigin() })).toEqual({ status: 101, body: 'echo:ping' });
      // The dev server saw the preview's own origin as its own (Host localhost:3000), so Vite-like checks pass.
      const seen = JSON.parse((await rawRequest(stack.port, { path: '/last-upgrade', host: previewHost(), headers: { Cookie: hostCookie } })).body.toString()) as Record<string, string>;
      expect(seen.origin).toBe('http://localhost:3000');
    });

    it('sets a host-only, __Host- prefixed, Secure, SameSite=None, Partitioned cookie on *.localhost', () => {
      expect(hostSetCookie).toMatch(new RegExp(`^__Host-mominai_preview_${sessionId}=[^;]+; Path=/; HttpOnly; Secure; SameSite=None; Partitioned; Max-Age=\\d+$`));
    });
  });

  describe('4. header hygiene both ways', () => {
    const hostile = {
      ...FORGED_FORWARDING_HEADERS,
      'X-Preview-Info': '{"userId":"usr_forged","cookieName":"x"}',
      'X-User-Id': 'usr_forged',
      'X-Agent-Id': 'agt_forged',
      'X-File-Mtime': '1',
      'X-Mominai-Host': '169.254.169.254',
      'X-Session-Call': 'forged',
    };
    const internal = /^(x-preview-info|x-user-id|x-agent-|x-file-|x-mominai-|x-session-call|forwarded$|x-real-ip$|cf-)/;

    it("shows the dev server no client forwarding header and no internal header over HTTP, only the edge's own X-Forwarded-*", async () => {
      const res = await rawRequest(stack.port, { path: '/headers', host: previewHost(), headers: { ...hostile, Cookie: `${hostCookie}; app=1` } });
      expect(res.status).toBe(200);
      const seen = JSON.parse(res.body.toString()) as Record<string, string>;
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
      const seen = JSON.parse((await rawRequest(stack.port, { path: '/last-upgrade', host: previewHost(), headers: { Cookie: hostCookie } })).body.toString()) as Record<string, string>;
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
      expect((await rawRequest(stack.port, { path: '/hello', host: previewHost(), headers: { Cookie: hostCookie } })).body.toString()).toBe('hello from 3000 GET');
      const { stdout } = await runOperatorScript(stack, 'agent-revoke.ts', [agent.id]);
      expect(stdout.trim()).toMatch(new RegExp(`^revoked ${agent.id} \\(iso-preview-agent\\) at \\S+$`));
      // The data socket was closed by the edge: the agent dials it again and is refused.
      const refused = await agent.waitForLog((l) => l.msg === 'edge refused a session data socket' && l.sessionId === sessionId);
      expect(refused.status).toBe(401);
      const after = await rawRequest(stack.port, { path: '/hello', host: previewHost(), headers: { Cookie: hostCookie } });
      expect(after.status).toBe(503);
    });
  });
});
