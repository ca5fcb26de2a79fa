/**
 * Terminal latency and output throughput through the full path against a
 * direct `docker exec` into the same session container, in one run.
 *
 * (a) Keystroke echo round trip. Both sides run, in a PTY,
 *     `stty raw -echo; echo READY; exec cat`, so the echo comes from a process
 *     in the container as a shell's line editor would, not from the kernel.
 *       full path  client WebSocket → edge (Session DO) → agent data socket → docker exec PTY,
 *                  and the echoed byte back as `command_output`
 *       direct     the bench process's own hijacked exec connection to dockerd
 *                  (what the agent itself holds), one byte written, its echo read
 *       edge only  (diagnostic) `ping` → `pong` on the same socket: the client ⇄ DO share
 *     One byte at a time, sequentially, the three series interleaved, rounds
 *     --pace-ms apart (20: key-repeat speed; the agent batches output that follows
 *     other output within 5 ms, which typing never does); 20 untimed warm-up rounds.
 *
 * (b) Bulk output: `sh -c "head -c <bytes> /dev/zero"` (as the issue names it) and a
 *     printable-text variant (`yes <127 chars> | head -c <bytes>`), from process start
 *     until the end. The session container gets every core (--cpus), so the producer
 *     is not what limits either side.
 *       full path  `container_command`, the client acknowledging every --ack-kib
 *                  (1024, as the tests' client does), until `command_exit`; offsets are
 *                  checked, and bytes the edge skipped with a `gap` frame are counted
 *                  out of the throughput and reported
 *       direct     a dockerode exec whose multiplexed stream the bench process reads and
 *                  counts (8-byte headers parsed, payload discarded)
 *     Repeated --reps times, alternating; the median is reported, with the CPU time
 *     the edge, the agent, the client and the Docker engine spent.
 */
import os from 'node:os';
import type { Duplex, Readable } from 'node:stream';
import type Docker from 'dockerode';
import { addInto, cpuLine, CpuMeter, mapValues, stackCpuGroups } from './cpu';
import {
  Deadline,
  ECHO_SCRIPT,
  echoRoundTrip,
  flagArg,
  intArg,
  log,
  msBetween,
  msSince,
  now,
  sessionContainer,
  sleep,
  startEchoShell,
  withTimeout,
  type BenchArgs,
  type BenchStack,
  type TestSocket,
} from './lib';
import { fmtMs, percentile, printSummary, printTable, round, roundSummary, summarize, type Summary, type TargetCheck } from './report';
import { withStack } from './setup';

const WARMUP = 20;
const TARGET = { echoAddedP50Ms: 5, echoAddedP99Ms: 20, bulkRatio: 0.3, bulkMBps: 35 };
const TEXT_LINE = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456';

type Source = 'zero' | 'text';

interface TerminalOptions {
  n: number;
  paceMs: number;
  mib: number;
  reps: number;
  sources: Source[];
  ackEvery: number;
  cpus: number;
  /** How the client takes output: binary frames (the default) or command_output JSON. */
  output: 'binary' | 'text';
  deadline: Deadline;
}

export async function terminal(args: BenchArgs): Promise<void> {
  const sourceArg = args.values.get('source') ?? 'both';
  if (!['zero', 'text', 'both'].includes(sourceArg)) throw new Error(`--source must be zero, text or both, not "${sourceArg}"`);
  const outputArg = args.values.get('output') ?? 'binary';
  if (outputArg !== 'binary' && outputArg !== 'text') throw new Error(`--output must be binary or text, not "${outputArg}"`);
  const o: TerminalOptions = {
    output: outputArg,
    n: intArg(args, 'n', 200, 10, 5000),
    paceMs: intArg(args, 'pace-ms', 20, 0, 1000),
    mib: intArg(args, 'mib', 100, 1, 2048),
    reps: intArg(args, 'reps', 3, 1, 20),
    sources: sourceArg === 'both' ? ['zero', 'text'] : [sourceArg as Source],
    ackEvery: intArg(args, 'ack-kib', 1024, 1, 4096) * 1024,
    cpus: intArg(args, 'cpus', os.cpus().length, 1, 64),
    deadline: new Deadline(intArg(args, 'timeout', 600, 10, 3600) * 1000),
  };
  log(
    `terminal: ${o.n} keystrokes ${o.paceMs} ms apart, ${o.mib} MiB bulk output × ${o.reps} (${o.sources.join(', ')}), ` +
      `${o.output} output frames, container CPU limit ${o.cpus}`,
  );
  // The container may use every core, so the producer of bulk output is not what limits either side.
  await withStack({ agentEnv: { LOG_LEVEL: 'info', CONTAINER_CPU_LIMIT: String(o.cpus) }, debug: flagArg(args, 'debug') }, async (scope) => {
    const sessionId = (await scope.session()).id;
    const container = scope.b.docker.getContainer(await sessionContainer(scope.b, sessionId));
    const sock = await scope.socket(sessionId, { output: o.output });
    const echo = await measureEcho(sock, container, o);
    const bulk = await measureBulk(scope.b, sock, container, o);
    report(o, echo, bulk);
  });
}

