/**
 * `npm run bench -- soak [--sessions 10] [--seconds 480] [--rate-kib 40]`:
 * N sessions each printing RATE KiB/s for S seconds to a client that
 * acknowledges as it reads, and the edge's memory (every workerd of the
 * edge's process group) before, during and after. Prints the steady-state
 * growth per busy session (median of the last third of the samples, minus
 * the baseline with the sessions idle) and checks that every byte arrived in
 * order (each client gets its process's exit only after all of its output).
 * The goal for a busy session is at most 4 MiB. The figure is workerd's RSS,
 * so it includes SQLite's page cache of the journals in storage, which on
 * Cloudflare is not part of an isolate's memory.
 */
import fs from 'node:fs';
import WebSocket from 'ws';
import { rssBytes, workerdPids } from '../test/helpers/memory';
import { freePort } from '../test/helpers/stack';
import { intArg, log, type BenchArgs, type BenchStack, type TestSocket } from './lib';
import { printSummary } from './report';
import { withStack } from './setup';

const MiB = 1024 * 1024;

function edgeRss(b: BenchStack): number {
  const pid = b.stack.edge?.child.pid;
  if (!pid) return 0;
  return workerdPids(pid).reduce((n, p) => n + rssBytes(p), 0);
}

/** The edge's resident memory split as /proc reports it: anonymous (heap, V8), file-backed (mapped files), shared. */
function edgeRssParts(b: BenchStack): { anon: number; file: number; shmem: number } {
  const parts = { anon: 0, file: 0, shmem: 0 };
  const pid = b.stack.edge?.child.pid;
  if (!pid) return parts;
  for (const p of workerdPids(pid)) {
    const status = fs.readFileSync(`/proc/${p}/status`, 'utf8');
    const kb = (name: string) => Number(new RegExp(`${name}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0) * 1024;
    parts.anon += kb('RssAnon');
    parts.file += kb('RssFile');
    parts.shmem += kb('RssShmem');
  }
  return parts;
}

const fmtParts = (p: { anon: number; file: number; shmem: number }) =>
  `anon ${(p.anon / MiB).toFixed(1)}, file ${(p.file / MiB).toFixed(1)}, shmem ${(p.shmem / MiB).toFixed(1)} MiB`;

interface HeapUsage {
  usedSize: number;
  totalSize: number;
  /** Bytes of ArrayBuffer contents (outside the JS heap): journal tails, frames, and garbage not yet collected. */
  backingStorageSize?: number;
}

/**
 * With --inspect: the Worker's V8 heap through workerd's inspector (DevTools
 * protocol). `sample()` reads the heap, forces a full GC and reads it again,
 * so the isolate's memory splits into what is live and what was only garbage
 * waiting for a collection (V8 collects ArrayBuffer contents only when their
 * total has grown by tens of MiB, for the whole isolate, not per session).
 */
async function heapInspector(port: number): Promise<{ sample(): Promise<{ before: HeapUsage; after: HeapUsage }>; close(): void }> {
  const targets = (await (await fetch(`http://127.0.0.1:${port}/json`)).json()) as Array<{ id: string; webSocketDebuggerUrl: string }>;
  const target = targets.find((t) => t.id.startsWith('core:user:'));
  if (!target) throw new Error(`no Worker target among ${targets.map((t) => t.id).join(', ')}`);
  const ws = new WebSocket(target.webSocketDebuggerUrl);
  await new Promise((resolve, reject) => (ws.once('open', resolve), ws.once('error', reject)));
  let id = 0;
  const cdp = <T>(method: string) =>
    new Promise<T>((resolve) => {
      const my = ++id;
      const onMsg = (data: Buffer) => {
        const m = JSON.parse(data.toString()) as { id?: number; result?: T };
        if (m.id === my) (ws.off('message', onMsg), resolve(m.result!));
      };
      ws.on('message', onMsg);
      ws.send(JSON.stringify({ id: my, method }));
    });
  return {
    async sample() {
      const before = await cdp<HeapUsage>('Runtime.getHeapUsage');
      await cdp('HeapProfiler.collectGarbage');
      return { before, after: await cdp<HeapUsage>('Runtime.getHeapUsage') };
    },
    close: () => ws.close(),
  };
}

const isolateBytes = (h: HeapUsage) => h.usedSize + (h.backingStorageSize ?? 0);

export async function soak(args: BenchArgs): Promise<void> {
  const sessions = intArg(args, 'sessions', 10, 1, 50);
  const seconds = intArg(args, 'seconds', 480, 5, 7200);
  const rateKiB = intArg(args, 'rate-kib', 40, 1, 10_240);
  const inspectPort = args.values.get('inspect') === 'true' ? await freePort() : undefined;
  // spawnEdge hands it to the Miniflare runner (scripts/lib/stack.ts).
  if (inspectPort) process.env.EDGE_INSPECTOR_PORT = String(inspectPort);
  await withStack({ edgeVars: { MAX_SESSIONS_PER_USER: String(sessions + 1) }, agentEnv: { MAX_SESSIONS: String(sessions + 1) } }, async (scope) => {
    const { b } = scope;
    const ids: string[] = [];
    for (let i = 0; i < sessions; i++) ids.push((await scope.session()).id);
    const sockets: TestSocket[] = [];
    for (const id of ids) sockets.push(await scope.socket(id));
    const baseline = edgeRss(b);
    const baseParts = edgeRssParts(b);
    log(`${sessions} sessions idle: edge ${(baseline / MiB).toFixed(1)} MiB (${fmtParts(baseParts)})`);

    // Each line is 1 KiB (1023 characters and a newline); RATE lines a second, paced by sleep in the container.
    const line = 'x'.repeat(1023);
    const script = `i=0; end=$(( $(date +%s) + ${seconds} )); while [ $(date +%s) -lt $end ]; do j=0; while [ $j -lt ${rateKiB} ]; do echo ${line}; j=$((j+1)); done; sleep 1; done`;
    const received = sockets.map(() => ({ next: 0, bad: 0, acked: 0, gaps: 0 }));
    const exits: Array<Promise<unknown>> = [];
    sockets.forEach((sock, k) => {
      sock.on((f) => {
        const r = received[k]!;
        // A gap is a client that stalled past CLIENT_STALL_MS (a loaded machine): counted apart from disorder.
        if (f.type === 'gap') r.gaps += 1;
        if (f.type !== 'command_output') return;
        const offset = Number(f.payload.offset);
        if (offset !== r.next) r.bad += 1;
        r.next = offset + Number(f.payload.length);
        if (r.next - r.acked >= 256 * 1024) {
          sock.send('ack', { processId: f.payload.processId, stream: f.payload.stream, offset: r.next }, null);
          r.acked = r.next;
        }
      });
    });
    for (const sock of sockets) {
      const started = await sock.requestOk('container_command', { command: script });
      const pid = started.payload.processId;
      exits.push(sock.waitFor((f) => f.type === 'command_exit' && f.payload.processId === pid, (seconds + 120) * 1000, 'the exit'));
    }
    const samples: number[] = [];
    const heap: Array<{ before: HeapUsage; after: HeapUsage }> = [];
    const inspector = inspectPort ? await heapInspector(inspectPort) : undefined;
    const idleHeap = inspector ? await inspector.sample() : undefined;
    const partSamples: Array<ReturnType<typeof edgeRssParts>> = [];
    const t0 = Date.now();
    while (Date.now() - t0 < seconds * 1000) {
      await new Promise((r) => setTimeout(r, Math.min(5000, seconds * 100)));
      samples.push(edgeRss(b));
      partSamples.push(edgeRssParts(b));
      // The heap only in the last third: a forced GC lowers the RSS that follows.
      if (inspector && Date.now() - t0 >= (seconds * 1000 * 2) / 3) heap.push(await inspector.sample());
      log(`t=${Math.round((Date.now() - t0) / 1000)} s edge ${(samples.at(-1)! / MiB).toFixed(1)} MiB (${fmtParts(partSamples.at(-1)!)})`);
    }
    await Promise.all(exits);
    inspector?.close();
    let gc: string | undefined;
    if (idleHeap && heap.length > 0) {
      const med = (xs: number[]) => xs.sort((x, y) => x - y)[Math.floor(xs.length / 2)] ?? 0;
      const live = (med(heap.map((h) => isolateBytes(h.after))) - isolateBytes(idleHeap.after)) / sessions;
      const garbage = med(heap.map((h) => isolateBytes(h.before) - isolateBytes(h.after)));
      gc = `isolate (--inspect, ${heap.length} forced GCs while busy): live ${(live / MiB).toFixed(2)} MiB per busy session (JS heap + ArrayBuffer contents after a full GC, minus idle); garbage found by each GC: median ${(garbage / MiB).toFixed(1)} MiB for the whole isolate`;
      log(gc);
    }
    const last = samples.slice(Math.floor((samples.length * 2) / 3)).sort((x, y) => x - y);
    const steady = last[Math.floor(last.length / 2)] ?? baseline;
    const perSession = (steady - baseline) / sessions;
    // The same median over the last third, per part, so the growth can be told apart (heap vs mapped files).
    const lastParts = partSamples.slice(Math.floor((partSamples.length * 2) / 3));
    const median = (xs: number[]) => xs.sort((x, y) => x - y)[Math.floor(xs.length / 2)] ?? 0;
    const steadyParts = { anon: median(lastParts.map((p) => p.anon)), file: median(lastParts.map((p) => p.file)), shmem: median(lastParts.map((p) => p.shmem)) };
    const perPart = (k: 'anon' | 'file' | 'shmem') => ((steadyParts[k] - baseParts[k]) / sessions / MiB).toFixed(2);
    const disorder = received.reduce((n, r) => n + r.bad, 0);
    printSummary(
      'soak',
      [
        `${sessions} sessions × ${seconds} s at ${rateKiB} KiB/s, clients acking every 256 KiB`,
        `edge: ${(baseline / MiB).toFixed(1)} MiB idle, ${(steady / MiB).toFixed(1)} MiB steady, peak ${(Math.max(...samples) / MiB).toFixed(1)} MiB`,
        `edge memory per busy session: ${(perSession / MiB).toFixed(2)} MiB (anonymous ${perPart('anon')}, file-backed ${perPart('file')}, shared ${perPart('shmem')})`,
        ...(gc ? [gc] : []),
        `bytes per session: ${received.map((r) => r.next).join(', ')} (out of order: ${disorder}, gap frames: ${received.reduce((n, r) => n + r.gaps, 0)})`,
      ],
      [
        { name: 'edge memory per busy session', measured: `${(perSession / MiB).toFixed(2)} MiB`, target: '≤ 4 MiB', met: perSession <= 4 * MiB },
        // Every client got command_exit (awaited above), which comes only after all of the output: nothing was lost.
        { name: 'frames out of order or with a hole', measured: String(disorder), target: '0', met: disorder === 0 },
      ],
      { sessions, seconds, rateKiB, baseline, steady, perSession, baseParts, steadyParts, idleHeap, heap, samples, received: received.map((r) => r.next), disorder },
    );
  });
}
