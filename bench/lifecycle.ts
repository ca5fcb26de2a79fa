/**
 * Session lifecycle: create-to-running through the API against `docker run -d`
 * of the same image with the same hardening, measured in the same run.
 *
 *   api         POST /api/containers {image} until the 201 reply whose session is `running`
 *               (edge → Fleet DO placement → Session DO → agent → dockerd and back)
 *   docker run  `docker run -d` with the flags read from the API's own container
 *               (`docker inspect`): memory and swap, CPUs, pids limit, cap-drop ALL plus
 *               the same cap-adds, no-new-privileges, --init, the user, a user-defined
 *               bridge network without inter-container traffic, a bind-mounted
 *               workspace, the same keep-alive command
 *   engine API  (reference) the same container through dockerode's create + start + inspect,
 *               the calls the agent itself makes, without the docker CLI's own start-up
 *
 * With `--pool N` the agent keeps a warm pool of N containers (WARM_POOL_SIZE,
 * DEFAULT_IMAGE = the bench image), so each api create claims a started
 * container; after each api round the bench waits, untimed, until the pool
 * is full again, so its refill never runs while a baseline is timed. The
 * targets are then the warm pool's: p50 ≤ 90 ms and ≤ 0.35× docker run -d.
 *
 * The three alternate (the order rotates every round) so drift in the engine
 * hits each alike; each container is deleted after it is measured, untimed.
 * One untimed warm-up round first: it creates the agent's network and caches
 * the image's user, one-time costs a real fleet pays once per agent.
 */
import fs from 'node:fs';
import path from 'node:path';
import type Docker from 'dockerode';
import { api } from '../test/helpers/client';
import {
  BENCH_IMAGE,
  Deadline,
  dockerCli,
  flagArg,
  intArg,
  log,
  msSince,
  now,
  sessionContainer,
  withTimeout,
  type BenchArgs,
  type BenchStack,
  type SessionView,
} from './lib';
import { fmtMs, printSummary, printTable, round, roundSummary, summarize, type TargetCheck } from './report';
import { withStack, type StackScope } from './setup';

const TARGET_RATIO = 1.3;
const POOL_TARGET = { p50Ms: 90, ratio: 0.35 };
const AGENT_LIMITS = { CONTAINER_MEMORY_LIMIT: '512m', CONTAINER_CPU_LIMIT: '0.5', CONTAINER_PIDS_LIMIT: '512' };

type Series = 'api' | 'docker run' | 'engine API';

