/**
 * Preview: a dev server in the session container reached through the edge's
 * preview route against the same server reached directly, in one run.
 *
 *   preview  GET http://127.0.0.1:<edge>/<path> with Host: 3000-<sessionId>.preview.localhost
 *            (the host form), the port made public so no cookie is involved (public ports
 *            are served on the host form only; client → edge (workerd) → Session DO →
 *            tunnel → agent → its keep-alive undici pool → the container)
 *   direct   GET http://<container bridge address>:3000/<path> from this process: the
 *            hop the agent itself makes, without the edge, the DO and the tunnel
 *
 * The server is test/fixtures/preview-server.cjs, started with
 * `container_command` and announced by `start_preview`; the container gets
 * every core (--cpus), so the server limits neither side.
 *
 * (a) Requests per second for `/hello` (a 19-byte body): --concurrency closed-loop
 *     clients on keep-alive connections (one undici Pool per run) for --seconds after
 *     a 1 s warm-up; runs alternate direct/preview/preview/direct (--load-reps pairs).
 * (b) Latency of single sequential `/hello` requests on one keep-alive connection
 *     per side: --n requests each, the sides taking turns, after 20 warm-up each; with
 *     two diagnostic series that stop at the Worker and at the Session DO (see measureLatency).
 * (c) Throughput of `/big?mib=<--mib>` read to the end on a keep-alive connection,
 *     --reps runs each, alternating; the first run of each side is checked byte for
 *     byte (SHA-256), the rest by length.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, Pool } from 'undici';
import { api } from '../test/helpers/client';
import { ensureTestImage, TEST_IMAGES } from '../test/helpers/images';
import { addInto, cpuLine, CpuMeter, cpuPer, edgeSplitCpuGroups, mapValues, perLine, type CpuGroups } from './cpu';
import { Deadline, dockerCli, flagArg, intArg, interrupted, log, msSince, now, sessionContainer, withTimeout, type BenchArgs } from './lib';
import { fmtMs, percentile, printSummary, printTable, round, roundSummary, summarize, type Summary, type TargetCheck } from './report';
import { withStack } from './setup';

const MiB = 1024 * 1024;
const PORT = 3000;
const HELLO_BODY = `hello from ${PORT} GET`;
const WARMUP_SEQ = 20;
const LOAD_WARMUP_MS = 1_000;
const TARGET = { rpsRatio: 0.2, throughputRatio: 0.5, addedP50Ms: 3 };
const FIXTURE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../test/fixtures/preview-server.cjs');

type Side = 'direct' | 'preview';
/** The sequential series: both sides and the edge-only diagnostic. */
type Series = Side | 'edgeOnly' | 'workerOnly';
const PRIVATE_PORT = 3001;

interface Target {
  origin: string;
  /** Directly none; through the edge the preview's Host (`<port>-<id>.preview.localhost:<edge port>`). */
  headers: Record<string, string>;
}

interface PreviewOptions {
  concurrency: number;
  seconds: number;
  loadReps: number;
  n: number;
  mib: number;
  reps: number;
  cpus: number;
  deadline: Deadline;
}

