/**
 * Files: writing and reading a 1 MiB and a 50 MiB file through the REST API
 * against `docker cp` into and out of the same session container, in one run.
 *
 *   api        write  PUT  /api/containers/:id/files/bench/api-<size>.bin, raw body
 *                     (application/octet-stream) streamed from a host file, until the reply
 *              read   GET  of the same path (Accept-Encoding: identity), streamed into a
 *                     host file, until the last byte is on disk
 *                     (client → edge (workerd) → Session DO → tunnel → agent → workspace)
 *   docker cp  write  `docker cp <host file> <container>:/workspace/bench/cp-<size>.bin`
 *              read   `docker cp <container>:/workspace/bench/cp-<size>.bin <host file>`
 *                     (the CLI's own start-up, about 50-100 ms here, is part of its time:
 *                     the issue names `docker cp` as the baseline)
 *
 * Each round does the API's write and read and docker cp's write and read,
 * the side that goes first alternating every round. One untimed warm-up round
 * per size first, which also checks every copy byte for byte (SHA-256 of the
 * source, of the file in the workspace, and of what came back), so the
 * benchmark cannot time a broken transfer; later rounds check sizes.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { addInto, cpuLine, CpuMeter, edgeSplitCpuGroups, mapValues } from './cpu';
import { Deadline, dockerCli, flagArg, intArg, log, msBetween, msSince, now, sessionContainer, withTimeout, type BenchArgs, type BenchStack } from './lib';
import { fmtMs, printSummary, printTable, round, roundSummary, summarize, type Summary, type TargetCheck } from './report';
import { withStack } from './setup';

const MiB = 1024 * 1024;
const TARGET = { smallTimeRatio: 1.5, largeThroughputRatio: 0.7 };

type Side = 'api' | 'cp';
type Op = 'write' | 'read';

interface SizeSpec {
  label: string;
  bytes: number;
  rounds: number;
}

interface Ctx {
  b: BenchStack;
  sessionId: string;
  containerId: string;
  /** The session's workspace folder on the host (what the container sees as /workspace). */
  workspace: string;
  tmp: string;
  /** Keep-alive, as a browser or IDE holds its connection to the edge. */
  http: http.Agent;
  opTimeoutMs: (bytes: number) => number;
}

type Times = Record<Side, Record<Op, number[]>>;

interface SizeResult {
  spec: SizeSpec;
  times: Times;
  parts: Record<Op, number[]>;
  cpu: Record<Side, Record<string, number>>;
  wallS: Record<Side, number>;
}

