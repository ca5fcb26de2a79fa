import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DoPeer } from './fakes';

/** A TCP server the test opens and closes; `listening` is what the injected lister reports. */
function tcpServer(): Promise<{ server: net.Server; port: number }> {
  return new Promise((resolve) => {
    const server = net.createServer((s) => s.destroy());
    server.listen(0, '127.0.0.1', () => resolve({ server, port: (server.address() as AddressInfo).port }));
  });
}

function close(server: net.Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

/** A port nothing listens on: bound once, then released. */
async function freePort(): Promise<number> {
  const { server, port } = await tcpServer();
  await close(server);
  return port;
}

describe('PreviewService › ports', () => {
  const servers: net.Server[] = [];
  let listening: Set<number>;
  let declared: number[];
  let peer: DoPeer;
  let lists = 0;

  beforeEach(() => {
    listening = new Set();
    declared = [];
    lists = 0;
    peer = new DoPeer({
      target: async () => ({ address: '127.0.0.1', declaredPorts: declared }),
      listListening: async () => {
        lists++;
        return [...listening];
      },
      pollMs: 50,
    });
  });

  afterEach(async () => {
    peer.service.stop();
    await Promise.all(servers.splice(0).map(close));
  });

  async function open(): Promise<number> {
    const { server, port } = await tcpServer();
    servers.push(server);
    listening.add(port);
    return port;
  }

  const portEvents = () => peer.events('port') as Array<{ port: number; state: string }>;

  it('reports every listening port on the first poll, then opens and closes as they happen', async () => {
    const first = await open();
    peer.service.start();
    await peer.until(() => portEvents().length === 1, 'the first open');
    expect(portEvents()).toEqual([{ port: first, state: 'open' }]);

    const second = await open();
    await peer.until(() => portEvents().length === 2, 'the second open');
    expect(portEvents()[1]).toEqual({ port: second, state: 'open' });

    const server = servers.pop()!;
    await close(server);
    listening.delete(second);
    await peer.until(() => portEvents().length === 3, 'the close');
    expect(portEvents()[2]).toEqual({ port: second, state: 'close' });
  });

  it('stops polling on stop() and reports afresh after start()', async () => {
    const port = await open();
    peer.service.start();
    await peer.until(() => portEvents().length === 1, 'the first open');
    peer.service.stop();
    const after = lists;
    await new Promise((r) => setTimeout(r, 200));
    expect(lists).toBe(after);
    peer.service.start();
    await peer.until(() => portEvents().length === 2, 'the open after restart');
    expect(portEvents()[1]).toEqual({ port, state: 'open' });
  });

  it('keeps the last known ports when a poll fails', async () => {
    let fail = false;
    const port = await open();
    peer = new DoPeer({
      target: async () => ({ address: '127.0.0.1', declaredPorts: [] }),
      listListening: async () => {
        if (fail) throw new Error('exec failed');
        return [...listening];
      },
      pollMs: 20,
    });
    peer.service.start();
    await peer.until(() => portEvents().length === 1, 'the first open');
    fail = true;
    await new Promise((r) => setTimeout(r, 150));
    expect(portEvents()).toEqual([{ port, state: 'open' }]);
    expect(peer.logger.lines.filter((l) => l.level === 'warn' && l.msg === 'listing listening ports failed')).toHaveLength(1);
  });

  it('ports.list merges declared (runtime and DO) and listening ports', async () => {
    const port = await open();
    declared = [3000];
    expect(await peer.call('ports.declare', { ports: [5173, 3000] })).toMatchObject({ ok: true, result: { ports: [3000, 5173] } });
    const res = await peer.call('ports.list', {});
    expect(res).toMatchObject({
      ok: true,
      result: {
        ports: [
          { port: 3000, declared: true, open: false },
          { port: 5173, declared: true, open: false },
          { port, declared: false, open: true },
        ].sort((a, b) => a.port - b.port),
      },
    });
    await peer.call('ports.declare', { ports: [] });
    const after = await peer.call('ports.list', {});
    expect(after.ok && (after.result as { ports: Array<{ port: number }> }).ports.map((p) => p.port)).toEqual([3000, port].sort((a, b) => a - b));
  });

  it('ports.declare lets a declared port be relayed', async () => {
    const port = await freePort();
    const before = await peer.call('http.request', { streamBase: 1, port, method: 'GET', path: '/', headers: [], hasBody: false });
    expect(before.ok || before.error.code).toBe('forbidden');
    await peer.call('ports.declare', { ports: [port] });
    const after = await peer.call('http.request', { streamBase: 1, port, method: 'GET', path: '/', headers: [], hasBody: false });
    expect(after.ok || after.error.code).toBe('agent_unavailable'); // allowed, but nothing listens there
  });

  it('ports.wait answers once the port accepts connections', async () => {
    const port = await freePort();
    const waiting = peer.call('ports.wait', { port, timeoutMs: 10_000 });
    await new Promise((r) => setTimeout(r, 300));
    const server = net.createServer((s) => s.destroy());
    servers.push(server);
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()));
    expect(await waiting).toMatchObject({ ok: true, result: { port } });
  });

  it('ports.wait times out when nothing listens, and stop() ends a wait', async () => {
    const port = await freePort();
    const started = Date.now();
    const res = await peer.call('ports.wait', { port, timeoutMs: 300 });
    expect(res.ok || res.error.code).toBe('timeout');
    expect(Date.now() - started).toBeLessThan(2_000);
    const waiting = peer.call('ports.wait', { port, timeoutMs: 60_000 });
    await new Promise((r) => setTimeout(r, 50));
    peer.service.stop();
    const stopped = await waiting;
    expect(stopped.ok || stopped.error.code).toBe('agent_unavailable');
  });
});
