import type { IncomingHttpHeaders } from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { FrameFlag } from '../../../shared/protocol/binary';
import { sendableCode, truncateReason } from '../../../agent/services/preview/ws-relay';
import { DoPeer } from './fakes';

interface Upgrade {
  url: string;
  headers: IncomingHttpHeaders;
  socket: WebSocket;
  closed?: { code: number; reason: string };
}

/** The dev server's WebSocket side: greets, echoes, and misbehaves on request by path. */
function wsServer(upgrades: Upgrade[]): Promise<{ wss: WebSocketServer; port: number }> {
  return new Promise((resolve) => {
    const wss = new WebSocketServer({
      host: '127.0.0.1',
      port: 0,
      handleProtocols: (protocols) => (protocols.has('vite-hmr') ? 'vite-hmr' : false),
      verifyClient: (info, cb) => (info.req.url === '/refuse' ? cb(false, 403) : cb(true)),
    });
    wss.on('connection', (socket, req) => {
      const u: Upgrade = { url: req.url ?? '', headers: req.headers, socket };
      upgrades.push(u);
      socket.on('close', (code, reason) => (u.closed = { code, reason: reason.toString() }));
      // Like Vite's `{"type":"connected"}`: a message right after the handshake.
      socket.send('hello from the server');
      if (u.url === '/close') socket.close(4001, 'bye');
      if (u.url === '/huge') socket.send(Buffer.alloc(1024 * 1024 + 1));
      if (u.url === '/deaf') (socket as unknown as { _socket: { pause(): void } })._socket.pause();
      if (u.url === '/drip') {
        // One message every 20 ms, each in its own TCP segment.
        let n = 0;
        const t = setInterval(() => (n < 10 ? socket.send(`drip ${n++}`) : clearInterval(t)), 20);
        socket.on('close', () => clearInterval(t));
      }
      socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary }));
    });
    wss.on('listening', () => resolve({ wss, port: (wss.address() as AddressInfo).port }));
  });
}