export async function lifecycle(args: BenchArgs): Promise<void> {
  const n = intArg(args, 'n', 10, 1, 200);
  const pool = intArg(args, 'pool', 0, 0, 20);
  const deadline = new Deadline(intArg(args, 'timeout', 300, 10, 3600) * 1000);
  const runId = `${process.pid.toString(16)}${Math.random().toString(16).slice(2, 8)}`;
  const label = `dev.mominai.bench=${runId}`;
  const network = `mominai-bench-${runId}`;
  log(`lifecycle: ${n} rounds of api / docker run / engine API, image ${BENCH_IMAGE}${pool ? `, warm pool of ${pool}` : ''}`);
  const stackOptions = {
    // Each session is deleted right after it is measured; the headroom covers a slow delete.
    edgeVars: { MAX_SESSIONS_PER_USER: String(Math.min(10_000, n + 5)) },
    agentEnv: { ...AGENT_LIMITS, LOG_LEVEL: 'info', ...(pool ? { WARM_POOL_SIZE: String(pool), DEFAULT_IMAGE: BENCH_IMAGE } : {}) },
    debug: flagArg(args, 'debug'),
  };
  await withStack(stackOptions, async (scope) => {
    const { b } = scope;
    const workspaces = fs.mkdtempSync(path.join(b.stack.stateDir, 'bench-workspaces-'));
    scope.defer(() => fs.rmSync(workspaces, { recursive: true, force: true }));
    scope.defer(async () => {
      await removeLabelled(b.docker, label);
      await dockerCli(['network', 'rm', network], 20_000).catch(() => undefined);
    });
    await dockerCli(['network', 'create', '--driver', 'bridge', '--opt', 'com.docker.network.bridge.enable_icc=false', '--label', label, network]);

    // Warm-up, and the API container's own settings for the baselines.
    if (pool) await poolFull(b, 1);
    const first = await timeApi(scope);
    const info = await b.docker.getContainer(pool ? `mominai-${first.session.id}` : await sessionContainer(b, first.session.id)).inspect();
    await scope.deleteSession(first.session.id);
    let claims = first.claimed ? 1 : 0;
    if (pool) await poolFull(b, 1 + claims);
    const baseline = baselineFrom(info, network, label);
    log(`docker run flags (from the API's container): ${baseline.cliFlags.join(' ')}`);
    let ws = 0;
    // A workspace and, when the session container has the daemon's mounts, a run folder of its own
    // (its main process writes there), so the baselines start exactly what a session starts.
    const workspace = () => {
      const dir = path.join(workspaces, `w${ws++}`);
      for (const d of [dir, `${dir}.run`]) {
        fs.mkdirSync(d);
        fs.chownSync(d, baseline.uid, baseline.gid);
      }
      return dir;
    };
    await timeDockerRun(b, baseline, workspace());
    await timeEngineApi(b, baseline, workspace());

    const times: Record<Series, number[]> = { api: [], 'docker run': [], 'engine API': [] };
    const agentMs: number[] = [];
    const order: Series[] = ['api', 'docker run', 'engine API'];
    for (let i = 0; i < n; i++) {
      for (let k = 0; k < order.length; k++) {
        deadline.check(`round ${i + 1} of ${n}`);
        const series = order[(i + k) % order.length]!;
        if (series === 'api') {
          const r = await timeApi(scope);
          times.api.push(r.ms);
          if (r.agentMs !== undefined) agentMs.push(r.agentMs);
          await scope.deleteSession(r.session.id);
          if (r.claimed) claims += 1;
          if (pool) await poolFull(b, 1 + claims);
        } else if (series === 'docker run') {
          times['docker run'].push(await timeDockerRun(b, baseline, workspace()));
        } else {
          times['engine API'].push(await timeEngineApi(b, baseline, workspace()));
        }
      }
      log(`round ${i + 1}/${n}: api ${fmtMs(times.api.at(-1)!)} ms, docker run ${fmtMs(times['docker run'].at(-1)!)} ms, engine API ${fmtMs(times['engine API'].at(-1)!)} ms`);
    }

    const s = { api: summarize(times.api), dockerRun: summarize(times['docker run']), engine: summarize(times['engine API']) };
    const agent = summarize(agentMs);
    const rest = summarize(times.api.map((t, i) => t - (agentMs[i] ?? Number.NaN)).filter(Number.isFinite));
    console.log('');
    console.log(`create-to-running, ${n} rounds, milliseconds (image ${BENCH_IMAGE}, 512m / 0.5 CPU / 512 pids)`);
    printTable(
      ['path', 'p50', 'p90', 'min', 'max', 'mean'],
      [
        [`api (POST /api/containers → 201 running)${pool ? `, warm pool of ${pool}` : ''}`, ...cells(s.api)],
        ['docker run -d (same flags)', ...cells(s.dockerRun)],
        ['engine API create+start+inspect (reference)', ...cells(s.engine)],
        ['  api: agent runtime.create (its log)', ...cells(agent)],
        ['  api: the rest (edge, DOs, tunnel, dispatch)', ...cells(rest)],
      ],
    );
    const ratio = s.api.p50 / s.dockerRun.p50;
    const ratioEngine = s.api.p50 / s.engine.p50;
    const poolClaims = claims - (first.claimed ? 1 : 0);
    const targets: TargetCheck[] = pool
      ? [
          { name: 'create-to-running p50 with a warm pool', measured: `${fmtMs(s.api.p50)} ms`, target: `≤ ${POOL_TARGET.p50Ms} ms`, met: s.api.p50 <= POOL_TARGET.p50Ms },
          { name: 'create-to-running p50 ratio, api (pool) / docker run -d', measured: `${ratio.toFixed(2)}×`, target: `≤ ${POOL_TARGET.ratio}×`, met: ratio <= POOL_TARGET.ratio },
          { name: 'timed creates served from the pool', measured: `${poolClaims} of ${n}`, target: `${n} of ${n}`, met: poolClaims === n },
        ]
      : [{ name: 'create-to-running p50 ratio, api / docker run -d', measured: `${ratio.toFixed(2)}×`, target: `≤ ${TARGET_RATIO}×`, met: ratio <= TARGET_RATIO }];
    printSummary(
      'lifecycle',
      [
        `api p50 ${fmtMs(s.api.p50)} ms (p90 ${fmtMs(s.api.p90)}), docker run -d p50 ${fmtMs(s.dockerRun.p50)} ms (p90 ${fmtMs(s.dockerRun.p90)})`,
        `p50 ratio api / docker run -d: ${ratio.toFixed(2)}×; api / engine API (reference): ${ratioEngine.toFixed(2)}×`,
        `of the api's p50, the agent's runtime.create took ${fmtMs(agent.p50)} ms; edge, DOs, tunnel and dispatch ${fmtMs(rest.p50)} ms`,
      ],
      targets,
      {
        n,
        pool,
        ...(pool ? { servedFromPool: poolClaims } : {}),
        image: BENCH_IMAGE,
        unit: 'ms',
        api: roundSummary(s.api),
        dockerRun: roundSummary(s.dockerRun),
        engineApi: roundSummary(s.engine),
        agentRuntimeCreate: roundSummary(agent),
        apiRest: roundSummary(rest),
        ratioP50: round(ratio),
        ratioP50VsEngineApi: round(ratioEngine),
      },
    );
  });
}