type EchoSummaries = Record<'stack' | 'direct' | 'ping', Summary>;

async function measureEcho(sock: TestSocket, container: Docker.Container, o: TerminalOptions): Promise<EchoSummaries> {
  const pid = await startEchoShell(sock);
  let direct: Duplex | undefined;
  try {
    direct = await startDirectEcho(container);
    const times = { stack: [] as number[], direct: [] as number[], ping: [] as number[] };
    const kinds = ['stack', 'direct', 'ping'] as const;
    for (let i = 0; i < WARMUP + o.n; i++) {
      o.deadline.check(`keystroke ${i + 1}`);
      const ch = String.fromCharCode(97 + (i % 26));
      for (let k = 0; k < kinds.length; k++) {
        const kind = kinds[(i + k) % kinds.length]!;
        const ms = kind === 'stack' ? await echoRoundTrip(sock, pid, ch, 5_000) : kind === 'direct' ? await directEcho(direct, ch) : await pingRtt(sock);
        if (i >= WARMUP) times[kind].push(ms);
      }
      if (o.paceMs > 0) await sleep(o.paceMs);
    }
    return { stack: summarize(times.stack), direct: summarize(times.direct), ping: summarize(times.ping) };
  } finally {
    direct?.destroy();
    await sock.requestOk('kill', { processId: pid, signal: 'SIGKILL' }).catch(() => undefined);
  }
}

async function measureBulk(b: BenchStack, sock: TestSocket, container: Docker.Container, o: TerminalOptions): Promise<Record<Source, BulkSeries>> {
  const bytes = o.mib * 1024 * 1024;
  const series = (): BulkSeries => ({ stack: [], direct: [], gaps: 0, gapBytes: 0, flowPaused: 0, cpuStack: {}, cpuDirect: {}, wallStack: 0, wallDirect: 0 });
  const bulk: Record<Source, BulkSeries> = { zero: series(), text: series() };
  const meter = new CpuMeter(stackCpuGroups(b));
  const opTimeout = Math.max(60_000, o.mib * 2_000);
  for (const source of o.sources) {
    const command = source === 'zero' ? `head -c ${bytes} /dev/zero` : `yes ${TEXT_LINE} | head -c ${bytes}`;
    const r = bulk[source];
    for (let rep = 0; rep < o.reps; rep++) {
      for (const side of rep % 2 === 0 ? (['direct', 'stack'] as const) : (['stack', 'direct'] as const)) {
        o.deadline.check(`bulk output (${source}, ${side}, ${rep + 1} of ${o.reps})`);
        meter.start();
        const t0 = now();
        if (side === 'stack') {
          const res = await withTimeout(stackBulk(sock, command, bytes, o.ackEvery), opTimeout, 'bulk output through the stack');
          r.wallStack += msSince(t0) / 1000;
          addInto(r.cpuStack, meter.stop());
          r.stack.push(res.delivered / 1e6 / (res.ms / 1000));
          r.gaps += res.gaps;
          r.gapBytes += res.gapBytes;
          r.flowPaused += res.flowPaused;
          const lost = res.gaps ? `, ${res.gaps} gap(s) skipped ${(res.gapBytes / 1e6).toFixed(1)} MB` : '';
          log(`bulk ${source} stack: ${r.stack.at(-1)!.toFixed(1)} MB/s delivered (${fmtMs(res.ms)} ms${lost}, ${res.flowPaused} flow_paused)`);
        } else {
          const ms = await withTimeout(directBulk(container, command, bytes), opTimeout, 'bulk output through docker exec');
          r.wallDirect += msSince(t0) / 1000;
          addInto(r.cpuDirect, meter.stop());
          r.direct.push(bytes / 1e6 / (ms / 1000));
          log(`bulk ${source} direct: ${r.direct.at(-1)!.toFixed(1)} MB/s (${fmtMs(ms)} ms)`);
        }
      }
    }
  }
  return bulk;
}

