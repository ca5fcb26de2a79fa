/**
 * `npm run bench -- scale [--sessions 50] [--rate-kib 40] [--seconds 40] [--n 150] [--idle-seconds 60] [--image busybox|node]`:
 * many sessions on one agent, each with a terminal (a PTY) printing RATE
 * KiB/s to a client that acknowledges as it reads (Coder's scale-test load
 * per connection), and what that costs:
 *
 *   echo     keystroke echo round trip in one session's PTY (`stty raw -echo;
 *            exec cat`, client → edge → agent → container and back), first
 *            with every session idle (the baseline, same run), then under load
 *   memory   the agent's RSS with no session, with N idle sessions, under load:
 *            per idle and per busy session
 *   CPU      the agent, dockerd (with containerd and the shims) and the edge
 *            (workerd) over the idle window and over the load window
 *   execs    `exec_create` events of this agent's containers while every
 *            session sits idle with a client connected (docker events
 *            --since/--until over the window): the per-second polling a
 *            session must not cost
 *
 * `--image node` runs the sessions on node:20-bullseye (the default image,
 * with Node, so the session daemon where the agent runs one) instead of the
 * busybox test image. Every session is deleted at the end, also after a failure or Ctrl-C.
 * Targets (reported, not asserted): echo p99 ≤ 50 ms added by the load,
 * ≤ 5 MiB of agent memory per idle session, 0 exec calls in the idle window.
 */
import { rssBytes } from '../test/helpers/memory';
import { CpuMeter, stackCpuGroups } from './cpu';
import {
  BENCH_IMAGE,
  Deadline,
  dockerCli,
  echoRoundTrip,
  flagArg,
  intArg,
  log,
  msBetween,
  now,
  sleep,
  startEchoShell,
  type BenchArgs,
  type BenchStack,
  type TestSocket,
} from './lib';
import { fmtMs, hostFacts, printSummary, printTable, round, roundSummary, summarize, type Summary } from './report';
import { withStack } from './setup';

const MiB = 1024 * 1024;
const TARGET = { echoAddedP99Ms: 50, idleMiBPerSession: 5, idleExecs: 0 };

interface ScaleOptions {
  sessions: number;
  rateKiB: number;
  seconds: number;
  n: number;
  idleSeconds: number;
  image: string;
  deadline: Deadline;
}

export async function scale(args: BenchArgs): Promise<void> {
  const o: ScaleOptions = {
    sessions: intArg(args, 'sessions', 50, 1, 100),
    rateKiB: intArg(args, 'rate-kib', 40, 1, 1024),
    seconds: intArg(args, 'seconds', 40, 5, 3600),
    n: intArg(args, 'n', 150, 10, 5000),
    idleSeconds: intArg(args, 'idle-seconds', 60, 5, 3600),
    image: imageArg(args.values.get('image') ?? 'busybox'),
    deadline: new Deadline(intArg(args, 'timeout', 900, 30, 7200) * 1000),
  };
  log(`scale: ${o.sessions} sessions of ${o.image}, each a terminal at ${o.rateKiB} KiB/s for ${o.seconds} s; ${o.n} keystrokes idle and loaded; idle window ${o.idleSeconds} s`);
  const stackOptions = {
    edgeVars: { MAX_SESSIONS_PER_USER: String(o.sessions + 1), AGENT_MAX_SESSIONS: String(o.sessions + 5) },
    agentEnv: { MAX_SESSIONS: String(o.sessions + 5), LOG_LEVEL: 'info' },
    debug: flagArg(args, 'debug'),
  };
  await withStack(stackOptions, async (scope) => {
    const { b } = scope;
    const agentPid = b.agent.proc.child.pid!;
    const rssEmpty = rssBytes(agentPid);
    const createStarted = now();
    const ids: string[] = [];
    // A few creates at a time, as a fleet's users would: the engine serialises much of the work anyway.
    for (let i = 0; i < o.sessions; i += 4) {
      o.deadline.check(`creating session ${i + 1}`);
      const batch = await Promise.all(Array.from({ length: Math.min(4, o.sessions - i) }, () => scope.session({ image: o.image, ports: [3000] })));
      ids.push(...batch.map((s) => s.id));
    }
    log(`${ids.length} sessions created in ${(msBetween(createStarted, now()) / 1000).toFixed(1)} s`);
    const sockets: TestSocket[] = [];
    for (const id of ids) sockets.push(await scope.socket(id, { output: 'binary' }));

    // Idle: every session has a client and nothing runs but the echo shell (no output).
    const echoSock = sockets[0]!;
    const echoPid = await startEchoShell(echoSock);
    const idleWindow = await measureWindow(b, o.idleSeconds * 1000, o);
    const rssIdle = rssBytes(agentPid);
    const echoIdle = await measureEcho(echoSock, echoPid, o);
    log(`idle: echo p50 ${fmtMs(echoIdle.p50)} ms p99 ${fmtMs(echoIdle.p99)} ms, exec_create ${idleWindow.execs}, agent ${(rssIdle / MiB).toFixed(1)} MiB`);

    // Load: one PTY per session printing RATE lines of 1 KiB a second; clients ack every 256 KiB.
    const received = sockets.map(() => 0);
    const stopAcks = sockets.map((sock, k) => ackAsRead(sock, (n) => (received[k]! += n)));
    const line = 'x'.repeat(1023);
    const load = `while :; do j=0; while [ $j -lt ${o.rateKiB} ]; do echo ${line}; j=$((j+1)); done; sleep 1; done`;
    const loaders: Array<{ sock: TestSocket; pid: string }> = [];
    for (const sock of sockets) {
      o.deadline.check('starting the load');
      const started = await sock.requestOk('exec_command', { command: 'sh', args: ['-c', load], tty: true, cols: 200, rows: 50 }, 60_000);
      loaders.push({ sock, pid: String(started.payload.processId) });
    }
    log(`load running in ${loaders.length} terminals`);
    await sleep(3000); // the load reaches its steady rate
    const before = received.reduce((x, y) => x + y, 0);
    const loadStarted = now();
    const meter = new CpuMeter(stackCpuGroups(b));
    meter.start();
    const echoLoaded = await measureEcho(echoSock, echoPid, o);
    const rest = o.seconds * 1000 - msBetween(loadStarted, now());
    if (rest > 0) await sleep(rest);
    const loadWall = msBetween(loadStarted, now()) / 1000;
    const loadCpu = meter.stop();
    const rssLoaded = rssBytes(agentPid);
    const delivered = (received.reduce((x, y) => x + y, 0) - before) / loadWall;
    await Promise.all(loaders.map((l) => l.sock.requestOk('kill', { processId: l.pid, signal: 'SIGKILL' }, 60_000).catch(() => undefined)));
    for (const stop of stopAcks) stop();

    report(o, { rssEmpty, rssIdle, rssLoaded, echoIdle, echoLoaded, idleWindow, loadCpu, loadWall, delivered });
  });
}