function cells(s: ReturnType<typeof summarize>): string[] {
  return [s.p50, s.p90, s.min, s.max, s.mean].map(fmtMs);
}

async function timeApi(scope: StackScope): Promise<{ ms: number; session: SessionView; agentMs: number | undefined; claimed: boolean }> {
  const { b } = scope;
  const t0 = now();
  const res = await withTimeout(
    api<{ session: SessionView }>(b.stack, 'POST', '/api/containers', { token: b.user.token, body: { image: BENCH_IMAGE } }),
    60_000,
    'POST /api/containers',
  );
  const ms = msSince(t0);
  if (res.status !== 201 || res.body.session?.status !== 'running') throw new Error(`create failed: ${res.status} ${JSON.stringify(res.body)}`);
  const session = res.body.session;
  scope.adopt(session.id);
  // The agent logs how long its runtime took; the line may trail the reply by a moment.
  const line = await b.agent
    .waitForLog((l) => (l.msg === 'session container started' || l.msg === 'session container claimed from the warm pool') && l.sessionId === session.id, 2_000)
    .catch(() => undefined);
  return { ms, session, agentMs: typeof line?.ms === 'number' ? line.ms : undefined, claimed: line?.msg === 'session container claimed from the warm pool' };
}

/** Waits (untimed) until the agent has logged `warm pool full` `times` times: the pool refilled after every claim so far. */
async function poolFull(b: BenchStack, times: number): Promise<void> {
  const count = () => b.agent.logs.filter((l) => l.includes('"warm pool full"')).length;
  const deadline = Date.now() + 60_000;
  while (count() < times) {
    if (Date.now() > deadline) throw new Error(`the warm pool did not refill within 60 s (${count()} of ${times} fills logged)`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

interface Baseline {
  cliFlags: string[];
  image: string;
  cmd: string[];
  create: (workspace: string) => Docker.ContainerCreateOptions;
  /** The session's binds for a baseline: its workspace, the daemon's bundle (read-only) and a run folder of its own. */
  binds: (workspace: string) => string[];
  uid: number;
  gid: number;
}

/** The baselines' settings, read from the container the API made, so both run exactly what a session runs. */
function baselineFrom(info: Docker.ContainerInspectInfo, network: string, label: string): Baseline {
  const hc = info.HostConfig;
  const cmd = info.Config.Cmd ?? [];
  if (cmd.length === 0) throw new Error('the session container has no command to copy');
  const [uid, gid] = (info.Config.User || '0:0').split(':').map(Number) as [number, number | undefined];
  const logOpts = Object.entries(hc.LogConfig?.Config ?? {}).flatMap(([k, v]) => ['--log-opt', `${k}=${v}`]);
  const cliFlags = [
    '--memory', String(hc.Memory),
    '--memory-swap', String(hc.MemorySwap),
    '--cpus', String((hc.NanoCpus ?? 0) / 1e9),
    '--pids-limit', String(hc.PidsLimit),
    ...(hc.CapDrop ?? []).flatMap((c: string) => ['--cap-drop', c]),
    ...(hc.CapAdd ?? []).flatMap((c: string) => ['--cap-add', c]),
    ...(hc.SecurityOpt ?? []).flatMap((o: string) => ['--security-opt', o]),
    ...(hc.Init ? ['--init'] : []),
    '--user', info.Config.User || '0:0',
    '--workdir', info.Config.WorkingDir || '/',
    '--network', network,
    '--restart', 'no',
    ...(hc.LogConfig?.Type ? ['--log-driver', hc.LogConfig.Type] : []),
    ...logOpts,
    '--label', label,
  ];
  const [key, value] = label.split('=') as [string, string];
  const binds = (workspace: string) =>
    (hc.Binds ?? []).map((bind) => {
      const [, target, mode] = bind.split(':');
      if (target === '/workspace') return `${workspace}:/workspace`;
      return mode === 'ro' ? bind : `${workspace}.run:${target}`;
    });
  return {
    cliFlags,
    binds,
    image: info.Config.Image,
    cmd,
    uid,
    gid: gid ?? uid,
    create: (workspace) => ({
      Image: info.Config.Image,
      Entrypoint: [],
      Cmd: cmd,
      User: info.Config.User,
      WorkingDir: info.Config.WorkingDir,
      Tty: false,
      OpenStdin: false,
      Labels: { [key]: value },
      HostConfig: {
        Memory: hc.Memory,
        MemorySwap: hc.MemorySwap,
        NanoCpus: hc.NanoCpus,
        PidsLimit: hc.PidsLimit,
        CapDrop: hc.CapDrop,
        CapAdd: hc.CapAdd,
        SecurityOpt: hc.SecurityOpt,
        Init: hc.Init,
        Privileged: false,
        NetworkMode: network,
        PortBindings: {},
        Binds: binds(workspace),
        RestartPolicy: { Name: 'no' },
        ...(hc.LogConfig ? { LogConfig: hc.LogConfig } : {}),
      },
      NetworkingConfig: { EndpointsConfig: { [network]: {} } },
    }),
  };
}

async function timeDockerRun(b: BenchStack, base: Baseline, workspace: string): Promise<number> {
  const t0 = now();
  const binds = base.binds(workspace).flatMap((bind) => ['-v', bind]);
  const id = await dockerCli(['run', '-d', ...base.cliFlags, ...binds, base.image, ...base.cmd], 60_000);
  const ms = msSince(t0);
  await b.docker.getContainer(id).remove({ force: true, v: true });
  return ms;
}

async function timeEngineApi(b: BenchStack, base: Baseline, workspace: string): Promise<number> {
  const t0 = now();
  const container = await b.docker.createContainer(base.create(workspace));
  try {
    await container.start();
    const info = await container.inspect();
    const ms = msSince(t0);
    if (!info.State.Running) throw new Error('the reference container is not running');
    return ms;
  } finally {
    await container.remove({ force: true, v: true });
  }
}

async function removeLabelled(docker: Docker, label: string): Promise<void> {
  const list = await docker.listContainers({ all: true, filters: { label: [label] } }).catch(() => []);
  for (const c of list) await docker.getContainer(c.Id).remove({ force: true, v: true }).catch(() => undefined);
}
