/**
 * The agent's Prometheus metrics: the address setting, the endpoint, what the
 * gauges read at scrape time, Docker call timing, and the health file.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type Docker from 'dockerode';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../../../agent/config';
import { AgentMetrics } from '../../../agent/metrics/agent-metrics';
import { metricsAddressFromEnv } from '../../../agent/metrics/config';
import { dockerOperation, instrumentDocker } from '../../../agent/metrics/docker';
import { keepHealthFile, readHealthFile, writeHealthFile } from '../../../agent/metrics/health-file';
import { startMetricsServer, type MetricsServer } from '../../../agent/metrics/server';

/** The sample lines of one metric family, without HELP and TYPE. */
async function samples(m: AgentMetrics, name: string): Promise<string[]> {
  const text = await m.registry.getSingleMetricAsString(name);
  return text.split('\n').filter((l) => l.startsWith(name));
}

describe('METRICS_ADDR', () => {
  it('is off when unset or empty', () => {
    expect(metricsAddressFromEnv({})).toBeUndefined();
    expect(metricsAddressFromEnv({ METRICS_ADDR: '  ' })).toBeUndefined();
  });

  it('takes host:port, a bracketed IPv6 address, or a name', () => {
    expect(metricsAddressFromEnv({ METRICS_ADDR: '127.0.0.1:9464' })).toEqual({ host: '127.0.0.1', port: 9464 });
    expect(metricsAddressFromEnv({ METRICS_ADDR: '[::1]:9464' })).toEqual({ host: '::1', port: 9464 });
    expect(metricsAddressFromEnv({ METRICS_ADDR: 'localhost:1' })).toEqual({ host: 'localhost', port: 1 });
  });

  it('refuses anything else, naming the variable', () => {
    for (const bad of ['9464', '127.0.0.1', '127.0.0.1:0', '127.0.0.1:65536', 'http://127.0.0.1:9464', '::1:9464']) {
      expect(() => metricsAddressFromEnv({ METRICS_ADDR: bad }), bad).toThrow(new ConfigError(`METRICS_ADDR must be host:port (e.g. 127.0.0.1:9464), not "${bad}"`));
    }
  });
});

describe('AgentMetrics', () => {
  it('counts relayed bytes per direction, reconnects and preview requests', async () => {
    const m = new AgentMetrics({ defaultMetrics: false });
    m.relayedBytes.inc({ direction: 'to_edge' }, 1000);
    m.relayedBytes.inc({ direction: 'to_edge' }, 24);
    m.relayedBytes.inc({ direction: 'from_edge' }, 5);
    m.tunnelReconnects.inc();
    m.previewStarted()('ok');
    m.previewStarted()('error');
    m.previewRequests.inc({ kind: 'websocket', outcome: 'ok' });
    expect(await samples(m, 'mominai_agent_relayed_bytes_total')).toEqual([
      'mominai_agent_relayed_bytes_total{direction="to_edge"} 1024',
      'mominai_agent_relayed_bytes_total{direction="from_edge"} 5',
    ]);
    expect(await samples(m, 'mominai_agent_tunnel_reconnects_total')).toEqual(['mominai_agent_tunnel_reconnects_total 1']);
    expect(await samples(m, 'mominai_agent_preview_requests_total')).toEqual([
      'mominai_agent_preview_requests_total{kind="http",outcome="ok"} 1',
      'mominai_agent_preview_requests_total{kind="http",outcome="error"} 1',
      'mominai_agent_preview_requests_total{kind="websocket",outcome="ok"} 1',
    ]);
    const hist = await samples(m, 'mominai_agent_preview_response_seconds');
    expect(hist.filter((l) => l.includes('_count'))).toEqual([
      'mominai_agent_preview_response_seconds_count{outcome="ok"} 1',
      'mominai_agent_preview_response_seconds_count{outcome="error"} 1',
    ]);
  });

  it('reads sessions by state, running processes, and ring and window use when scraped', async () => {
    const m = new AgentMetrics({ defaultMetrics: false });
    const states = ['running', 'running', 'stopped'];
    m.setSource({ sessionStates: () => states });
    const procs = [{ running: true }, { running: false }, { running: true }];
    const manager = { list: () => procs };
    m.trackProcesses(manager);
    const a = { acked: 100, ring: { size: 300, end: 400 } };
    const b = { acked: 50, ring: { size: 50, end: 50 } };
    m.trackStream(a);
    m.trackStream(b);
    m.tunnelUp();
    expect(await samples(m, 'mominai_agent_sessions')).toEqual(['mominai_agent_sessions{state="running"} 2', 'mominai_agent_sessions{state="stopped"} 1']);
    expect(await samples(m, 'mominai_agent_processes')).toEqual(['mominai_agent_processes 2']);
    expect(await samples(m, 'mominai_agent_output_streams')).toEqual(['mominai_agent_output_streams 2']);
    expect(await samples(m, 'mominai_agent_output_ring_bytes')).toEqual(['mominai_agent_output_ring_bytes 350']);
    expect(await samples(m, 'mominai_agent_output_window_bytes')).toEqual(['mominai_agent_output_window_bytes 300']);
    expect(await samples(m, 'mominai_agent_tunnel_connected')).toEqual(['mominai_agent_tunnel_connected 1']);
    // Figures move between scrapes without anyone telling the metrics.
    states.splice(0, 3, 'creating');
    procs[0]!.running = false;
    a.acked = 400;
    m.tunnelDown();
    expect(await samples(m, 'mominai_agent_sessions')).toEqual(['mominai_agent_sessions{state="creating"} 1']);
    expect(await samples(m, 'mominai_agent_processes')).toEqual(['mominai_agent_processes 1']);
    expect(await samples(m, 'mominai_agent_output_window_bytes')).toEqual(['mominai_agent_output_window_bytes 0']);
    expect(await samples(m, 'mominai_agent_tunnel_connected')).toEqual(['mominai_agent_tunnel_connected 0']);
  });
});