export async function preview(args: BenchArgs): Promise<void> {
  const o: PreviewOptions = {
    concurrency: intArg(args, 'concurrency', 8, 1, 256),
    seconds: intArg(args, 'seconds', 5, 1, 120),
    loadReps: intArg(args, 'load-reps', 2, 1, 10),
    n: intArg(args, 'n', 200, 10, 10_000),
    mib: intArg(args, 'mib', 50, 1, 1024),
    reps: intArg(args, 'reps', 3, 1, 20),
    cpus: intArg(args, 'cpus', os.cpus().length, 1, 64),
    deadline: new Deadline(intArg(args, 'timeout', 300, 10, 3600) * 1000),
  };
  log(
    `preview: ${o.concurrency} clients × ${o.seconds} s (× ${o.loadReps * 2} runs a side), ${o.n} sequential requests, ` +
      `${o.mib} MiB × ${o.reps}; through /preview vs directly to the container, container CPU limit ${o.cpus}`,
  );
  await withStack({ agentEnv: { LOG_LEVEL: 'info', CONTAINER_CPU_LIMIT: String(o.cpus) }, debug: flagArg(args, 'debug') }, async (scope) => {
    const { b } = scope;
    await ensureTestImage('node', b.docker);
    const sessionId = (await scope.session({ image: TEST_IMAGES.node, ports: [PORT] })).id;
    fs.copyFileSync(FIXTURE, path.join(scope.workspace(sessionId), 'server.cjs'));
    const sock = await scope.socket(sessionId);
    await sock.requestOk('container_command', { command: 'node server.cjs' });
    const ready = await sock.requestOk('start_preview', { port: PORT }, 120_000);
    if (ready.type !== 'preview_ready') throw new Error(`start_preview answered ${JSON.stringify(ready)}`);
    const made = await api(b.stack, 'POST', `/api/containers/${sessionId}/ports/${PORT}`, { token: b.user.token, body: { visibility: 'public' } });
    if (made.status !== 200) throw new Error(`making port ${PORT} public failed: ${made.status} ${JSON.stringify(made.body)}`);

    const containerId = await sessionContainer(b, sessionId);
    const info = await b.docker.getContainer(containerId).inspect();
    const address = Object.values(info.NetworkSettings.Networks ?? {}).map((n) => n.IPAddress).find((a) => a);
    if (!address) throw new Error('the session container has no bridge address');
    const targets: Record<Side, Target> = {
      direct: { origin: `http://${address}:${PORT}`, headers: {} },
      preview: { origin: b.stack.baseUrl, headers: { host: `${PORT}-${sessionId}.preview.localhost:${b.stack.port}` } },
    };
    for (const side of ['direct', 'preview'] as const) await checkHello(targets[side], side);
    log(`both sides answer /hello (direct ${targets.direct.origin}, preview ${targets.preview.origin} as ${targets.preview.headers.host})`);

    const groups = edgeSplitCpuGroups(b, await containerCpuGroup(containerId));
    const load = await measureLoad(targets, groups, o);
    const latency = await measureLatency(targets, `${PRIVATE_PORT}-${sessionId}.preview.localhost:${b.stack.port}`, o);
    const big = await measureBig(targets, groups, o);
    report(o, load, latency, big);
  });
}

async function checkHello(t: Target, side: Side): Promise<void> {
  const client = new Client(t.origin, { connectTimeout: 5_000, headersTimeout: 10_000, bodyTimeout: 10_000 });
  try {
    const res = await client.request({ path: '/hello', method: 'GET', headers: t.headers });
    const text = await res.body.text();
    if (res.statusCode !== 200 || text !== HELLO_BODY) throw new Error(`${side} GET /hello answered ${res.statusCode} "${text.slice(0, 200)}"`);
  } finally {
    await client.destroy();
  }
}

/** The container's processes (the dev server among them) by their host pids, taken once the server runs. */
async function containerCpuGroup(containerId: string): Promise<CpuGroups> {
  const out = await dockerCli(['top', containerId, '-eo', 'pid']).catch(() => '');
  const pids = new Set(out.split('\n').slice(1).map(Number).filter((p) => p > 0));
  return { 'container (node server.cjs)': (p) => pids.has(p.pid) };
}

/* ---------------------------------------------------------------- (a) load */

interface LoadRun {
  rps: number;
  requests: number;
  errors: number;
  latency: Summary;
  cpu: Record<string, number>;
  wallS: number;
}

async function measureLoad(targets: Record<Side, Target>, groups: CpuGroups, o: PreviewOptions): Promise<Record<Side, LoadRun[]>> {
  const runs: Record<Side, LoadRun[]> = { direct: [], preview: [] };
  const meter = new CpuMeter(groups);
  for (let rep = 0; rep < o.loadReps; rep++) {
    for (const side of ['direct', 'preview', 'preview', 'direct'] as const) {
      o.deadline.check(`the load run (${side}, pair ${rep + 1} of ${o.loadReps})`);
      const r = await loadRun(targets[side], o.concurrency, o.seconds * 1000, meter);
      runs[side].push(r);
      log(`load ${side}: ${r.rps.toFixed(0)} req/s, p50 ${fmtMs(r.latency.p50)} ms under load, ${r.errors} error(s)`);
    }
  }
  return runs;
}

/**
 * `concurrency` clients, each sending its next request as soon as the last
 * answered, on a pool of as many keep-alive connections. Only responses that
 * complete inside the measured window count.
 */