function imageArg(raw: string): string {
  if (raw === 'busybox') return BENCH_IMAGE;
  if (raw === 'node') return 'node:20-bullseye';
  throw new Error(`--image must be busybox or node, not "${raw}"`);
}

async function measureEcho(sock: TestSocket, pid: string, o: ScaleOptions): Promise<Summary> {
  const times: number[] = [];
  for (let i = 0; i < o.n; i++) {
    o.deadline.check(`keystroke ${i + 1}`);
    times.push(await echoRoundTrip(sock, pid, String.fromCharCode(97 + (i % 26)), 10_000));
    await sleep(20);
  }
  return summarize(times);
}

interface IdleWindow {
  execs: number;
  cpu: Record<string, number>;
  wallS: number;
}

/** CPU of the stack and the engine's exec_create events of this agent's containers over an idle window. */
async function measureWindow(b: BenchStack, ms: number, o: ScaleOptions): Promise<IdleWindow> {
  const meter = new CpuMeter(stackCpuGroups(b));
  const since = Math.floor(Date.now() / 1000);
  const started = now();
  meter.start();
  while (msBetween(started, now()) < ms) {
    o.deadline.check('the idle window');
    await sleep(Math.min(1000, ms - msBetween(started, now())));
  }
  const cpu = meter.stop();
  const wallS = msBetween(started, now()) / 1000;
  const until = Math.ceil(Date.now() / 1000);
  const out = await dockerCli(
    ['events', '--since', String(since), '--until', String(until), '--filter', 'type=container', '--filter', 'event=exec_create', '--filter', `label=dev.mominai.agent=${b.agent.id}`, '--format', '{{.ID}}'],
    30_000,
  );
  return { execs: out ? out.split('\n').length : 0, cpu, wallS };
}

/** Counts every output byte and acknowledges every 256 KiB, as the IDE's client does; returns the unsubscribe. */
function ackAsRead(sock: TestSocket, count: (n: number) => void): () => void {
  const acked = new Map<string, number>();
  return sock.on((f) => {
    if (f.type !== 'command_output') return;
    const length = Number(f.payload.length);
    count(length);
    const key = `${String(f.payload.processId)}:${String(f.payload.stream)}`;
    const end = Number(f.payload.offset) + length;
    if (end - (acked.get(key) ?? 0) >= 256 * 1024) {
      sock.send('ack', { processId: f.payload.processId, stream: f.payload.stream, offset: end }, null);
      acked.set(key, end);
    }
  });
}

interface Figures {
  rssEmpty: number;
  rssIdle: number;
  rssLoaded: number;
  echoIdle: Summary;
  echoLoaded: Summary;
  idleWindow: IdleWindow;
  loadCpu: Record<string, number>;
  loadWall: number;
  delivered: number;
}