function report(o: TerminalOptions, es: EchoSummaries, bulk: Record<Source, BulkSeries>): void {
  const addedP50 = es.stack.p50 - es.direct.p50;
  const addedP99 = es.stack.p99 - es.direct.p99;
  console.log('');
  console.log(`(a) keystroke echo round trip, ${o.n} keystrokes each (after ${WARMUP} warm-up), ${o.paceMs} ms between rounds, milliseconds`);
  printTable(
    ['path', 'p50', 'p90', 'p99', 'min', 'max'],
    [
      ['full path (WS → edge → agent → exec PTY)', ...echoCells(es.stack)],
      ['direct docker exec PTY (dockerode)', ...echoCells(es.direct)],
      ['added by the stack', fmtMs(addedP50), fmtMs(es.stack.p90 - es.direct.p90), fmtMs(addedP99), '', ''],
      ['  diagnostic: ping/pong client ⇄ edge DO', ...echoCells(es.ping)],
    ],
  );

  console.log('');
  console.log(
    `(b) bulk output, ${o.mib} MiB per run, ${o.reps} runs each, client acks every ${o.ackEvery / 1024} KiB; ` +
      'MB/s (10^6 bytes/s) of bytes that reached the client, process start to end',
  );
  const rows: string[][] = [];
  const bulkJson: Record<string, unknown> = {};
  const medians = (s: Source) => ({ stack: percentile(bulk[s].stack, 50), direct: percentile(bulk[s].direct, 50) });
  for (const source of o.sources) {
    const r = bulk[source];
    const name = sourceName(source);
    const med = medians(source);
    rows.push([`${name}: full path (auto-ack)`, med.stack.toFixed(1), r.stack.map((x) => x.toFixed(1)).join(' ')]);
    rows.push([`${name}: direct docker exec`, med.direct.toFixed(1), r.direct.map((x) => x.toFixed(1)).join(' ')]);
    rows.push([`${name}: ratio`, (med.stack / med.direct).toFixed(2), '']);
    bulkJson[source] = {
      stackMBps: round(med.stack, 1),
      directMBps: round(med.direct, 1),
      ratio: round(med.stack / med.direct),
      stackRuns: r.stack.map((x) => round(x, 1)),
      directRuns: r.direct.map((x) => round(x, 1)),
      gaps: r.gaps,
      gapBytes: r.gapBytes,
      flowPaused: r.flowPaused,
      cpuSecondsStack: mapValues(r.cpuStack, (v) => round(v, 2)),
      cpuSecondsDirect: mapValues(r.cpuDirect, (v) => round(v, 2)),
    };
  }
  printTable(['series', 'median', 'runs'], rows);
  for (const source of o.sources) {
    const r = bulk[source];
    if (r.gaps > 0) {
      console.log(`${sourceName(source)}: the client was sent ${r.gaps} gap frame(s) in ${o.reps} run(s): ${(r.gapBytes / 1e6).toFixed(1)} MB of output never reached it (counted out of the MB/s above)`);
    }
    console.log(`CPU while ${sourceName(source)} went through the stack (${r.wallStack.toFixed(1)} s wall): ${cpuLine(r.cpuStack, r.wallStack)}`);
    console.log(`CPU while ${sourceName(source)} went direct (${r.wallDirect.toFixed(1)} s wall): ${cpuLine(r.cpuDirect, r.wallDirect)}`);
  }

  const primary: Source = o.sources.includes('zero') ? 'zero' : 'text';
  const p = medians(primary);
  const label = sourceName(primary);
  const targets: TargetCheck[] = [
    { name: 'echo: added p50', measured: `${fmtMs(addedP50)} ms`, target: `≤ ${TARGET.echoAddedP50Ms} ms`, met: addedP50 <= TARGET.echoAddedP50Ms },
    { name: 'echo: added p99', measured: `${fmtMs(addedP99)} ms`, target: `≤ ${TARGET.echoAddedP99Ms} ms`, met: addedP99 <= TARGET.echoAddedP99Ms },
    { name: `bulk (${label}): ratio to direct`, measured: `${(p.stack / p.direct).toFixed(2)}×`, target: `≥ ${TARGET.bulkRatio}×`, met: p.stack / p.direct >= TARGET.bulkRatio },
    { name: `bulk (${label}): throughput`, measured: `${p.stack.toFixed(1)} MB/s`, target: `≥ ${TARGET.bulkMBps} MB/s`, met: p.stack >= TARGET.bulkMBps },
  ];
  printSummary(
    'terminal',
    [
      `echo p50/p99: full path ${fmtMs(es.stack.p50)}/${fmtMs(es.stack.p99)} ms, direct ${fmtMs(es.direct.p50)}/${fmtMs(es.direct.p99)} ms, ` +
        `added ${fmtMs(addedP50)}/${fmtMs(addedP99)} ms (ping to the edge alone ${fmtMs(es.ping.p50)}/${fmtMs(es.ping.p99)} ms)`,
      ...o.sources.map((s) => {
        const r = bulk[s];
        const med = medians(s);
        const lost = r.gaps ? `; ${(r.gapBytes / 1e6).toFixed(1)} MB lost to ${r.gaps} gap(s)` : '; nothing lost';
        return `bulk ${sourceName(s)}: full path ${med.stack.toFixed(1)} MB/s, direct ${med.direct.toFixed(1)} MB/s, ratio ${(med.stack / med.direct).toFixed(2)}×${lost}`;
      }),
    ],
    targets,
    {
      n: o.n,
      paceMs: o.paceMs,
      mib: o.mib,
      reps: o.reps,
      ackKiB: o.ackEvery / 1024,
      output: o.output,
      containerCpus: o.cpus,
      echoMs: { stack: roundSummary(es.stack), direct: roundSummary(es.direct), ping: roundSummary(es.ping), addedP50: round(addedP50), addedP99: round(addedP99) },
      bulk: bulkJson,
      targetsApplyTo: label,
    },
  );
}