async function loadRun(t: Target, concurrency: number, ms: number, meter: CpuMeter): Promise<LoadRun> {
  const pool = new Pool(t.origin, { connections: concurrency, pipelining: 1, connectTimeout: 5_000, headersTimeout: 10_000, bodyTimeout: 10_000, keepAliveTimeout: 30_000 });
  const start = Date.now();
  const windowStart = start + LOAD_WARMUP_MS;
  const windowEnd = windowStart + ms;
  let measuring = false;
  let requests = 0;
  let errors = 0;
  const latencies: number[] = [];
  const flip = setTimeout(() => {
    measuring = true;
    meter.start();
  }, LOAD_WARMUP_MS);
  const worker = async () => {
    while (Date.now() < windowEnd && !interrupted.signal.aborted) {
      const t0 = now();
      let ok = false;
      try {
        const res = await pool.request({ path: '/hello', method: 'GET', headers: t.headers });
        const text = await res.body.text();
        ok = res.statusCode === 200 && text === HELLO_BODY;
      } catch {
        ok = false;
      }
      const doneAt = Date.now();
      if (!measuring || doneAt > windowEnd) continue;
      if (ok) {
        requests += 1;
        latencies.push(msSince(t0));
      } else errors += 1;
    }
  };
  try {
    await withTimeout(Promise.all(Array.from({ length: concurrency }, worker)), LOAD_WARMUP_MS + ms + 30_000, 'a load run');
  } finally {
    clearTimeout(flip);
    await pool.destroy().catch(() => undefined);
  }
  const cpu = measuring ? meter.stop() : {};
  const wallS = ms / 1000;
  return { rps: requests / wallS, requests, errors, latency: summarize(latencies), cpu, wallS };
}

/* ---------------------------------------------------------------- (b) latency */

/**
 * Sequential requests. Besides the two sides, two diagnostic series split the
 * preview's path: `edgeOnly` asks for a private port of the same session
 * without a cookie (host form, `<port>-<sessionId>.preview.localhost`), which
 * the Session DO refuses with 401 itself: client → Worker → DO and back, no
 * agent hop; `workerOnly` asks for `/preview/-/hello`, which the Worker
 * refuses with 404 before any DO: client → wrangler dev → Worker and back.
 */
async function measureLatency(targets: Record<Side, Target>, edgeOnlyHost: string, o: PreviewOptions): Promise<Record<Series, Summary>> {
  const opts = { pipelining: 1, headersTimeout: 10_000, bodyTimeout: 10_000, keepAliveTimeout: 30_000 };
  const clients: Record<Series, Client> = {
    direct: new Client(targets.direct.origin, opts),
    preview: new Client(targets.preview.origin, opts),
    edgeOnly: new Client(targets.preview.origin, opts),
    workerOnly: new Client(targets.preview.origin, opts),
  };
  const send: Record<Series, () => Promise<void>> = {
    direct: () => hello(clients.direct, targets.direct),
    preview: () => hello(clients.preview, targets.preview),
    edgeOnly: async () => {
      const res = await clients.edgeOnly.request({ path: '/hello', method: 'GET', headers: { host: edgeOnlyHost } });
      await res.body.text();
      if (res.statusCode !== 401) throw new Error(`the edge-only request answered ${res.statusCode}, not 401`);
    },
    workerOnly: async () => {
      const res = await clients.workerOnly.request({ path: '/preview/-/hello', method: 'GET' });
      await res.body.text();
      if (res.statusCode !== 404) throw new Error(`the worker-only request answered ${res.statusCode}, not 404`);
    },
  };
  const order: Series[] = ['direct', 'preview', 'edgeOnly', 'workerOnly'];
  const times: Record<Series, number[]> = { direct: [], preview: [], edgeOnly: [], workerOnly: [] };
  try {
    for (let i = 0; i < WARMUP_SEQ + o.n; i++) {
      o.deadline.check(`sequential request ${i + 1}`);
      for (let k = 0; k < order.length; k++) {
        const series = order[(i + k) % order.length]!;
        const t0 = now();
        await send[series]();
        const ms = msSince(t0);
        if (i >= WARMUP_SEQ) times[series].push(ms);
      }
    }
  } finally {
    await Promise.all(Object.values(clients).map((c) => c.destroy().catch(() => undefined)));
  }
  const s = { direct: summarize(times.direct), preview: summarize(times.preview), edgeOnly: summarize(times.edgeOnly), workerOnly: summarize(times.workerOnly) };
  log(`sequential p50: direct ${fmtMs(s.direct.p50)} ms, preview ${fmtMs(s.preview.p50)} ms, Worker + DO ${fmtMs(s.edgeOnly.p50)} ms, Worker ${fmtMs(s.workerOnly.p50)} ms`);
  return s;
}