export async function files(args: BenchArgs): Promise<void> {
  const sizes: SizeSpec[] = [
    { label: '1 MiB', bytes: 1 * MiB, rounds: intArg(args, 'n-small', 20, 1, 500) },
    { label: '50 MiB', bytes: 50 * MiB, rounds: intArg(args, 'n-large', 5, 1, 50) },
  ];
  const deadline = new Deadline(intArg(args, 'timeout', 600, 10, 3600) * 1000);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mominai-bench-files-'));
  const httpAgent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  log(`files: ${sizes.map((s) => `${s.label} × ${s.rounds}`).join(', ')}; API vs docker cp, write then read, interleaved`);
  try {
    await withStack({ agentEnv: { LOG_LEVEL: 'info' }, debug: flagArg(args, 'debug') }, async (scope) => {
      const { b } = scope;
      const sessionId = (await scope.session()).id;
      const ctx: Ctx = {
        b,
        sessionId,
        containerId: await sessionContainer(b, sessionId),
        workspace: scope.workspace(sessionId),
        tmp,
        http: httpAgent,
        // A generous bound per transfer: 60 s, or 1 s per MiB on a loaded machine.
        opTimeoutMs: (bytes) => Math.max(60_000, (bytes / MiB) * 1_000),
      };
      if (!fs.existsSync(ctx.workspace)) throw new Error(`the session's workspace is not at ${ctx.workspace}`);
      const putDir = await fetchRaw(ctx, 'PUT', 'bench/.keep?parents=1', { body: Buffer.alloc(0) });
      if (putDir.status !== 200) throw new Error(`creating bench/ in the workspace failed: HTTP ${putDir.status}`);

      const results: SizeResult[] = [];
      for (const spec of sizes) results.push(await measureSize(ctx, spec, deadline));
      report(results);
    });
  } finally {
    httpAgent.destroy();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

async function measureSize(ctx: Ctx, spec: SizeSpec, deadline: Deadline): Promise<SizeResult> {
  const tag = `${spec.bytes / MiB}m`;
  const source = path.join(ctx.tmp, `source-${tag}.bin`);
  writeRandomFile(source, spec.bytes);
  const sourceHash = await sha256File(source);
  const files: Record<Side, { remote: string; back: string }> = {
    api: { remote: `bench/api-${tag}.bin`, back: path.join(ctx.tmp, `back-api-${tag}.bin`) },
    cp: { remote: `bench/cp-${tag}.bin`, back: path.join(ctx.tmp, `back-cp-${tag}.bin`) },
  };

  // Warm-up: every copy is checked byte for byte.
  deadline.check(`the ${spec.label} warm-up`);
  for (const side of ['api', 'cp'] as const) {
    await timeOp(ctx, side, 'write', source, files[side].remote, spec.bytes);
    const inWorkspace = path.join(ctx.workspace, files[side].remote);
    if ((await sha256File(inWorkspace)) !== sourceHash) throw new Error(`${side} write of ${spec.label}: the file in the workspace differs from the source`);
    await timeOp(ctx, side, 'read', files[side].back, files[side].remote, spec.bytes);
    if ((await sha256File(files[side].back)) !== sourceHash) throw new Error(`${side} read of ${spec.label}: the file that came back differs from the source`);
    fs.rmSync(files[side].back);
  }
  log(`${spec.label}: warm-up done, API and docker cp copies verified (SHA-256 ${sourceHash.slice(0, 12)}…)`);

  const times: Times = { api: { write: [], read: [] }, cp: { write: [], read: [] } };
  /** API only: when the client had sent the whole body (write), when the response head came (read). */
  const parts: Record<Op, number[]> = { write: [], read: [] };
  const meter = new CpuMeter(edgeSplitCpuGroups(ctx.b));
  const cpu: Record<Side, Record<string, number>> = { api: {}, cp: {} };
  const wallS: Record<Side, number> = { api: 0, cp: 0 };
  for (let i = 0; i < spec.rounds; i++) {
    for (const side of i % 2 === 0 ? (['api', 'cp'] as const) : (['cp', 'api'] as const)) {
      deadline.check(`${spec.label} round ${i + 1} of ${spec.rounds} (${side})`);
      meter.start();
      const t0 = now();
      const w = await timeOp(ctx, side, 'write', source, files[side].remote, spec.bytes);
      const r = await timeOp(ctx, side, 'read', files[side].back, files[side].remote, spec.bytes);
      times[side].write.push(w.ms);
      times[side].read.push(r.ms);
      if (side === 'api') {
        parts.write.push(w.partMs);
        parts.read.push(r.partMs);
      }
      wallS[side] += msSince(t0) / 1000;
      addInto(cpu[side], meter.stop());
      fs.rmSync(files[side].back);
    }
    const last = (s: Side, o: Op) => fmtMs(times[s][o].at(-1)!);
    log(`${spec.label} round ${i + 1}/${spec.rounds}: api write ${last('api', 'write')} read ${last('api', 'read')} ms; docker cp write ${last('cp', 'write')} read ${last('cp', 'read')} ms`);
  }
  fs.rmSync(source);
  for (const side of ['api', 'cp'] as const) fs.rmSync(path.join(ctx.workspace, files[side].remote), { force: true });
  return { spec, times, parts, cpu, wallS };
}

/**
 * One timed transfer. For a write `local` is the source; for a read it is
 * where the bytes land. Resolves once the transfer is complete and its size
 * checked (the check is outside the time) with the milliseconds it took and,
 * for the API, when the client finished sending the body (write) or got the
 * response head (read).
 */
async function timeOp(ctx: Ctx, side: Side, op: Op, local: string, remote: string, bytes: number): Promise<{ ms: number; partMs: number }> {
  const what = `${side === 'api' ? 'API' : 'docker cp'} ${op} of ${bytes} bytes`;
  const t0 = now();
  let partAt = t0;
  if (side === 'api') {
    const mark = () => (partAt = now());
    await withTimeout(op === 'write' ? apiWrite(ctx, local, remote, bytes, mark) : apiRead(ctx, local, remote, mark), ctx.opTimeoutMs(bytes), what);
  } else {
    const inContainer = `${ctx.containerId}:/workspace/${remote}`;
    await dockerCli(['cp', ...(op === 'write' ? [local, inContainer] : [inContainer, local])], ctx.opTimeoutMs(bytes));
  }
  const ms = msSince(t0);
  const landed = op === 'write' ? path.join(ctx.workspace, remote) : local;
  const size = fs.statSync(landed).size;
  if (size !== bytes) throw new Error(`${what}: ${landed} has ${size} bytes`);
  return { ms, partMs: msBetween(t0, partAt) };
}

function filesPath(ctx: Ctx, remote: string): string {
  return `/api/containers/${ctx.sessionId}/files/${remote}`;
}

function headers(ctx: Ctx): Record<string, string> {
  return { Authorization: `Bearer ${ctx.b.user.token}`, 'Accept-Encoding': 'identity' };
}

/** A small request whose body is a buffer; resolves with the status. */
function fetchRaw(ctx: Ctx, method: string, remote: string, opts: { body?: Buffer } = {}): Promise<{ status: number }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port: ctx.b.stack.port, method, path: filesPath(ctx, remote), agent: ctx.http, headers: { ...headers(ctx), 'Content-Type': 'application/octet-stream' } },
      (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0 }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** PUT with the body streamed from a host file; `sent` runs once the last body byte is handed to the socket. */
function apiWrite(ctx: Ctx, local: string, remote: string, bytes: number, sent: () => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port: ctx.b.stack.port,
        method: 'PUT',
        path: filesPath(ctx, remote),
        agent: ctx.http,
        headers: { ...headers(ctx), 'Content-Type': 'application/octet-stream', 'Content-Length': String(bytes) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          if (res.statusCode === 200) resolve();
          else reject(new Error(`PUT ${remote}: HTTP ${res.statusCode} ${Buffer.concat(chunks).toString('utf8').slice(0, 300)}`));
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.once('finish', sent);
    pipeline(fs.createReadStream(local, { highWaterMark: 1 * MiB }), req).catch(reject);
  });
}