function report(o: ScaleOptions, f: Figures): void {
  const perIdle = (f.rssIdle - f.rssEmpty) / o.sessions;
  const perBusy = (f.rssLoaded - f.rssEmpty) / o.sessions;
  const addedP50 = f.echoLoaded.p50 - f.echoIdle.p50;
  const addedP99 = f.echoLoaded.p99 - f.echoIdle.p99;
  const pct = (cpu: Record<string, number>, wall: number) => Object.fromEntries(Object.entries(cpu).map(([k, s]) => [k, (100 * s) / wall]));
  const idlePct = pct(f.idleWindow.cpu, f.idleWindow.wallS);
  const loadPct = pct(f.loadCpu, f.loadWall);
  const host = hostFacts();
  console.log('');
  console.log(`${o.sessions} sessions on one agent (${host.cpus} cores, load average ${host.loadavg.map((x) => x.toFixed(1)).join(' ')})`);
  printTable(
    ['keystroke echo, ms', 'p50', 'p90', 'p99', 'max'],
    [
      [`all idle (${f.echoIdle.n} keystrokes)`, ...[f.echoIdle.p50, f.echoIdle.p90, f.echoIdle.p99, f.echoIdle.max].map(fmtMs)],
      [`${o.sessions} × ${o.rateKiB} KiB/s (${f.echoLoaded.n})`, ...[f.echoLoaded.p50, f.echoLoaded.p90, f.echoLoaded.p99, f.echoLoaded.max].map(fmtMs)],
    ],
  );
  printTable(
    ['CPU, % of one core', 'idle', 'loaded', 'loaded, per session'],
    Object.keys(loadPct).map((k) => [k, (idlePct[k] ?? 0).toFixed(1), loadPct[k]!.toFixed(1), (loadPct[k]! / o.sessions).toFixed(2)]),
  );
  const agentKey = 'agent';
  const dockerKey = Object.keys(loadPct).find((k) => k.startsWith('docker')) ?? '';
  const edgeKey = Object.keys(loadPct).find((k) => k.startsWith('edge')) ?? '';
  printSummary(
    'scale',
    [
      `echo p50/p99: idle ${fmtMs(f.echoIdle.p50)}/${fmtMs(f.echoIdle.p99)} ms, loaded ${fmtMs(f.echoLoaded.p50)}/${fmtMs(f.echoLoaded.p99)} ms (added ${fmtMs(addedP50)}/${fmtMs(addedP99)} ms)`,
      `delivered ${(f.delivered / 1024).toFixed(0)} KiB/s to the clients (${((f.delivered / 1024) / o.sessions).toFixed(1)} KiB/s per session, asked ${o.rateKiB})`,
      `agent RSS: ${(f.rssEmpty / MiB).toFixed(1)} MiB empty, ${(f.rssIdle / MiB).toFixed(1)} MiB idle, ${(f.rssLoaded / MiB).toFixed(1)} MiB loaded: ${(perIdle / MiB).toFixed(2)} MiB per idle session, ${(perBusy / MiB).toFixed(2)} per busy one`,
      `CPU loaded (% of a core): agent ${loadPct[agentKey]?.toFixed(1)}, dockerd+containerd+shims ${loadPct[dockerKey]?.toFixed(1)}, edge ${loadPct[edgeKey]?.toFixed(1)}`,
      `exec_create events in ${f.idleWindow.wallS.toFixed(0)} idle s with ${o.sessions} sessions: ${f.idleWindow.execs}`,
    ],
    [
      { name: 'echo p99 added by the load', measured: `${fmtMs(addedP99)} ms`, target: `≤ ${TARGET.echoAddedP99Ms} ms`, met: addedP99 <= TARGET.echoAddedP99Ms },
      { name: 'agent memory per idle session', measured: `${(perIdle / MiB).toFixed(2)} MiB`, target: `≤ ${TARGET.idleMiBPerSession} MiB`, met: perIdle <= TARGET.idleMiBPerSession * MiB },
      { name: 'docker exec calls in the idle window', measured: String(f.idleWindow.execs), target: String(TARGET.idleExecs), met: f.idleWindow.execs <= TARGET.idleExecs },
    ],
    {
      sessions: o.sessions,
      image: o.image,
      rateKiB: o.rateKiB,
      echoIdle: roundSummary(f.echoIdle),
      echoLoaded: roundSummary(f.echoLoaded),
      addedP50: round(addedP50),
      addedP99: round(addedP99),
      agentRss: { empty: f.rssEmpty, idle: f.rssIdle, loaded: f.rssLoaded, perIdle: Math.round(perIdle), perBusy: Math.round(perBusy) },
      cpuPctIdle: Object.fromEntries(Object.entries(idlePct).map(([k, v]) => [k, round(v, 1)])),
      cpuPctLoaded: Object.fromEntries(Object.entries(loadPct).map(([k, v]) => [k, round(v, 1)])),
      idleExecs: f.idleWindow.execs,
      idleSeconds: round(f.idleWindow.wallS, 1),
      deliveredBytesPerSecond: Math.round(f.delivered),
    },
  );
}