async function hello(client: Client, t: Target): Promise<void> {
  const res = await client.request({ path: '/hello', method: 'GET', headers: t.headers });
  const text = await res.body.text();
  if (res.statusCode !== 200 || text !== HELLO_BODY) throw new Error(`GET /hello (${t.origin}) answered ${res.statusCode} "${text.slice(0, 200)}"`);
}

/* ---------------------------------------------------------------- (c) big */

interface BigSeries {
  mbps: number[];
  cpu: Record<string, number>;
  wallS: number;
}

async function measureBig(targets: Record<Side, Target>, groups: CpuGroups, o: PreviewOptions): Promise<Record<Side, BigSeries>> {
  const bytes = o.mib * MiB;
  const expected = expectedBigHash(bytes);
  const meter = new CpuMeter(groups);
  const out: Record<Side, BigSeries> = { direct: { mbps: [], cpu: {}, wallS: 0 }, preview: { mbps: [], cpu: {}, wallS: 0 } };
  const clients: Record<Side, Client> = {
    direct: new Client(targets.direct.origin, { headersTimeout: 30_000, bodyTimeout: 60_000, keepAliveTimeout: 30_000 }),
    preview: new Client(targets.preview.origin, { headersTimeout: 30_000, bodyTimeout: 60_000, keepAliveTimeout: 30_000 }),
  };
  try {
    for (let rep = 0; rep < o.reps; rep++) {
      for (const side of rep % 2 === 0 ? (['direct', 'preview'] as const) : (['preview', 'direct'] as const)) {
        o.deadline.check(`the ${o.mib} MiB response (${side}, ${rep + 1} of ${o.reps})`);
        const verify = rep === 0; // each side's first run is checked byte for byte
        meter.start();
        const t0 = now();
        const got = await withTimeout(readBig(clients[side], `/big?mib=${o.mib}`, targets[side].headers, verify), Math.max(60_000, o.mib * 2_000), `the ${side} ${o.mib} MiB response`);
        const ms = msSince(t0);
        out[side].wallS += ms / 1000;
        addInto(out[side].cpu, meter.stop());
        if (got.bytes !== bytes) throw new Error(`${side} /big delivered ${got.bytes} of ${bytes} bytes`);
        if (got.sha256 !== undefined && got.sha256 !== expected) throw new Error(`${side} /big delivered different bytes (SHA-256 mismatch)`);
        out[side].mbps.push(bytes / 1e6 / (ms / 1000));
        log(`${o.mib} MiB ${side}: ${out[side].mbps.at(-1)!.toFixed(1)} MB/s (${fmtMs(ms)} ms${got.sha256 ? ', SHA-256 checked' : ''})`);
      }
    }
  } finally {
    await Promise.all(Object.values(clients).map((c) => c.destroy().catch(() => undefined)));
  }
  return out;
}

async function readBig(client: Client, reqPath: string, headers: Record<string, string>, hash: boolean): Promise<{ bytes: number; sha256?: string }> {
  const res = await client.request({ path: reqPath, method: 'GET', headers });
  if (res.statusCode !== 200) {
    const text = await res.body.text();
    throw new Error(`GET ${reqPath} answered ${res.statusCode} "${text.slice(0, 200)}"`);
  }
  const h = hash ? createHash('sha256') : undefined;
  let bytes = 0;
  for await (const chunk of res.body as AsyncIterable<Buffer>) {
    bytes += chunk.length;
    h?.update(chunk);
  }
  return { bytes, ...(h ? { sha256: h.digest('hex') } : {}) };
}

/** What the fixture's /big sends: a 64 KiB pattern block, repeated. */
function expectedBigHash(bytes: number): string {
  const block = Buffer.alloc(64 * 1024);
  for (let i = 0; i < block.length; i++) block[i] = (i * 31) & 0xff;
  const h = createHash('sha256');
  for (let sent = 0; sent < bytes; sent += block.length) h.update(sent + block.length <= bytes ? block : block.subarray(0, bytes - sent));
  return h.digest('hex');
}

/* ---------------------------------------------------------------- report */

