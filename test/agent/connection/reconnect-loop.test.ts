import { WebSocketServer, type WebSocket } from 'ws';
import { afterEach, describe, expect, it } from 'vitest';
import { Backoff } from '../../../shared/backoff';
import type { HelloFrame } from '../../../shared/protocol/tunnel';
import { ReconnectLoop } from '../../../agent/connection/reconnect-loop';
import { memoryLogger } from '../../../agent/logger';

const system = { hostname: 'h', platform: 'linux', arch: 'x64', cpus: 1, loadavg: [0, 0, 0], memTotal: 1, memFree: 1, uptime: 1 };

/** An in-memory edge peer: a real ws server on loopback that records what agents send. */
async function fakeEdge() {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((r) => wss.once('listening', () => r()));
  const port = (wss.address() as { port: number }).port;
  const received: Array<Record<string, unknown>> = [];
  const sockets: WebSocket[] = [];
  let welcome = true;
  let requestAfterWelcome = false;
  wss.on('connection', (ws, req) => {
    sockets.push(ws);
    ws.on('message', (d, binary) => {
      if (binary) return;
      const frame = JSON.parse(d.toString()) as Record<string, unknown>;
      received.push({ ...frame, auth: req.headers.authorization });
      if (frame.type === 'hello' && welcome) {
        ws.send(JSON.stringify({ type: 'welcome', protocolVersion: 1, agentId: 'agt_1', heartbeatIntervalMs: 50 }));
        // A request right behind the welcome, as the edge's reconciliation sends one.
        if (requestAfterWelcome) ws.send(JSON.stringify({ type: 'req', id: 'r-after-welcome', method: 'x', params: {} }));
      }
      if (frame.type === 'heartbeat') ws.send(JSON.stringify({ type: 'heartbeat_ack', seq: frame.seq }));
    });
  });
  return {
    url: `ws://127.0.0.1:${port}`,
    received,
    sockets,
    set welcome(v: boolean) {
      welcome = v;
    },
    set requestAfterWelcome(v: boolean) {
      requestAfterWelcome = v;
    },
    async waitFor(pred: (f: Record<string, unknown>) => boolean, count = 1, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      while (received.filter(pred).length < count) {
        if (Date.now() > deadline) throw new Error(`timed out; got ${JSON.stringify(received.map((r) => r.type))}`);
        await new Promise((r) => setTimeout(r, 10));
      }
      return received.filter(pred);
    },
    close: () => new Promise<void>((r) => { for (const s of wss.clients) s.terminate(); wss.close(() => r()); }),
  };
}

