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
import { rssBytes, workerdPids } from '../test/helpers/memory';
import { BenchSocket, createSession, deleteSession, intArg, log, printSummary, startStack, stopStack, type BenchArgs, type BenchStack } from './lib';

const MiB = 1024 * 1024;

function edgeRss(b: BenchStack): number {
  const pid = b.stack.edge?.child.pid;
  if (!pid) return 0;
  return workerdPids(pid).reduce((n, p) => n + rssBytes(p), 0);
}

export async function soak(args: BenchArgs): Promise<void> {
  const sessions = intArg(args, 'sessions', 10, 1, 50);
  const seconds = intArg(args, 'seconds', 480, 5, 7200);
  const rateKiB = intArg(args, 'rate-kib', 40, 1, 10_240);
  let b: BenchStack | undefined;
  const sockets: BenchSocket[] = [];
  try {
    b = await startStack({ edgeVars: { MAX_SESSIONS_PER_USER: String(sessions + 1) }, agentEnv: { MAX_SESSIONS: String(sessions + 1) } });
    const ids: string[] = [];
    for (let i = 0; i < sessions; i++) ids.push((await createSession(b)).id);
    for (const id of ids) sockets.push(await BenchSocket.open(b, id));
    const baseline = edgeRss(b);
    log(`${sessions} sessions idle: edge ${(baseline / MiB).toFixed(1)} MiB`);

    // Each line is 1 KiB (1023 characters and a newline); RATE lines a second, paced by sleep in the container.
    const line = 'x'.repeat(1023);
    const script = `i=0; end=$(( $(date +%s) + ${seconds} )); while [ $(date +%s) -lt $end ]; do j=0; while [ $j -lt ${rateKiB} ]; do echo ${line}; j=$((j+1)); done; sleep 1; done`;
    const received = sockets.map(() => ({ next: 0, bad: 0, acked: 0 }));
    const exits: Array<Promise<unknown>> = [];
    sockets.forEach((sock, k) => {
      sock.on((f) => {
        if (f.type !== 'command_output') return;
        const r = received[k]!;
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
      const started = await sock.request('container_command', { command: script });
      const pid = started.payload.processId;
      exits.push(sock.waitFor((f) => f.type === 'command_exit' && f.payload.processId === pid, (seconds + 120) * 1000, 'the exit'));
    }
    const samples: number[] = [];
    const t0 = Date.now();
    while (Date.now() - t0 < seconds * 1000) {
      await new Promise((r) => setTimeout(r, Math.min(5000, seconds * 100)));
      samples.push(edgeRss(b));
      log(`t=${Math.round((Date.now() - t0) / 1000)} s edge ${(samples.at(-1)! / MiB).toFixed(1)} MiB`);
    }
    await Promise.all(exits);
    const last = samples.slice(Math.floor((samples.length * 2) / 3)).sort((x, y) => x - y);
    const steady = last[Math.floor(last.length / 2)] ?? baseline;
    const perSession = (steady - baseline) / sessions;
    const disorder = received.reduce((n, r) => n + r.bad, 0);
    printSummary(
      'soak',
      [
        `${sessions} sessions × ${seconds} s at ${rateKiB} KiB/s, clients acking every 256 KiB`,
        `edge: ${(baseline / MiB).toFixed(1)} MiB idle, ${(steady / MiB).toFixed(1)} MiB steady, peak ${(Math.max(...samples) / MiB).toFixed(1)} MiB`,
        `edge memory per busy session: ${(perSession / MiB).toFixed(2)} MiB`,
        `bytes per session: ${received.map((r) => r.next).join(', ')} (out of order: ${disorder})`,
      ],
      [
        { name: 'edge memory per busy session', measured: `${(perSession / MiB).toFixed(2)} MiB`, target: '≤ 4 MiB', met: perSession <= 4 * MiB },
        // Every client got command_exit (awaited above), which comes only after all of the output: nothing was lost.
        { name: 'frames out of order or with a hole', measured: String(disorder), target: '0', met: disorder === 0 },
      ],
      { sessions, seconds, rateKiB, baseline, steady, perSession, samples, received: received.map((r) => r.next), disorder },
    );
    for (const id of ids) await deleteSession(b, id).catch(() => undefined);
  } finally {
    for (const s of sockets) s.close();
    await stopStack(b);
  }
}
