/**
 * Previews through the real stack: a Node server in the container reached by
 * the path and host forms, WebSockets, big bodies, and the access rules.
 */
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import zlib from 'node:zlib';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasDocker } from '../helpers/docker';
import { api, registerUser, TestSocket, type TestUser, rawRequest } from '../helpers/client';
import { rssBytes, samplePeak, workerdPids } from '../helpers/memory';
import { followPreviewLink, sessionWithPreview } from '../helpers/preview';
import { startEdgeWithAgent } from '../helpers/sessions';
import { TestStack, type TestAgent } from '../helpers/stack';

const MiB = 1024 * 1024;
const DOMAIN = 'preview.localhost';

describe.skipIf(!hasDocker)('preview (real stack, Docker)', () => {
  const stack = new TestStack({ edgeVars: { RATE_LIMIT_MAX: '100000', AUTH_RATE_LIMIT_MAX: '100000', PREVIEW_DOMAIN: DOMAIN } });
  let agent: TestAgent;
  let owner: TestUser;
  let stranger: TestUser;
  let sessionId: string;
  let pathCookie = '';
  let hostCookie = '';

  /** Follows a signed preview link once and returns the cookie it set. */
  const cookieFrom = async (link: string): Promise<string> => {
    const setCookie = await followPreviewLink(stack, link);
    expect(setCookie).toMatch(/HttpOnly/);
    return setCookie.split(';')[0]!;
  };

  beforeAll(async () => {
    agent = await startEdgeWithAgent(stack, { agentName: 'preview-agent', image: 'node' });
    [owner, stranger] = await Promise.all([registerUser(stack, 'owner'), registerUser(stack, 'stranger')]);
    const { id, sock, ready } = await sessionWithPreview(stack, owner);
    sessionId = id;
    expect(String(ready.payload.url)).toContain(`3000-${sessionId}.${DOMAIN}`);
    sock.close();
    const link = await api<{ url: string; pathUrl: string }>(stack, 'GET', `/api/containers/${sessionId}/preview-url?port=3000`, { token: owner.token });
    // With PREVIEW_DOMAIN set, pathUrl is the path form on the bare preview domain (`<domain>/<id>/`).
    pathCookie = await cookieFrom(link.body.pathUrl);
    hostCookie = await cookieFrom(link.body.url);
  });
  afterAll(async () => {
    await stack.stop();
  });

  it('serves the dev server through the path form, with the prefix stripped and redirects kept inside', async () => {
    const res = await rawRequest(stack.port, { path: `/preview/${sessionId}/hello`, headers: { Cookie: pathCookie } });
    expect(res.status).toBe(200);
    expect(res.body.toString()).toBe('hello from 3000 GET');
    expect(res.headers['x-seen-host']).toBe('localhost:3000');
    expect(res.headers['x-seen-prefix']).toBe(`/preview/${sessionId}`);
    const redirect = await rawRequest(stack.port, { path: `/preview/${sessionId}/redirect`, headers: { Cookie: pathCookie } });
    expect(redirect.status).toBe(302);
    expect(redirect.headers.location).toBe(`/preview/${sessionId}/hello`);
  });

  it('serves the dev server through the host form', async () => {
    const res = await rawRequest(stack.port, { path: '/hello', host: `3000-${sessionId}.${DOMAIN}:${stack.port}`, headers: { Cookie: hostCookie } });
    expect(res.status).toBe(200);
    expect(res.body.toString()).toBe('hello from 3000 GET');
  });

  it('relays WebSockets both ways through both forms', async () => {
    for (const [url, headers] of [
      [`ws://127.0.0.1:${stack.port}/preview/${sessionId}/socket`, { Cookie: pathCookie }],
      [`ws://127.0.0.1:${stack.port}/socket`, { Cookie: hostCookie, Host: `3000-${sessionId}.${DOMAIN}:${stack.port}` }],
    ] as const) {
      const ws = new WebSocket(url, { headers });
      await new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('unexpected-response', (_q, r) => reject(new Error(`HTTP ${r.statusCode}`)));
        ws.once('error', reject);
      });
      const text = new Promise<string>((resolve) => ws.once('message', (d) => resolve(d.toString())));
      ws.send('ping');
      expect(await text).toBe('echo:ping');
      const bin = new Promise<Buffer>((resolve) => ws.once('message', (d) => resolve(d as Buffer)));
      ws.send(Buffer.from([1, 2, 3]));
      expect([...(await bin)]).toEqual([1, 2, 3]);
      ws.close();
    }
  });

  it('streams a 50 MiB response and a streamed upload intact', async () => {
    const expected = createHash('sha256');
    const block = Buffer.alloc(64 * 1024);
    for (let i = 0; i < block.length; i++) block[i] = (i * 31) & 0xff;
    for (let i = 0; i < 50 * 16; i++) expected.update(block);
    const res = await rawRequest(stack.port, { path: `/preview/${sessionId}/big?mib=50`, headers: { Cookie: pathCookie } });
    expect(res.status).toBe(200);
    expect(res.body.length).toBe(50 * MiB);
    expect(res.headers['content-length']).toBe(String(50 * MiB));
    expect(createHash('sha256').update(res.body).digest('hex')).toBe(expected.digest('hex'));
    const upload = randomBytes(8 * MiB);
    const up = await rawRequest(stack.port, { path: `/preview/${sessionId}/upload`, method: 'POST', headers: { Cookie: pathCookie, 'Content-Type': 'application/octet-stream' }, body: upload });
    expect(JSON.parse(up.body.toString())).toEqual({ bytes: upload.length, sha256: createHash('sha256').update(upload).digest('hex') });
  }, 180_000);

  it('passes a body the dev server compressed through as it is, known length or chunked', async () => {
    for (const q of ['', '?chunked=1']) {
      const res = await rawRequest(stack.port, { path: `/preview/${sessionId}/gzip${q}`, headers: { Cookie: pathCookie, 'Accept-Encoding': 'gzip' } });
      expect(res.status).toBe(200);
      expect(res.headers['content-encoding']).toBe('gzip');
      expect(JSON.parse(zlib.gunzipSync(res.body).toString())).toEqual({ text: 'squeeze '.repeat(2000) });
    }
  });

  it('delivers server-sent events as they come, before the response ends, and frees the relay when the browser leaves', async () => {
    const active = (h: Record<string, unknown>) => (h.previews as { active: number }).active;
    await stack.health((h) => active(h) === 0, 30_000);
    let req: http.ClientRequest | undefined;
    const first = await new Promise<{ status: number; type: string | undefined; text: string }>((resolve, reject) => {
      req = http.get({ host: '127.0.0.1', port: stack.port, path: `/preview/${sessionId}/events`, headers: { Cookie: pathCookie } }, (res) => {
        res.once('data', (c: Buffer) => resolve({ status: res.statusCode ?? 0, type: res.headers['content-type'], text: c.toString() }));
        res.once('end', () => reject(new Error('the event stream ended')));
      });
      req.on('error', (err) => (req?.destroyed ? undefined : reject(err)));
    });
    expect(first).toEqual({ status: 200, type: 'text/event-stream', text: 'data: first\n\n' });
    await stack.health((h) => active(h) === 1, 30_000);
    req!.destroy();
    // The runtime notices a browser that left a streamed response at its next write (the
    // server's next heartbeat, a second later here); the relay must then end.
    await stack.health((h) => active(h) === 0, 30_000);
  }, 90_000);

  it('cuts the response off when the dev server hangs up short of its Content-Length', async () => {
    const outcome = await new Promise<{ status: number; length: string | undefined; bytes: number; complete: boolean }>((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port: stack.port, path: `/preview/${sessionId}/short`, headers: { Cookie: pathCookie } }, (res) => {
        let bytes = 0;
        res.on('data', (c: Buffer) => (bytes += c.length));
        res.on('close', () => resolve({ status: res.statusCode ?? 0, length: res.headers['content-length'], bytes, complete: res.complete }));
      });
      req.on('error', () => undefined);
      req.setTimeout(30_000, () => reject(new Error('no end to the cut response')));
    });
    expect(outcome.status).toBe(200);
    expect(outcome.length).toBe(String(MiB));
    expect(outcome.bytes).toBeLessThan(MiB);
    expect(outcome.complete).toBe(false);
  });

  it('frees the relay when the browser leaves a download half-way', async () => {
    const active = (h: Record<string, unknown>) => (h.previews as { active: number }).active;
    await stack.health((h) => active(h) === 0, 30_000);
    let req: http.ClientRequest | undefined;
    await new Promise<void>((resolve, reject) => {
      req = http.get({ host: '127.0.0.1', port: stack.port, path: `/preview/${sessionId}/big?mib=1000`, headers: { Cookie: pathCookie } }, (res) => {
        let got = 0;
        res.on('data', (c: Buffer) => {
          got += c.length;
          if (got >= 8 * MiB && !res.isPaused()) {
            res.pause();
            resolve();
          }
        });
      });
      req.on('error', (err) => (req?.destroyed ? undefined : reject(err)));
    });
    // The agent reports its open relays with each heartbeat: first the paused download, then,
    // once the browser is gone, none (the 1000 MiB must not keep the relay and its connection).
    await stack.health((h) => active(h) === 1, 30_000);
    req!.destroy();
    await stack.health((h) => active(h) === 0, 30_000);
  }, 90_000);

  it('keeps edge and agent memory well below the size of a 150 MiB response', async () => {
    const pids = () => [agent.proc.child.pid!, ...workerdPids(stack.edge!.child.pid!)];
    const before = pids().reduce((n, p) => n + rssBytes(p), 0);
    const peak = samplePeak(pids);
    // Read as it arrives, without keeping it, so only the edge and the agent could be holding the body.
    // The sampler stops however the request ends (it reads the stack's processes, gone after afterAll).
    const bytes = await new Promise<number>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: stack.port, path: `/preview/${sessionId}/big?mib=150`, headers: { Cookie: pathCookie } }, (res) => {
        let n = 0;
        let head = '';
        res.on('data', (c: Buffer) => {
          if (n < 512) head += c.subarray(0, 512 - n).toString();
          n += c.length;
        });
        res.on('end', () => (res.statusCode === 200 ? resolve(n) : reject(new Error(`HTTP ${res.statusCode}: ${head}`))));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    }).finally(() => peak.stop());
    const growth = peak.stop() - before;
    process.stderr.write(`[preview] peak RSS growth (agent + workerd) while 150 MiB streamed: ${(growth / MiB).toFixed(1)} MiB\n`);
    expect(bytes).toBe(150 * MiB);
    expect(growth).toBeLessThan(90 * MiB);
  }, 240_000);

  it('keeps previews private: 401 without the cookie, 403 for another user, 200 for anyone once public (on the host form only)', async () => {
    expect((await rawRequest(stack.port, { path: `/preview/${sessionId}/hello` })).status).toBe(401);
    const strangerLink = await api(stack, 'GET', `/api/containers/${sessionId}/preview-url`, { token: stranger.token });
    expect(strangerLink.status).toBe(403);
    // A stranger with a cookie of their own (for their own session) gets nothing here either.
    const theirs = await api<{ session: { id: string } }>(stack, 'POST', '/api/containers', { token: stranger.token, body: { image: 'mominai/busybox:test' } });
    const theirLink = await api<{ pathUrl: string }>(stack, 'GET', `/api/containers/${theirs.body.session.id}/preview-url`, { token: stranger.token });
    const theirCookie = await cookieFrom(theirLink.body.pathUrl);
    const forged = theirCookie.replace(theirs.body.session.id, sessionId);
    expect((await rawRequest(stack.port, { path: `/preview/${sessionId}/hello`, headers: { Cookie: forged } })).status).toBe(401);
    const made = await api(stack, 'POST', `/api/containers/${sessionId}/ports/3000`, { token: owner.token, body: { visibility: 'public' } });
    expect(made.status).toBe(200);
    expect((await rawRequest(stack.port, { path: '/hello', host: `3000-${sessionId}.${DOMAIN}:${stack.port}` })).status).toBe(200);
    expect((await rawRequest(stack.port, { path: `/preview/${sessionId}/hello` })).status).toBe(401);
    await api(stack, 'POST', `/api/containers/${sessionId}/ports/3000`, { token: owner.token, body: { visibility: 'private' } });
    expect((await rawRequest(stack.port, { path: `/preview/${sessionId}/hello` })).status).toBe(401);
  });

  it("lists the session with the same previewPort, publicPorts and lastActiveAt as its own record after start_preview, a public port and activity", async () => {
    type View = { id: string; previewPort: number | null; publicPorts: number[]; lastActiveAt: string };
    const compare = async () => {
      // GET …/:id counts as activity itself, so it goes first; the list must then show what it showed.
      const one = await api<{ session: View }>(stack, 'GET', `/api/containers/${sessionId}`, { token: owner.token });
      expect(one.status).toBe(200);
      const list = await api<{ sessions: View[] }>(stack, 'GET', '/api/containers', { token: owner.token });
      expect(list.status).toBe(200);
      const listed = list.body.sessions.find((s) => s.id === sessionId);
      const pick = (v: View | undefined) => v && { previewPort: v.previewPort, publicPorts: v.publicPorts, lastActiveAt: v.lastActiveAt };
      expect(pick(listed)).toEqual(pick(one.body.session));
      return one.body.session;
    };
    // start_preview ran in beforeAll.
    expect((await compare()).previewPort).toBe(3000);
    const made = await api(stack, 'POST', `/api/containers/${sessionId}/ports/3000`, { token: owner.token, body: { visibility: 'public' } });
    expect(made.status).toBe(200);
    expect((await compare()).publicPorts).toEqual([3000]);
    const before = (await compare()).lastActiveAt;
    // Activity: a client command, more than the one-second activity granularity later.
    // t0 before the connect: connecting is activity too, and a command less than a second after it is not recorded again.
    const t0 = Date.now();
    const sock = await TestSocket.open(stack, owner.token, sessionId);
    await sock.waitFor((f) => f.type === 'ready');
    await new Promise((r) => setTimeout(r, Math.max(0, 1100 - (Date.now() - Date.parse(before)))));
    const started = await sock.request('container_command', { command: 'true' });
    expect(started.type).toBe('process_started');
    sock.close();
    const after = await compare();
    expect(Date.parse(after.lastActiveAt)).toBeGreaterThanOrEqual(t0);
    await api(stack, 'POST', `/api/containers/${sessionId}/ports/3000`, { token: owner.token, body: { visibility: 'private' } });
    expect((await compare()).publicPorts).toEqual([]);
  });

  it('tells connected clients when a port opens and closes (port, server-ready) with its preview URL', async () => {
    const sock = await TestSocket.open(stack, owner.token, sessionId);
    await sock.waitFor((f) => f.type === 'ready');
    const started = await sock.request('container_command', { command: 'PORT=3005 exec node server.cjs' });
    expect(started.type).toBe('process_started');
    const url = `http://3005-${sessionId}.${DOMAIN}:${stack.port}/`;
    const open = await sock.waitFor((f) => f.type === 'port' && f.payload.port === 3005, 60_000);
    expect(open.payload).toEqual({ port: 3005, state: 'open', url });
    const ready = await sock.waitFor((f) => f.type === 'server-ready' && f.payload.port === 3005, 60_000);
    expect(ready.payload).toEqual({ port: 3005, url });
    expect((await sock.request('kill', { processId: started.payload.processId })).type).toBe('killed');
    const closed = await sock.waitFor((f) => f.type === 'port' && f.payload.port === 3005 && f.payload.state === 'close', 60_000);
    expect(closed.payload).toEqual({ port: 3005, state: 'close', url });
    sock.close();
  });

  it('refuses ports the session neither declared nor listens on, and hosts smuggled in the URL or headers', async () => {
    const link = await api<{ url: string }>(stack, 'GET', `/api/containers/${sessionId}/preview-url?port=22`, { token: owner.token });
    const host22 = new URL(link.body.url).host;
    const cookie22 = await cookieFrom(link.body.url);
    const closed = await rawRequest(stack.port, { path: '/', host: host22, headers: { Cookie: cookie22 } });
    expect([403, 503]).toContain(closed.status);
    for (const p of [`/preview/${sessionId}/http://169.254.169.254/latest`, `/preview/${sessionId}//127.0.0.1:3001/health`, `/preview/${sessionId}/hello@evil.example`]) {
      const res = await rawRequest(stack.port, { path: p, headers: { Cookie: pathCookie, 'X-Forwarded-Host': '169.254.169.254', 'X-Mominai-Host': 'evil' } });
      // Whatever the path says, the session's own server on port 3000 answers (a 404 for a path it does not serve).
      expect({ status: res.status, servedBy: res.headers['x-served-by'], body: res.body.toString() }, p).toEqual({ status: 404, servedBy: 'preview-fixture:3000', body: 'not found' });
    }
    const health = await fetch(`${stack.baseUrl}/health`);
    const h = (await health.json()) as { previews: { active: number } };
    expect(typeof h.previews.active).toBe('number');
  });
});