describe('Docker call timing', () => {
  it('names operations by path with ids replaced', () => {
    expect(dockerOperation('/containers/3f2a9c/json')).toBe('containers/:id/json');
    expect(dockerOperation('/containers/json?all=1')).toBe('containers/json');
    expect(dockerOperation('/containers/create?name=x')).toBe('containers/create');
    expect(dockerOperation('/exec/abc/start')).toBe('exec/:id/start');
    expect(dockerOperation('/v1.41/networks/mominai-box1')).toBe('networks/:id');
    expect(dockerOperation('/_ping')).toBe('_ping');
    expect(dockerOperation(undefined)).toBe('/');
  });

  it('times every call through the modem, by method, operation and outcome, and passes results through', async () => {
    const m = new AgentMetrics({ defaultMetrics: false });
    const calls: unknown[] = [];
    const fake = {
      modem: {
        dial(options: { path: string }, cb: (err: unknown, data: unknown) => void) {
          calls.push(options.path);
          setImmediate(() => (options.path.includes('missing') ? cb(new Error('no such container'), null) : cb(null, { ok: options.path })));
        },
      },
    };
    const docker = instrumentDocker(fake as unknown as Docker, m.dockerDuration);
    const modem = (docker as unknown as typeof fake).modem;
    const dial = (opts: { method: string; path: string }) => new Promise((resolve) => modem.dial(opts, (err, data) => resolve({ err: err ? String(err) : null, data })));
    expect(await dial({ method: 'GET', path: '/containers/abc/json' })).toEqual({ err: null, data: { ok: '/containers/abc/json' } });
    expect(await dial({ method: 'GET', path: '/containers/missing/json' })).toEqual({ err: 'Error: no such container', data: null });
    expect(await dial({ method: 'POST', path: '/containers/def/start' })).toEqual({ err: null, data: { ok: '/containers/def/start' } });
    expect(calls).toEqual(['/containers/abc/json', '/containers/missing/json', '/containers/def/start']);
    expect((await samples(m, 'mominai_agent_docker_call_seconds')).filter((l) => l.includes('_count'))).toEqual([
      'mominai_agent_docker_call_seconds_count{method="GET",operation="containers/:id/json",outcome="ok"} 1',
      'mominai_agent_docker_call_seconds_count{method="GET",operation="containers/:id/json",outcome="error"} 1',
      'mominai_agent_docker_call_seconds_count{method="POST",operation="containers/:id/start",outcome="ok"} 1',
    ]);
  });
});

describe('the metrics endpoint', () => {
  let server: MetricsServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it('serves GET /metrics in the Prometheus text format and nothing else', async () => {
    const m = new AgentMetrics({ defaultMetrics: false });
    m.relayedBytes.inc({ direction: 'to_edge' }, 7);
    server = await startMetricsServer(m.registry, '127.0.0.1', 0);
    const base = `http://127.0.0.1:${server.address.port}`;
    const res = await fetch(`${base}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    const text = await res.text();
    expect(text).toContain('# TYPE mominai_agent_relayed_bytes_total counter\nmominai_agent_relayed_bytes_total{direction="to_edge"} 7\n');
    expect((await fetch(`${base}/`)).status).toBe(404);
    expect((await fetch(`${base}/metrics`, { method: 'POST' })).status).toBe(405);
  });

  it('fails to start on an address that is taken', async () => {
    const m = new AgentMetrics({ defaultMetrics: false });
    server = await startMetricsServer(m.registry, '127.0.0.1', 0);
    await expect(startMetricsServer(m.registry, '127.0.0.1', server.address.port)).rejects.toThrow(/EADDRINUSE/);
  });
});

describe('health file', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mominai-health-'));
  afterEach(() => fs.rmSync(path.join(dir, 'h'), { force: true }));

  it('round-trips the tunnel state and refuses what is not one', () => {
    const file = path.join(dir, 'h');
    expect(readHealthFile(file)).toBeUndefined();
    writeHealthFile(file, { time: 123, connected: true });
    expect(readHealthFile(file)).toEqual({ time: 123, connected: true });
    fs.writeFileSync(file, '{"time":"soon","connected":1}');
    expect(readHealthFile(file)).toBeUndefined();
    fs.writeFileSync(file, 'not json');
    expect(readHealthFile(file)).toBeUndefined();
  });

  it('is written at once and then on every interval with the current state', async () => {
    const file = path.join(dir, 'h');
    let connected = false;
    let t = 1_000;
    const stop = keepHealthFile(file, () => connected, 20, () => (t += 1));
    expect(readHealthFile(file)).toEqual({ time: 1_001, connected: false });
    connected = true;
    await new Promise<void>((resolve) => {
      const check = setInterval(() => {
        if (readHealthFile(file)?.connected) {
          clearInterval(check);
          resolve();
        }
      }, 5);
    });
    stop();
    expect(readHealthFile(file)?.connected).toBe(true);
  });
});