describe('ReconnectLoop', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    while (cleanups.length) await cleanups.pop()!();
  });

  function makeLoop(url: string, sessionsRef: { n: number }, frames: unknown[] = []) {
    const logger = memoryLogger();
    const loop = new ReconnectLoop({
      logger,
      backoff: new Backoff({ baseMs: 10, capMs: 40 }),
      connection: {
        url,
        token: 'tok',
        hello: async (): Promise<HelloFrame> => ({
          type: 'hello',
          protocolVersion: 1,
          agent: { name: 'a', version: '1', mode: 'local', capacity: { maxSessions: 1 }, docker: { available: false }, system },
          sessions: Array.from({ length: sessionsRef.n }, (_, i) => ({ sessionId: `ses_${i}`, userId: 'usr_1', state: 'running' as const })),
        }),
        heartbeat: () => ({ system, activeSessions: sessionsRef.n }),
      },
      onFrame: (f) => frames.push(f),
    });
    cleanups.push(() => loop.stop());
    return { loop, logger };
  }

  it('says hello with its token and heartbeats after the welcome', async () => {
    const edge = await fakeEdge();
    cleanups.push(edge.close);
    const { loop } = makeLoop(edge.url, { n: 0 });
    loop.start();
    const [hello] = await edge.waitFor((f) => f.type === 'hello');
    expect(hello!.auth).toBe('Bearer tok');
    await edge.waitFor((f) => f.type === 'heartbeat', 3);
  });

  it('does not miss a request the edge sends right behind its welcome', async () => {
    const edge = await fakeEdge();
    cleanups.push(edge.close);
    edge.requestAfterWelcome = true;
    const frames: Array<{ id?: string }> = [];
    const { loop } = makeLoop(edge.url, { n: 0 }, frames);
    loop.start();
    const deadline = Date.now() + 10_000;
    while (!frames.some((f) => f.id === 'r-after-welcome') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(frames.some((f) => f.id === 'r-after-welcome')).toBe(true);
  });

  it('redials after a drop and re-announces its current sessions', async () => {
    const edge = await fakeEdge();
    cleanups.push(edge.close);
    const sessions = { n: 1 };
    const { loop } = makeLoop(edge.url, sessions);
    loop.start();
    await edge.waitFor((f) => f.type === 'hello');
    sessions.n = 3;
    edge.sockets[0]!.terminate();
    const hellos = await edge.waitFor((f) => f.type === 'hello', 2);
    expect((hellos[1]!.sessions as unknown[]).length).toBe(3);
  });

  it('stops when asked between its hello and the welcome, closing the socket the welcome then arrives on', async () => {
    const edge = await fakeEdge();
    cleanups.push(edge.close);
    edge.welcome = false;
    const { loop } = makeLoop(edge.url, { n: 0 });
    loop.start();
    await edge.waitFor((f) => f.type === 'hello');
    const socket = edge.sockets[0]!;
    const closed = new Promise<number>((resolve) => socket.once('close', (code) => resolve(code)));
    const stopped = loop.stop();
    socket.send(JSON.stringify({ type: 'welcome', protocolVersion: 1, agentId: 'agt_1', heartbeatIntervalMs: 50 }));
    await stopped;
    expect(await closed).toBe(1001);
  });

  it('keeps retrying with growing, capped waits while the edge is unreachable', async () => {
    const edge = await fakeEdge();
    const url = edge.url;
    await edge.close();
    const { loop, logger } = makeLoop(url, { n: 0 });
    loop.start();
    const deadline = Date.now() + 10_000;
    while (logger.lines.filter((l) => l.msg === 'reconnecting').length < 6 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 10));
    }
    const waits = logger.lines.filter((l) => l.msg === 'reconnecting').map((l) => Number(l.inMs));
    expect(waits.length).toBeGreaterThanOrEqual(6);
    expect(Math.max(...waits)).toBeLessThanOrEqual(40);
    expect(waits.slice(-2).every((w) => w >= 20)).toBe(true);
    expect(logger.lines.some((l) => l.msg === 'cannot connect to edge')).toBe(true);
  });

  it('answers a garbage frame from the edge with an error frame and stays connected', async () => {
    const edge = await fakeEdge();
    cleanups.push(edge.close);
    const { loop } = makeLoop(edge.url, { n: 0 });
    loop.start();
    await edge.waitFor((f) => f.type === 'hello');
    await edge.waitFor((f) => f.type === 'heartbeat');
    const ws = edge.sockets[0]!;
    ws.send('{"type":"mystery","id":"m1"}');
    ws.send('not json');
    const errors = await edge.waitFor((f) => f.type === 'error', 2);
    expect(errors[0]).toMatchObject({ id: 'm1', error: { code: 'protocol_error' } });
    expect(errors[1]).toMatchObject({ error: { code: 'invalid_json' } });
    const before = edge.received.filter((f) => f.type === 'heartbeat').length;
    await edge.waitFor((f) => f.type === 'heartbeat', before + 2);
    expect(edge.sockets.length).toBe(1);
  });

  it('drops a connection whose heartbeats go unanswered', async () => {
    const edge = await fakeEdge();
    cleanups.push(edge.close);
    const { loop, logger } = makeLoop(edge.url, { n: 0 });
    loop.start();
    await edge.waitFor((f) => f.type === 'hello');
    // From now on the edge is a black hole: it neither acks nor welcomes.
    edge.welcome = false;
    edge.sockets[0]!.removeAllListeners('message');
    const deadline = Date.now() + 10_000;
    while (!logger.lines.some((l) => l.msg === 'connection to edge lost') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(logger.lines.some((l) => String(l.msg).includes('stopped answering heartbeats'))).toBe(true);
  });
});