/** GET with the body streamed into a host file; `head` runs when the response head arrives. */
function apiRead(ctx: Ctx, local: string, remote: string, head: () => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: ctx.b.stack.port, method: 'GET', path: filesPath(ctx, remote), agent: ctx.http, headers: headers(ctx) }, (res) => {
      head();
      if (res.statusCode !== 200) {
        res.resume();
        reject(new Error(`GET ${remote}: HTTP ${res.statusCode}`));
        return;
      }
      pipeline(res, fs.createWriteStream(local)).then(resolve, reject);
    });
    req.on('error', reject);
    req.end();
  });
}

function writeRandomFile(file: string, bytes: number): void {
  const fd = fs.openSync(file, 'w');
  try {
    for (let written = 0; written < bytes; written += MiB) fs.writeSync(fd, randomBytes(Math.min(MiB, bytes - written)));
  } finally {
    fs.closeSync(fd);
  }
}

async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(fs.createReadStream(file), hash);
  return hash.digest('hex');
}

/* ---------------------------------------------------------------- report */

const mbps = (bytes: number, ms: number) => bytes / 1e6 / (ms / 1000);

function report(results: readonly SizeResult[]): void {
  const targets: TargetCheck[] = [];
  const lines: string[] = [];
  const json: Record<string, unknown> = {};
  for (const r of results) {
    const { spec } = r;
    const s = {
      api: { write: summarize(r.times.api.write), read: summarize(r.times.api.read) },
      cp: { write: summarize(r.times.cp.write), read: summarize(r.times.cp.read) },
    };
    const both = (side: Side) => summarize(r.times[side].write.map((w, i) => w + r.times[side].read[i]!));
    const rt = { api: both('api'), cp: both('cp') };
    const large = spec.bytes >= 10 * MiB;
    console.log('');
    console.log(`${spec.label}, ${spec.rounds} rounds, milliseconds${large ? ' (MB/s = 10^6 bytes/s at the p50 time)' : ''}`);
    const row = (name: string, x: Summary): string[] => [name, fmtMs(x.p50), fmtMs(x.p90), fmtMs(x.min), fmtMs(x.max), ...(large ? [mbps(spec.bytes, x.p50).toFixed(1)] : [])];
    printTable(
      ['series', 'p50', 'p90', 'min', 'max', ...(large ? ['MB/s'] : [])],
      [
        row('api write (PUT, raw body)', s.api.write),
        row('  of which: until the body was sent', summarize(r.parts.write)),
        row('docker cp in', s.cp.write),
        row('api read (GET)', s.api.read),
        row('  of which: until the response head', summarize(r.parts.read)),
        row('docker cp out', s.cp.read),
        row('api write + read', rt.api),
        row('docker cp in + out', rt.cp),
      ],
    );
    console.log(`CPU while the API transferred (${r.wallS.api.toFixed(1)} s wall): ${cpuLine(r.cpu.api, r.wallS.api)}`);
    console.log(`CPU while docker cp transferred (${r.wallS.cp.toFixed(1)} s wall): ${cpuLine(r.cpu.cp, r.wallS.cp)}`);

    const key = `${spec.bytes / MiB}MiB`;
    const ratio = { write: s.api.write.p50 / s.cp.write.p50, read: s.api.read.p50 / s.cp.read.p50, both: rt.api.p50 / rt.cp.p50 };
    if (!large) {
      for (const op of ['write', 'read'] as const) {
        targets.push({
          name: `${spec.label} ${op}: p50 time api / docker cp`,
          measured: `${ratio[op].toFixed(2)}× (${fmtMs(s.api[op].p50)} vs ${fmtMs(s.cp[op].p50)} ms)`,
          target: `≤ ${TARGET.smallTimeRatio}×`,
          met: ratio[op] <= TARGET.smallTimeRatio,
        });
      }
      lines.push(
        `${spec.label}: write ${fmtMs(s.api.write.p50)} vs ${fmtMs(s.cp.write.p50)} ms (${ratio.write.toFixed(2)}×), ` +
          `read ${fmtMs(s.api.read.p50)} vs ${fmtMs(s.cp.read.p50)} ms (${ratio.read.toFixed(2)}×), ` +
          `write+read ${fmtMs(rt.api.p50)} vs ${fmtMs(rt.cp.p50)} ms (${ratio.both.toFixed(2)}×), api vs docker cp p50`,
      );
    } else {
      const tp = {
        write: { api: mbps(spec.bytes, s.api.write.p50), cp: mbps(spec.bytes, s.cp.write.p50) },
        read: { api: mbps(spec.bytes, s.api.read.p50), cp: mbps(spec.bytes, s.cp.read.p50) },
      };
      for (const op of ['write', 'read'] as const) {
        const t = tp[op].api / tp[op].cp;
        targets.push({
          name: `${spec.label} ${op}: throughput api / docker cp`,
          measured: `${t.toFixed(2)}× (${tp[op].api.toFixed(1)} vs ${tp[op].cp.toFixed(1)} MB/s)`,
          target: `≥ ${TARGET.largeThroughputRatio}×`,
          met: t >= TARGET.largeThroughputRatio,
        });
      }
      lines.push(
        `${spec.label}: write ${tp.write.api.toFixed(1)} vs ${tp.write.cp.toFixed(1)} MB/s (${(tp.write.api / tp.write.cp).toFixed(2)}×), ` +
          `read ${tp.read.api.toFixed(1)} vs ${tp.read.cp.toFixed(1)} MB/s (${(tp.read.api / tp.read.cp).toFixed(2)}×), api vs docker cp at p50`,
      );
      json[`${key}MBps`] = {
        write: { api: round(tp.write.api, 1), dockerCp: round(tp.write.cp, 1) },
        read: { api: round(tp.read.api, 1), dockerCp: round(tp.read.cp, 1) },
      };
    }
    json[key] = {
      rounds: spec.rounds,
      unit: 'ms',
      api: {
        write: roundSummary(s.api.write),
        read: roundSummary(s.api.read),
        writeRead: roundSummary(rt.api),
        writeBodySent: roundSummary(summarize(r.parts.write)),
        readHead: roundSummary(summarize(r.parts.read)),
      },
      dockerCp: { write: roundSummary(s.cp.write), read: roundSummary(s.cp.read), writeRead: roundSummary(rt.cp) },
      ratioP50: { write: round(ratio.write), read: round(ratio.read), writeRead: round(ratio.both) },
      cpuSeconds: { api: mapValues(r.cpu.api, (v) => round(v, 2)), dockerCp: mapValues(r.cpu.cp, (v) => round(v, 2)) },
    };
  }
  printSummary('files', lines, targets, json);
}