interface BulkSeries {
  /** MB/s per run: bytes that reached the client over the run's time. */
  stack: number[];
  direct: number[];
  gaps: number;
  gapBytes: number;
  flowPaused: number;
  cpuStack: Record<string, number>;
  cpuDirect: Record<string, number>;
  wallStack: number;
  wallDirect: number;
}

function sourceName(s: Source): string {
  return s === 'zero' ? '/dev/zero' : 'text';
}

function echoCells(s: Summary): string[] {
  return [s.p50, s.p90, s.p99, s.min, s.max].map(fmtMs);
}

async function pingRtt(sock: TestSocket): Promise<number> {
  const id = `p${Math.random().toString(36).slice(2)}`;
  const pong = sock.waitForTimed((f) => f.id === id, 5_000, 'pong');
  pong.catch(() => undefined); // awaited below
  const t0 = now();
  sock.send('ping', {}, id);
  const { at } = await pong;
  return msBetween(t0, at);
}

/** A PTY exec of the echo script on the bench process's own connection to dockerd. */
async function startDirectEcho(container: Docker.Container): Promise<Duplex> {
  const exec = await container.exec({
    Cmd: ['sh', '-c', ECHO_SCRIPT],
    AttachStdin: true,
    AttachStdout: true,
    AttachStderr: true,
    Tty: true,
    Env: ['TERM=xterm-256color'],
    WorkingDir: '/workspace',
  });
  const stream = (await exec.start({ hijack: true, stdin: true, Tty: true })) as Duplex;
  await exec.resize({ w: 80, h: 24 }).catch(() => undefined);
  await withTimeout(
    new Promise<void>((resolve, reject) => {
      let seen = '';
      const onData = (d: Buffer) => {
        seen += d.toString('latin1');
        if (seen.includes('READY')) {
          stream.off('data', onData);
          resolve();
        }
      };
      stream.on('data', onData);
      stream.once('error', reject);
    }),
    15_000,
    'the direct exec to be ready',
  );
  return stream;
}

function directEcho(stream: Duplex, ch: string): Promise<number> {
  return withTimeout(
    new Promise<number>((resolve) => {
      const code = ch.charCodeAt(0);
      const onData = (d: Buffer) => {
        const at = now();
        if (!d.includes(code)) return;
        stream.off('data', onData);
        resolve(msBetween(t0, at));
      };
      stream.on('data', onData);
      const t0 = now();
      stream.write(ch);
    }),
    5_000,
    `the direct echo of "${ch}"`,
  );
}

interface StackBulkResult {
  ms: number;
  /** Bytes that reached the client (the rest were skipped by `gap` frames). */
  delivered: number;
  gaps: number;
  gapBytes: number;
  flowPaused: number;
}

