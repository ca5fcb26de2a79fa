import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BYTE_STREAM_CHUNK, BYTE_STREAM_WINDOW } from '../../../shared/protocol/byte-streams';
import { DoPeer, pseudoRandom, sha256Of } from './fakes';

const MiB = 1024 * 1024;

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
}

/** The dev server in the "container": echoes what it saw, takes uploads, serves big bodies and redirects. */
function devServer(seen: Seen[]): http.Server {
  return http.createServer((req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/echo') {
      res.setHeader('connection', 'keep-alive, x-hop');
      res.setHeader('x-hop', 'per-connection');
      res.setHeader('keep-alive', 'timeout=5');
      res.setHeader('set-cookie', ['a=1; Path=/', 'b=2; Path=/']);
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ method: req.method, url: req.url, headers: req.headers }));
    } else if (url.pathname === '/upload') {
      const h = createHash('sha256');
      let bytes = 0;
      req.on('data', (c: Buffer) => {
        h.update(c);
        bytes += c.byteLength;
      });
      req.on('end', () => res.end(JSON.stringify({ sha256: h.digest('hex'), bytes })));
    } else if (url.pathname === '/big') {
      const total = Number(url.searchParams.get('mb')) * MiB;
      res.setHeader('content-length', String(total));
      const chunks = pseudoRandom(total);
      const pump = () => {
        for (;;) {
          const next = chunks.next();
          if (next.done) return void res.end();
          if (!res.write(next.value)) return void res.once('drain', pump);
        }
      };
      pump();
    } else if (url.pathname === '/short') {
      res.writeHead(200, { 'content-length': String(MiB) });
      res.write(Buffer.alloc(300 * 1024, 1));
      setTimeout(() => res.destroy(), 20);
    } else if (url.pathname === '/events') {
      // Server-sent events: a head at once, the body much later (never, here, unless the test ends it).
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: first\n\n');
    } else if (url.pathname === '/hang') {
      // Never answers: the relay's head timeout or stop() must end the request.
    } else if (url.pathname === '/redirect') {
      res.writeHead(302, { location: `http://localhost:${(req.socket.localPort ?? 0).toString()}/next?x=1` }).end();
    } else {
      res.writeHead(404).end('no');
    }
  });
}