function report(o: PreviewOptions, load: Record<Side, LoadRun[]>, lat: Record<Series, Summary>, big: Record<Side, BigSeries>): void {
  const rps = { direct: percentile(load.direct.map((r) => r.rps), 50), preview: percentile(load.preview.map((r) => r.rps), 50) };
  const loadLat = { direct: percentile(load.direct.map((r) => r.latency.p50), 50), preview: percentile(load.preview.map((r) => r.latency.p50), 50) };
  const errors = { direct: load.direct.reduce((n, r) => n + r.errors, 0), preview: load.preview.reduce((n, r) => n + r.errors, 0) };
  const loadCpu = (side: Side) => {
    const sum: Record<string, number> = {};
    for (const r of load[side]) addInto(sum, r.cpu);
    return { cpu: sum, wallS: load[side].reduce((n, r) => n + r.wallS, 0) };
  };
  const tp = { direct: percentile(big.direct.mbps, 50), preview: percentile(big.preview.mbps, 50) };
  const rpsRatio = rps.preview / rps.direct;
  const tpRatio = tp.preview / tp.direct;
  const added = lat.preview.p50 - lat.direct.p50;

  console.log('');
  console.log(`(a) /hello, ${o.concurrency} closed-loop keep-alive clients, ${o.seconds} s a run after ${LOAD_WARMUP_MS / 1000} s warm-up, ${load.direct.length} runs a side (median shown)`);
  printTable(
    ['path', 'req/s', 'runs', 'p50 ms under load', 'errors'],
    (['preview', 'direct'] as const).map((side) => [
      side === 'preview' ? 'preview (3000-<id>.preview.localhost/hello, public port)' : 'direct (container address:3000/hello)',
      rps[side].toFixed(0),
      load[side].map((r) => r.rps.toFixed(0)).join(' '),
      fmtMs(loadLat[side]),
      String(errors[side]),
    ]),
  );
  for (const side of ['preview', 'direct'] as const) {
    const c = loadCpu(side);
    console.log(`CPU during the ${side} load runs (${c.wallS.toFixed(1)} s wall): ${cpuLine(c.cpu, c.wallS)}`);
  }
  const perRequest = { preview: cpuPer(loadCpu('preview').cpu, load.preview.reduce((n, r) => n + r.requests, 0), 1e3), direct: cpuPer(loadCpu('direct').cpu, load.direct.reduce((n, r) => n + r.requests, 0), 1e3) };
  const cores = os.cpus().length;
  console.log(
    `CPU per request (ms, every process counted once): preview ${perRequest.preview.total.toFixed(2)} (${perLine(perRequest.preview.each)}), ` +
      `direct ${perRequest.direct.total.toFixed(2)}; ${cores} cores are used up at ${(cores * 1e3 / perRequest.preview.total).toFixed(0)} preview req/s, ` +
      `${(cores * 1e3 / perRequest.preview.total / rps.direct).toFixed(2)}× the direct figure measured: the most this machine allows`,
  );

  console.log('');
  console.log(`(b) sequential /hello on one keep-alive connection, ${o.n} requests a side (after ${WARMUP_SEQ} warm-up), milliseconds`);
  const latCells = (s: Summary) => [s.p50, s.p90, s.p99, s.min, s.max].map(fmtMs);
  printTable(
    ['path', 'p50', 'p90', 'p99', 'min', 'max'],
    [
      ['preview', ...latCells(lat.preview)],
      ['direct', ...latCells(lat.direct)],
      ['added by the preview path', fmtMs(added), fmtMs(lat.preview.p90 - lat.direct.p90), fmtMs(lat.preview.p99 - lat.direct.p99), '', ''],
      ['  diagnostic: Worker + Session DO (401, no agent hop)', ...latCells(lat.edgeOnly)],
      ['  diagnostic: Worker alone (404, no DO)', ...latCells(lat.workerOnly)],
    ],
  );

  console.log('');
  console.log(`(c) /big?mib=${o.mib} read to the end, ${o.reps} runs a side, MB/s (10^6 bytes/s)`);
  printTable(
    ['path', 'median', 'runs'],
    (['preview', 'direct'] as const).map((side) => [side, tp[side].toFixed(1), big[side].mbps.map((x) => x.toFixed(1)).join(' ')]),
  );
  for (const side of ['preview', 'direct'] as const) {
    console.log(`CPU during the ${side} ${o.mib} MiB runs (${big[side].wallS.toFixed(1)} s wall): ${cpuLine(big[side].cpu, big[side].wallS)}`);
  }
  const mb = (o.mib * MiB * o.reps) / 1e6;
  const perMB = { preview: cpuPer(big.preview.cpu, mb, 1e3), direct: cpuPer(big.direct.cpu, mb, 1e3) };
  console.log(
    `CPU per MB (ms): preview ${perMB.preview.total.toFixed(2)} (${perLine(perMB.preview.each)}), direct ${perMB.direct.total.toFixed(2)} (${perLine(perMB.direct.each)}); ` +
      `${cores} cores are used up at ${(cores * 1e3 / perMB.preview.total).toFixed(0)} MB/s through the preview, ` +
      `${(cores * 1e3 / perMB.preview.total / tp.direct).toFixed(2)}× the direct figure measured: the most this machine allows`,
  );

  const checks: TargetCheck[] = [
    { name: 'small response: req/s preview / direct', measured: `${rpsRatio.toFixed(2)}× (${rps.preview.toFixed(0)} vs ${rps.direct.toFixed(0)} req/s)`, target: `≥ ${TARGET.rpsRatio}×`, met: rpsRatio >= TARGET.rpsRatio },
    { name: `${o.mib} MiB response: throughput preview / direct`, measured: `${tpRatio.toFixed(2)}× (${tp.preview.toFixed(1)} vs ${tp.direct.toFixed(1)} MB/s)`, target: `≥ ${TARGET.throughputRatio}×`, met: tpRatio >= TARGET.throughputRatio },
    { name: 'sequential request: added p50 latency', measured: `${fmtMs(added)} ms (${fmtMs(lat.preview.p50)} vs ${fmtMs(lat.direct.p50)} ms)`, target: `≤ +${TARGET.addedP50Ms} ms`, met: added <= TARGET.addedP50Ms },
  ];
  printSummary(
    'preview',
    [
      `req/s (${o.concurrency} clients): preview ${rps.preview.toFixed(0)}, direct ${rps.direct.toFixed(0)}, ratio ${rpsRatio.toFixed(2)}×` +
        (errors.preview + errors.direct > 0 ? `; errors: preview ${errors.preview}, direct ${errors.direct}` : ''),
      `sequential p50: preview ${fmtMs(lat.preview.p50)} ms, direct ${fmtMs(lat.direct.p50)} ms, added ${fmtMs(added)} ms (p99 added ${fmtMs(lat.preview.p99 - lat.direct.p99)} ms); ` +
        `of the preview's p50, Worker alone ${fmtMs(lat.workerOnly.p50)} ms, Worker + Session DO ${fmtMs(lat.edgeOnly.p50)} ms`,
      `${o.mib} MiB: preview ${tp.preview.toFixed(1)} MB/s, direct ${tp.direct.toFixed(1)} MB/s, ratio ${tpRatio.toFixed(2)}×`,
    ],
    checks,
    {
      concurrency: o.concurrency,
      seconds: o.seconds,
      n: o.n,
      mib: o.mib,
      reps: o.reps,
      containerCpus: o.cpus,
      load: {
        rps: { preview: round(rps.preview, 1), direct: round(rps.direct, 1) },
        runs: { preview: load.preview.map((r) => round(r.rps, 1)), direct: load.direct.map((r) => round(r.rps, 1)) },
        p50MsUnderLoad: { preview: round(loadLat.preview), direct: round(loadLat.direct) },
        errors,
        ratio: round(rpsRatio),
        cpuMsPerRequest: { preview: round(perRequest.preview.total), direct: round(perRequest.direct.total) },
        cpuBoundRatio: round((cores * 1e3) / perRequest.preview.total / rps.direct),
        cpuSeconds: { preview: mapValues(loadCpu('preview').cpu, (v) => round(v, 2)), direct: mapValues(loadCpu('direct').cpu, (v) => round(v, 2)) },
      },
      latencyMs: { preview: roundSummary(lat.preview), direct: roundSummary(lat.direct), edgeOnly: roundSummary(lat.edgeOnly), workerOnly: roundSummary(lat.workerOnly), addedP50: round(added) },
      big: {
        mbps: { preview: round(tp.preview, 1), direct: round(tp.direct, 1) },
        runs: { preview: big.preview.mbps.map((x) => round(x, 1)), direct: big.direct.mbps.map((x) => round(x, 1)) },
        ratio: round(tpRatio),
        cpuMsPerMB: { preview: round(perMB.preview.total), direct: round(perMB.direct.total) },
        cpuBoundRatio: round((cores * 1e3) / perMB.preview.total / tp.direct),
        cpuSeconds: { preview: mapValues(big.preview.cpu, (v) => round(v, 2)), direct: mapValues(big.direct.cpu, (v) => round(v, 2)) },
      },
    },
  );
}