/**
 * Runs the command through the stack, acknowledging every `ackEvery` bytes it
 * reads; resolves at `command_exit`. Offsets must follow on exactly, except
 * across a `gap` frame (the edge's journal dropped bytes this client had not
 * been sent yet), which is counted and reported instead.
 */
async function stackBulk(sock: TestSocket, command: string, bytes: number, ackEvery: number): Promise<StackBulkResult> {
  const streams = new Map<string, { end: number; acked: number; delivered: number; gaps: number; gapBytes: number; paused: number; problems: string[] }>();
  const state = (key: string, offset: number) => {
    let s = streams.get(key);
    if (!s) {
      s = { end: offset, acked: offset, delivered: 0, gaps: 0, gapBytes: 0, paused: 0, problems: [] };
      streams.set(key, s);
    }
    return s;
  };
  const off = sock.on((f) => {
    const key = `${String(f.payload.processId)}:${String(f.payload.stream)}`;
    if (f.type === 'gap') {
      const s = state(key, Number(f.payload.fromOffset));
      s.gaps += 1;
      s.gapBytes += Number(f.payload.toOffset) - Number(f.payload.fromOffset);
      s.end = Number(f.payload.toOffset);
      return;
    }
    if (f.type === 'flow_paused') {
      state(key, Number(f.payload.offset)).paused += 1;
      return;
    }
    if (f.type !== 'command_output') return;
    const offset = Number(f.payload.offset);
    const length = Number(f.payload.length);
    const s = state(key, offset);
    if (offset !== s.end && s.problems.length < 5) s.problems.push(`expected offset ${s.end}, got ${offset}`);
    s.end = offset + length;
    s.delivered += length;
    if (s.end - s.acked >= ackEvery) {
      sock.send('ack', { processId: f.payload.processId, stream: f.payload.stream, offset: s.end }, null);
      s.acked = s.end;
    }
  });
  try {
    const t0 = now();
    // Output may overtake the reply, so the listener above counts every process's frames.
    const reply = await sock.requestOk('container_command', { command });
    const processId = String(reply.payload.processId);
    const { frame, at } = await sock.waitForTimed((f) => f.type === 'command_exit' && f.payload.processId === processId, 3_600_000, 'command_exit');
    const ms = msBetween(t0, at);
    const out = streams.get(`${processId}:stdout`);
    if (frame.payload.exitCode !== 0) throw new Error(`the bulk command exited with ${JSON.stringify(frame.payload)}`);
    if (!out || out.end !== bytes || out.problems.length > 0) {
      throw new Error(`the stack ended stdout at ${out?.end ?? 0} of ${bytes} bytes; ${out?.problems.join('; ') || 'no offset problems'}`);
    }
    return { ms, delivered: out.delivered, gaps: out.gaps, gapBytes: out.gapBytes, flowPaused: out.paused };
  } finally {
    off();
  }
}

/** Runs the command with a plain exec and counts the payload of Docker's multiplexed stream. */
async function directBulk(container: Docker.Container, command: string, bytes: number): Promise<number> {
  const t0 = now();
  const exec = await container.exec({ Cmd: ['sh', '-c', command], AttachStdout: true, AttachStderr: true, WorkingDir: '/workspace' });
  const stream = (await exec.start({ hijack: true, stdin: false })) as Readable;
  let stdout = 0;
  let need = 0; // payload bytes left in the current frame
  let kind = 0;
  let header = Buffer.alloc(0);
  await new Promise<void>((resolve, reject) => {
    stream.on('data', (chunk: Buffer) => {
      let i = 0;
      while (i < chunk.length) {
        if (need === 0) {
          const take = Math.min(8 - header.length, chunk.length - i);
          header = Buffer.concat([header, chunk.subarray(i, i + take)]);
          i += take;
          if (header.length === 8) {
            kind = header[0]!;
            need = header.readUInt32BE(4);
            header = Buffer.alloc(0);
          }
        } else {
          const take = Math.min(need, chunk.length - i);
          if (kind === 1) stdout += take;
          need -= take;
          i += take;
        }
      }
    });
    stream.once('end', () => resolve());
    stream.once('close', () => resolve());
    stream.once('error', reject);
  });
  const ms = msSince(t0);
  if (stdout !== bytes) throw new Error(`docker exec delivered ${stdout} of ${bytes} bytes`);
  return ms;
}