function listen(server: http.Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

describe('PreviewService › http.request', () => {
  let server: http.Server;
  let port: number;
  let seen: Seen[];
  let peer: DoPeer;
  let listening: number[];

  beforeEach(async () => {
    seen = [];
    server = devServer(seen);
    port = await listen(server);
    listening = [];
    peer = new DoPeer({
      target: async () => ({ address: '127.0.0.1', declaredPorts: [port] }),
      listListening: async () => listening,
      pollMs: 60_000,
    });
  });

  afterEach(async () => {
    peer.service.stop();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  async function get(path: string, headers: Array<[string, string]> = [], streamBase = 10) {
    const body = peer.download(streamBase + 1);
    const res = await peer.call('http.request', { streamBase, port, method: 'GET', path, headers, hasBody: false });
    return { res, body };
  }

  it('sends Host localhost:<port>, strips hop-by-hop headers both ways, keeps x-forwarded-*', async () => {
    const { res, body } = await get('/echo?q=1', [
      ['accept', 'application/json'],
      ['host', 'evil.example'],
      ['connection', 'keep-alive, x-drop-me'],
      ['x-drop-me', '1'],
      ['keep-alive', 'timeout=1'],
      ['proxy-authorization', 'Basic eA=='],
      ['te', 'trailers'],
      ['upgrade', 'h2c'],
      ['x-forwarded-proto', 'https'],
      ['x-forwarded-prefix', '/preview/ses_x'],
    ]);
    expect(res.ok).toBe(true);
    if (!res.ok) return;
    const head = res.result as { status: number; headers: Array<[string, string]> };
    expect(head.status).toBe(200);
    const names = head.headers.map(([k]) => k);
    expect(names).not.toContain('connection');
    expect(names).not.toContain('keep-alive');
    expect(names).not.toContain('x-hop');
    expect(head.headers.filter(([k]) => k === 'set-cookie').map(([, v]) => v)).toEqual(['a=1; Path=/', 'b=2; Path=/']);
    await body;
    const h = seen[0]!.headers;
    expect(h.host).toBe(`localhost:${port}`);
    expect(h.accept).toBe('application/json');
    expect(h['x-forwarded-proto']).toBe('https');
    expect(h['x-forwarded-prefix']).toBe('/preview/ses_x');
    for (const gone of ['x-drop-me', 'proxy-authorization', 'te', 'upgrade']) expect(h[gone]).toBeUndefined();
    expect(seen[0]!.url).toBe('/echo?q=1');
  });

  it('uses x-mominai-host as the Host and does not pass it on', async () => {
    const { body } = await get('/echo', [['x-mominai-host', 'app.preview.localhost:5173']]);
    await body;
    expect(seen[0]!.headers.host).toBe('app.preview.localhost:5173');
    expect(seen[0]!.headers['x-mominai-host']).toBeUndefined();
  });

  it('sends the head (HttpHead frame, logged as the res) before the first body frame', async () => {
    const { res, body } = await get('/big?mb=1', [], 20);
    expect(res.ok).toBe(true);
    await body;
    const resAt = peer.log.findIndex((l) => l.type === 'res');
    const firstBody = peer.log.findIndex((l) => l.type === 'binary' && l.frame.streamId === 21);
    expect(resAt).toBeGreaterThanOrEqual(0);
    expect(firstBody).toBeGreaterThan(resAt);
  });

  it('streams a 1 MiB upload (under one window) to the dev server intact', async () => {
    const streamBase = 32;
    const body = peer.download(streamBase + 1, true);
    const answer = peer.call('http.request', { streamBase, port, method: 'PUT', path: '/upload', headers: [], hasBody: true });
    await peer.upload(streamBase, pseudoRandom(MiB, 100_000, 3));
    expect((await answer).ok).toBe(true);
    const got = JSON.parse((await body).body.toString()) as { sha256: string; bytes: number };
    expect(got).toEqual({ sha256: sha256Of(pseudoRandom(MiB, 100_000, 3)), bytes: MiB });
  });

  it('streams a 5 MiB upload to the dev server intact', { timeout: 15_000 }, async () => {
    const streamBase = 30;
    const body = peer.download(streamBase + 1, true);
    const answer = peer.call('http.request', { streamBase, port, method: 'POST', path: '/upload', headers: [['content-type', 'application/octet-stream']], hasBody: true });
    const sent = await peer.upload(streamBase, pseudoRandom(5 * MiB, 100_000, 7));
    const res = await answer;
    expect(res.ok).toBe(true);
    const got = JSON.parse((await body).body.toString()) as { sha256: string; bytes: number };
    expect(sent).toBe(5 * MiB);
    expect(got).toEqual({ sha256: sha256Of(pseudoRandom(5 * MiB, 100_000, 7)), bytes: 5 * MiB });
    expect(seen[0]!.headers['transfer-encoding']).toBe('chunked');
  });

  it('relays a 50 MiB response intact without more than a window unacknowledged', async () => {
    peer.ackDelayMs = 1;
    const { res, body } = await get('/big?mb=50', [], 40);
    expect(res.ok && (res.result as { status: number }).status).toBe(200);
    const got = await body;
    expect(got.bytes).toBe(50 * MiB);
    expect(got.sha256).toBe(sha256Of(pseudoRandom(50 * MiB)));
    expect(got.maxOutstanding).toBeLessThanOrEqual(BYTE_STREAM_WINDOW + BYTE_STREAM_CHUNK);
    await peer.until(() => peer.service.activeCount() === 0, 'the exchange to end');
  });

  it('sends a response of known length up to INLINE_BODY_MAX as one HttpHead frame with End, and nothing else', async () => {
    const body = peer.download(81, true);
    const res = await peer.call('http.request', { streamBase: 80, port, method: 'GET', path: '/echo', headers: [], hasBody: false });
    expect(res.ok).toBe(true);
    const got = await body;
    expect(JSON.parse(got.body.toString() || '{}')).toMatchObject({ method: 'GET', url: '/echo' });
    const frames = peer.log.flatMap((l) => (l.type === 'binary' && l.frame.streamId === 81 ? [l.frame] : []));
    expect(frames).toEqual([]);
    await peer.until(() => peer.service.activeCount() === 0, 'the exchange to end');
  });

  it('streams a body of unknown length: the head goes before the body ends (server-sent events), and an abort ends it while the server is quiet', async () => {
    const body = peer.download(91, true);
    const res = await peer.call('http.request', { streamBase: 90, port, method: 'GET', path: '/events', headers: [], hasBody: false });
    expect(res.ok && (res.result as { status: number }).status).toBe(200);
    await peer.until(() => peer.log.some((l) => l.type === 'binary' && l.frame.streamId === 91), 'the first event');
    expect(peer.service.activeCount()).toBe(1);
    // The browser leaves while the server is quiet: the exchange ends without waiting for another event.
    body.catch(() => undefined);
    expect(peer.streams.abortOutgoing(91)).toBe(true);
    await peer.until(() => peer.service.activeCount() === 0, 'the exchange to end', 2_000);
    expect(seen.filter((x) => x.url === '/events')).toHaveLength(1);
  });

  it('stops sending a body when the DO aborts its stream (the browser left), ending the exchange', async () => {
    peer.ackDelayMs = 5;
    const { res } = await get('/big?mb=50', [], 110);
    expect(res.ok).toBe(true);
    await peer.until(() => peer.log.some((l) => l.type === 'binary' && l.frame.streamId === 111), 'the first body frame');
    expect(peer.streams.abortOutgoing(111)).toBe(true);
    await peer.until(() => peer.service.activeCount() === 0, 'the exchange to end');
    const frames = peer.log.filter((l) => l.type === 'binary' && l.frame.streamId === 111);
    expect(frames.length).toBeLessThan(50 * 4);
    expect(frames.some((l) => l.type === 'binary' && l.frame.flags !== 0)).toBe(false);
    expect(peer.streams.abortOutgoing(111)).toBe(false);
  });

  it('tells the DO with stream.abort when the dev server hangs up mid-body, and sends no End', async () => {
    const body = peer.download(121);
    body.catch(() => undefined);
    const res = await peer.call('http.request', { streamBase: 120, port, method: 'GET', path: '/short', headers: [], hasBody: false });
    expect(res.ok).toBe(true);
    await peer.until(() => peer.events('stream.abort').length > 0, 'stream.abort');
    expect(peer.events('stream.abort')).toEqual([{ streamId: 121 }]);
    const frames = peer.log.filter((l) => l.type === 'binary' && l.frame.streamId === 121);
    expect(frames.some((l) => l.type === 'binary' && l.frame.flags !== 0)).toBe(false);
    await peer.until(() => peer.service.activeCount() === 0, 'the exchange to end');
  });

  it('answers HEAD with the head only, Content-Length kept', async () => {
    const body = peer.download(61);
    const res = await peer.call('http.request', { streamBase: 60, port, method: 'HEAD', path: '/big?mb=1', headers: [], hasBody: false });
    expect(res.ok && res.result).toMatchObject({ status: 200, headers: expect.arrayContaining([['content-length', String(MiB)]]) });
    expect((await body).bytes).toBe(0);
  });

  it('drops the exchange when the data socket goes mid-body', async () => {
    peer.ackDelayMs = 5;
    const { res } = await get('/big?mb=50', [], 70);
    expect(res.ok).toBe(true);
    await peer.until(() => peer.log.some((l) => l.type === 'binary' && l.frame.streamId === 71), 'the first body frame');
    expect(peer.service.activeCount()).toBe(1);
    peer.streams.detach();
    await peer.until(() => peer.service.activeCount() === 0, 'the exchange to end');
    const frames = peer.log.filter((l) => l.type === 'binary' && l.frame.streamId === 71);
    expect(frames.some((l) => l.type === 'binary' && l.frame.flags !== 0)).toBe(false); // no End for a cut body
  });

  it('passes redirects through unchanged (the DO rewrites Location)', async () => {
    const { res, body } = await get('/redirect', [], 50);
    await body;
    expect(res.ok).toBe(true);
    if (!res.ok) return;
    const head = res.result as { status: number; headers: Array<[string, string]> };
    expect(head.status).toBe(302);
    expect(head.headers).toContainEqual(['location', `http://localhost:${port}/next?x=1`]);
    expect(seen).toHaveLength(1);
  });
});

describe('PreviewService › SSRF guard and failures', () => {
  let server: http.Server;
  let other: http.Server;
  let port: number;
  let otherPort: number;
  let seen: Seen[];
  let otherSeen: Seen[];
  let peer: DoPeer;
  let listening: number[];
  let target: { address: string; declaredPorts: number[] } | null;

  beforeEach(async () => {
    seen = [];
    otherSeen = [];
    server = devServer(seen);
    other = devServer(otherSeen);
    port = await listen(server);
    otherPort = await listen(other);
    listening = [];
    target = { address: '127.0.0.1', declaredPorts: [port] };
    peer = new DoPeer({ target: async () => target, listListening: async () => listening, pollMs: 60_000, headersTimeoutMs: 300 });
  });

  afterEach(async () => {
    peer.service.stop();
    for (const s of [server, other]) {
      s.closeAllConnections();
      await new Promise((r) => s.close(r));
    }
  });

  const req = (p: Record<string, unknown>) =>
    peer.call('http.request', { streamBase: 100, port, method: 'GET', path: '/echo', headers: [], hasBody: false, ...p });
  const errorOf = (res: Awaited<ReturnType<typeof req>>) => (res.ok ? undefined : res.error);

  it('refuses a port neither declared nor listening, without connecting to it', async () => {
    const res = await req({ port: otherPort });
    expect(errorOf(res)?.code).toBe('forbidden');
    expect(errorOf(res)?.message).toContain(`port ${otherPort}`);
    expect(otherSeen).toHaveLength(0);
  });

  it('serves a port that started listening since the last poll', async () => {
    listening = [otherPort];
    const body = peer.download(101);
    const res = await req({ port: otherPort });
    expect(res.ok).toBe(true);
    await body;
    expect(otherSeen).toHaveLength(1);
  });

  it('answers agent_unavailable for a declared port nothing listens on', async () => {
    const closedPort = otherPort;
    other.closeAllConnections();
    await new Promise((r) => other.close(r));
    other = devServer(otherSeen);
    await listen(other);
    target = { address: '127.0.0.1', declaredPorts: [port, closedPort] };
    const res = await req({ port: closedPort });
    expect(errorOf(res)).toEqual({ code: 'agent_unavailable', message: `nothing is listening on port ${closedPort} in the session` });
  });

  it('refuses an absolute-form URL as the path (schema) and a target with spaces (relay)', async () => {
    expect(errorOf(await req({ path: 'http://evil.example/' }))?.code).toBe('validation_failed');
    expect(errorOf(await req({ path: '/a b' }))?.code).toBe('validation_failed');
    expect(seen).toHaveLength(0);
  });

  it('keeps a network-path-looking path on the session container, with its own Host', async () => {
    const body = peer.download(101);
    const res = await req({ path: '//evil.example/x', headers: [['host', 'evil.example']] });
    expect(res.ok).toBe(true);
    await body;
    expect(seen[0]).toMatchObject({ url: '//evil.example/x', headers: { host: `localhost:${port}` } });
  });

  it('refuses CONNECT and malformed headers', async () => {
    expect(errorOf(await req({ method: 'CONNECT' }))?.code).toBe('method_not_allowed');
    expect(errorOf(await req({ headers: [['x-a', 'ok\r\nx-b: smuggled']] }))?.code).toBe('validation_failed');
    expect(errorOf(await req({ headers: [['bad name', 'v']] }))?.code).toBe('validation_failed');
    expect(seen).toHaveLength(0);
  });

  it('answers agent_unavailable when the session runs nowhere, forbidden for a link-local address', async () => {
    target = null;
    expect(errorOf(await req({}))?.code).toBe('agent_unavailable');
    await new Promise((r) => setTimeout(r, 1_100)); // past the target cache
    target = { address: '169.254.169.254', declaredPorts: [port] };
    expect(errorOf(await req({}))?.code).toBe('forbidden');
  });

  it('times out a server that sends no response head', async () => {
    const res = await req({ path: '/hang' });
    expect(errorOf(res)?.code).toBe('timeout');
    expect(peer.service.activeCount()).toBe(0);
  });

  it('stop() ends a request in flight and the service serves again after start()', async () => {
    peer = new DoPeer({ target: async () => target, listListening: async () => listening, pollMs: 60_000 });
    const pending = req({ path: '/hang' });
    await peer.until(() => seen.length === 1, 'the request to reach the server');
    expect(peer.service.activeCount()).toBe(1);
    peer.service.stop();
    expect(errorOf(await pending)?.code).toBe('agent_unavailable');
    expect(peer.service.activeCount()).toBe(0);
    peer.service.start();
    const body = peer.download(101);
    expect((await req({})).ok).toBe(true);
    await body;
  });
});