describe('PreviewService › ws.open', () => {
  let wss: WebSocketServer;
  let port: number;
  let upgrades: Upgrade[];
  let peer: DoPeer;

  beforeEach(async () => {
    upgrades = [];
    ({ wss, port } = await wsServer(upgrades));
    peer = new DoPeer({ target: async () => ({ address: '127.0.0.1', declaredPorts: [port] }), listListening: async () => [], pollMs: 60_000 });
  });

  afterEach(async () => {
    peer.service.stop();
    for (const c of wss.clients) c.terminate();
    await new Promise((r) => wss.close(r));
  });

  const open = (streamBase: number, path = '/hmr', extra: Record<string, unknown> = {}) =>
    peer.call('ws.open', {
      streamBase,
      port,
      path,
      headers: [['origin', 'https://ses.preview.example'], ['x-forwarded-proto', 'https'], ['x-forwarded-host', 'ses.preview.example'], ['cookie', 'a=1']],
      protocols: ['vite-hmr'],
      ...extra,
    });

  it("connects with Host localhost:<port>, the preview's own Origin mapped to http://localhost:<port>, and the chosen subprotocol", async () => {
    const res = await open(10);
    expect(res).toMatchObject({ ok: true, result: { protocol: 'vite-hmr' } });
    const u = upgrades[0]!;
    expect(u.url).toBe('/hmr');
    expect(u.headers.host).toBe(`localhost:${port}`);
    expect(u.headers.origin).toBe(`http://localhost:${port}`);
    expect(u.headers.cookie).toBe('a=1');
    expect(u.headers['sec-websocket-protocol']).toBe('vite-hmr');
    expect(peer.service.activeCount()).toBe(1);
  });

  it('passes a foreign Origin unchanged and sends none when the client sent none', async () => {
    await open(10, '/hmr', { headers: [['origin', 'https://other.preview.example'], ['x-forwarded-proto', 'https'], ['x-forwarded-host', 'ses.preview.example']] });
    await open(12, '/hmr', { headers: [['x-forwarded-proto', 'https'], ['x-forwarded-host', 'ses.preview.example']] });
    expect(upgrades[0]!.headers.origin).toBe('https://other.preview.example');
    expect(upgrades[1]!.headers.origin).toBe(undefined);
  });

  it('sends a message the server sent at once only after the res to ws.open', async () => {
    await open(10);
    await peer.until(() => peer.wsMessages(11).length === 1, 'the greeting');
    const resAt = peer.log.findIndex((l) => l.type === 'res');
    const msgAt = peer.log.findIndex((l) => l.type === 'binary' && l.frame.streamId === 11);
    expect(msgAt).toBeGreaterThan(resAt);
    const [greeting] = peer.wsMessages(11);
    expect(greeting!.offset).toBe(0);
    expect(greeting!.flags & FrameFlag.Text).toBe(FrameFlag.Text);
    expect(Buffer.from(greeting!.payload).toString()).toBe('hello from the server');
  });

  it('relays text and binary messages both ways, offsets counting messages', async () => {
    await open(10);
    expect(peer.wsSend(10, 0, 'ping text')).toBe(true);
    expect(peer.wsSend(10, 1, new Uint8Array([0, 1, 2, 255]))).toBe(true);
    const msgs = await peer.until(() => (peer.wsMessages(11).length >= 3 ? peer.wsMessages(11) : undefined), 'two echoes');
    expect(msgs.map((m) => m.offset)).toEqual([0, 1, 2]);
    expect(Buffer.from(msgs[1]!.payload).toString()).toBe('ping text');
    expect(msgs[1]!.flags & FrameFlag.Text).toBe(FrameFlag.Text);
    expect([...msgs[2]!.payload]).toEqual([0, 1, 2, 255]);
    expect(msgs[2]!.flags & FrameFlag.Text).toBe(0);
  });

  it('passes a close from the container to the DO, after the messages sent before it', async () => {
    await open(20, '/close');
    const [close] = await peer.until(() => (peer.events('ws.close').length ? peer.events('ws.close') : undefined), 'ws.close');
    expect(close).toEqual({ streamBase: 20, code: 4001, reason: 'bye' });
    const greetingAt = peer.log.findIndex((l) => l.type === 'binary' && l.frame.streamId === 21);
    const closeAt = peer.log.findIndex((l) => l.type === 'event' && l.event === 'ws.close');
    expect(greetingAt).toBeGreaterThanOrEqual(0);
    expect(closeAt).toBeGreaterThan(greetingAt);
    await peer.until(() => peer.service.activeCount() === 0, 'the relay to end');
  });

  it('passes a close from the DO to the container and does not echo it', async () => {
    await open(30);
    await peer.until(() => upgrades.length === 1, 'the upgrade');
    expect(peer.service.onEvent('ws.close', { streamBase: 30, code: 4002, reason: 'tab closed' })).toBe(true);
    await peer.until(() => upgrades[0]!.closed, 'the server to see the close');
    expect(upgrades[0]!.closed).toEqual({ code: 4002, reason: 'tab closed' });
    await peer.until(() => peer.service.activeCount() === 0, 'the relay to end');
    expect(peer.events('ws.close')).toEqual([]);
    expect(peer.wsSend(30, 0, 'late')).toBe(false);
  });

  it('closes with 1009 when the container sends a message over 1 MiB', async () => {
    await open(40, '/huge');
    const [close] = await peer.until(() => (peer.events('ws.close').length ? peer.events('ws.close') : undefined), 'ws.close');
    expect(close).toMatchObject({ streamBase: 40, code: 1009 });
    expect(peer.wsMessages(41)).toHaveLength(1); // the greeting only
  });

  it('closes with 1013 when the dev server stops reading and 4 MiB back up', async () => {
    await open(45, '/deaf');
    const mib = new Uint8Array(1024 * 1024);
    for (let i = 0; i < 256 && peer.events('ws.close').length === 0; i++) {
      peer.wsSend(45, i, mib);
      await new Promise((r) => setImmediate(r));
    }
    const [close] = await peer.until(() => (peer.events('ws.close').length ? peer.events('ws.close') : undefined), 'ws.close');
    expect(close).toMatchObject({ streamBase: 45, code: 1013 });
  });

  it('closes with 1002 when client messages arrive out of order', async () => {
    await open(50);
    peer.wsSend(50, 1, 'skipped one');
    const [close] = await peer.until(() => (peer.events('ws.close').length ? peer.events('ws.close') : undefined), 'ws.close');
    expect(close).toMatchObject({ streamBase: 50, code: 1002 });
  });

  it('reports an upgrade the server refuses with its status', async () => {
    const res = await open(60, '/refuse');
    expect(res.ok).toBe(false);
    if (res.ok) return;
    expect(res.error.code).toBe('bad_request');
    expect(res.error.message).toContain('status 403');
    expect(peer.service.activeCount()).toBe(0);
    expect(peer.events('ws.close')).toEqual([]);
  });

  it('refuses an undeclared port, a closed declared port, and a taken streamBase', async () => {
    const undeclared = await peer.call('ws.open', { streamBase: 70, port: port + 1 === 65536 ? 1 : port + 1, path: '/', headers: [], protocols: [] });
    expect(undeclared.ok || undeclared.error.code).toBe('forbidden');
    await open(71);
    const taken = await open(71);
    expect(taken.ok || taken.error.code).toBe('conflict');
    for (const c of wss.clients) c.terminate();
    await new Promise((r) => wss.close(r));
    const closed = await open(72);
    expect(closed.ok || closed.error.code).toBe('agent_unavailable');
  });

  it('times out a server that never answers the upgrade', async () => {
    const silent = net.createServer(() => undefined);
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    const silentPort = (silent.address() as AddressInfo).port;
    try {
      peer.service.stop();
      peer = new DoPeer({ target: async () => ({ address: '127.0.0.1', declaredPorts: [silentPort] }), listListening: async () => [], pollMs: 60_000, headersTimeoutMs: 300 });
      const res = await peer.call('ws.open', { streamBase: 110, port: silentPort, path: '/', headers: [], protocols: [] });
      expect(res.ok || res.error).toMatchObject({ code: 'timeout', message: expect.stringContaining('0.3 s') });
      expect(peer.service.activeCount()).toBe(0);
    } finally {
      silent.close();
    }
  });

  it('refuses more than maxActive relays at once', async () => {
    peer.service.stop();
    peer = new DoPeer({ target: async () => ({ address: '127.0.0.1', declaredPorts: [port] }), listListening: async () => [], pollMs: 60_000, maxActive: 1 });
    expect((await open(100)).ok).toBe(true);
    const second = await open(102);
    expect(second.ok || second.error.code).toBe('limit_exceeded');
    const http = await peer.call('http.request', { streamBase: 104, port, method: 'GET', path: '/', headers: [], hasBody: false });
    expect(http.ok || http.error.code).toBe('limit_exceeded');
  });

  it('pauses reading from the dev server while the data socket is backed up', async () => {
    let buffered = 0;
    peer.service.stop();
    peer = new DoPeer({
      target: async () => ({ address: '127.0.0.1', declaredPorts: [port] }),
      listListening: async () => [],
      pollMs: 60_000,
      dataBuffered: () => buffered,
    });
    await open(90, '/drip');
    await peer.until(() => peer.wsMessages(91).length >= 2, 'the greeting and a first drip');
    buffered = 8 * 1024 * 1024;
    await peer.until(() => peer.wsMessages(91).length >= 3, 'one message that notices the backlog');
    const whilePaused = peer.wsMessages(91).length;
    await new Promise((r) => setTimeout(r, 150));
    expect(peer.wsMessages(91).length).toBe(whilePaused);
    buffered = 0;
    await peer.until(() => peer.wsMessages(91).length === 11, 'the rest after the backlog drains');
    expect(peer.wsMessages(91).map((m) => m.offset)).toEqual([...Array(11).keys()]);
  });

  it('stop() drops every relayed socket and tells the DO with 1001', async () => {
    await open(80);
    await open(82);
    expect(peer.service.activeCount()).toBe(2);
    peer.service.stop();
    const closes = await peer.until(() => (peer.events('ws.close').length === 2 ? peer.events('ws.close') : undefined), 'two ws.close');
    expect(closes).toContainEqual({ streamBase: 80, code: 1001, reason: 'the preview relay stopped' });
    expect(peer.service.activeCount()).toBe(0);
    await peer.until(() => upgrades.every((u) => u.closed), 'the server to see both sockets go');
  });
});

describe('ws close codes and reasons', () => {
  it('maps codes that cannot travel in a close frame', () => {
    expect(sendableCode(1000)).toBe(1000);
    expect(sendableCode(4001)).toBe(4001);
    expect(sendableCode(1005)).toBe(1000);
    expect(sendableCode(1006)).toBe(1011);
    expect(sendableCode(1015)).toBe(1011);
    expect(sendableCode(2000)).toBe(1011);
  });

  it('cuts a reason to 123 bytes on a character boundary', () => {
    const cut = truncateReason('é'.repeat(100));
    expect(Buffer.byteLength(cut)).toBe(122);
    expect(truncateReason('short')).toBe('short');
  });
});
