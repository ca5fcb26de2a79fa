/**
 * The sandbox's costs, each against a direct baseline measured in the same run:
 *
 *   neighbour  a session's `echo` round trip through the whole stack (REST exec:
 *              edge → Session DO → agent → docker exec and back), quiet and while
 *              another session runs a fork bomb and a memory hog; the storm figures
 *              are also printed against `docker exec <neighbour> echo` measured
 *              during the same storm (what the engine alone gives).
 *   gvisor     create-to-running and the exec round trip of `true` through the API,
 *              with the agent under CONTAINER_RUNTIME=runsc and under runc (the
 *              default), one stack after the other. Skipped, with a line saying so,
 *              when the engine does not list runsc.
 */
import fs from 'node:fs';
import { api } from '../test/helpers/client';
import { Deadline, dockerCli, flagArg, intArg, log, msSince, now, sessionContainer, sleep, type BenchArgs, type BenchStack } from './lib';
import { fmtMs, printSummary, printTable, round, roundSummary, summarize, type Summary } from './report';
import { withStack, type StackScope } from './setup';

/** The neighbour's p99 during the storm may add at most this much over quiet (issue: neighbours keep working). */
const NEIGHBOUR_ADDED_P99_MS = 250;

async function execMs(b: BenchStack, sessionId: string, command: string): Promise<number> {
  const started = now();
  const res = await api<{ exitCode: number | null }>(b.stack, 'POST', `/api/containers/${sessionId}/exec`, { token: b.user.token, body: { command } });
  const ms = msSince(started);
  if (res.status !== 200 || res.body.exitCode !== 0) throw new Error(`exec ${command} failed: ${res.status} ${JSON.stringify(res.body)}`);
  return ms;
}

/** A timed create; the session is the scope's to delete. */
async function createTimed(scope: StackScope): Promise<{ id: string; ms: number }> {
  const { stack, user } = scope.b;
  const started = now();
  const res = await api<{ session: { id: string; status: string } }>(stack, 'POST', '/api/containers', { token: user.token, body: {} });
  const ms = msSince(started);
  if (res.status !== 201 || res.body.session?.status !== 'running') throw new Error(`creating a session failed: ${res.status} ${JSON.stringify(res.body)}`);
  scope.adopt(res.body.session.id);
  return { id: res.body.session.id, ms };
}

async function series(n: number, deadline: Deadline, one: () => Promise<number>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    deadline.check('a series');
    out.push(await one());
  }
  return out;
}

async function neighbour(args: BenchArgs, deadline: Deadline): Promise<{ quiet: Summary; storm: Summary; direct: Summary }> {
  const n = intArg(args, 'n', 30, 5, 1000);
  const stackOptions = { agentEnv: { LOG_LEVEL: 'info', CONTAINER_MEMORY_LIMIT: '128m', CONTAINER_PIDS_LIMIT: '256' }, debug: flagArg(args, 'debug') };
  return withStack(stackOptions, async (scope) => {
    const { b } = scope;
    const [bomb, quiet] = [await scope.session(), await scope.session()];
    const quietMs = await series(n, deadline, () => execMs(b, quiet.id, 'echo hi'));
    // The storm: a memory hog (OOM-killed at the limit), a loop burning the CPU share, and a flood of
    // sleepers forked up to the pids limit, which they then hold (a shell bomb whose forks fail dies out:
    // `f | f &` within a second of reaching the limit, a bomb of forking loops within seconds under load).
    const bombContainer = await sessionContainer(b, bomb.id);
    const storm = api(b.stack, 'POST', `/api/containers/${bomb.id}/exec`, {
      token: b.user.token,
      body: { command: 'tail /dev/zero & (while :; do :; done) & while :; do sleep 1000 & done', timeoutMs: 120_000 },
    }).catch(() => undefined);
    // Untimed clean-up: a graceful stop of a container full of forks can take longer than the API's
    // 60 s remove, so the engine kills it first; the session is then deleted as usual.
    scope.defer(async () => {
      await dockerCli(['kill', bombContainer]).catch((err: unknown) => log(`killing the storm: ${String(err)}`));
      await storm;
    });
    const pidsFile = `/sys/fs/cgroup/pids/docker/${bombContainer}/pids.current`;
    while (!(fs.existsSync(pidsFile) && Number(fs.readFileSync(pidsFile, 'utf8')) >= 100)) {
      deadline.check('waiting for the fork bomb');
      await sleep(100);
    }
    log(`storm running: ${fs.existsSync(pidsFile) ? fs.readFileSync(pidsFile, 'utf8').trim() : '?'} processes in the bomb's container`);
    const neighbourContainer = await sessionContainer(b, quiet.id);
    const stormMs: number[] = [];
    const directMs: number[] = [];
    for (let i = 0; i < n; i++) {
      deadline.check('the storm series');
      stormMs.push(await execMs(b, quiet.id, 'echo hi'));
      const started = now();
      await dockerCli(['exec', neighbourContainer, 'echo', 'hi']);
      directMs.push(msSince(started));
    }
    log(`storm after the series: ${fs.existsSync(pidsFile) ? fs.readFileSync(pidsFile, 'utf8').trim() : 'no'} processes in the bomb's container`);
    return { quiet: roundSummary(summarize(quietMs)), storm: roundSummary(summarize(stormMs)), direct: roundSummary(summarize(directMs)) };
  });
}

async function runtimeFigures(args: BenchArgs, deadline: Deadline, runtime: 'runc' | 'runsc'): Promise<{ create: Summary; exec: Summary }> {
  const n = intArg(args, 'runtime-n', 8, 2, 200);
  const stackOptions = {
    edgeVars: { MAX_SESSIONS_PER_USER: String(n + 5) },
    agentEnv: { LOG_LEVEL: 'info', ...(runtime === 'runsc' ? { CONTAINER_RUNTIME: 'runsc' } : {}) },
    debug: flagArg(args, 'debug'),
  };
  return withStack(stackOptions, async (scope) => {
    // One untimed warm-up: the agent's network, the image's user.
    await scope.deleteSession((await createTimed(scope)).id);
    const createMs: number[] = [];
    const execs: number[] = [];
    for (let i = 0; i < n; i++) {
      deadline.check(`the ${runtime} series`);
      const s = await createTimed(scope);
      createMs.push(s.ms);
      execs.push(...(await series(5, deadline, () => execMs(scope.b, s.id, 'true'))));
      await scope.deleteSession(s.id);
    }
    return { create: roundSummary(summarize(createMs)), exec: roundSummary(summarize(execs)) };
  });
}

export async function sandbox(args: BenchArgs): Promise<void> {
  const deadline = new Deadline(intArg(args, 'timeout', 600, 30, 3600) * 1000);
  log('sandbox: a neighbour through a fork bomb and a memory hog; gVisor against runc');
  const nb = await neighbour(args, deadline);
  const rows = [
    ['neighbour echo, quiet (API)', nb.quiet],
    ['neighbour echo, storm (API)', nb.storm],
    ['docker exec echo, storm (direct)', nb.direct],
  ] as const;
  printTable(['series', 'n', 'p50 ms', 'p99 ms', 'max ms'], rows.map(([name, s]) => [name, String(s.n), fmtMs(s.p50), fmtMs(s.p99), fmtMs(s.max)]));

  const runtimes = (await dockerCli(['info', '--format', '{{json .Runtimes}}']).catch(() => '{}')) || '{}';
  let gvisor: { runc: { create: Summary; exec: Summary }; runsc: { create: Summary; exec: Summary } } | undefined;
  if (runtimes.includes('"runsc"')) {
    const runc = await runtimeFigures(args, deadline, 'runc');
    const runsc = await runtimeFigures(args, deadline, 'runsc');
    gvisor = { runc, runsc };
    printTable(
      ['runtime', 'create p50 ms', 'create p99 ms', 'exec true p50 ms', 'exec true p99 ms'],
      (['runc', 'runsc'] as const).map((r) => [r, fmtMs(gvisor![r].create.p50), fmtMs(gvisor![r].create.p99), fmtMs(gvisor![r].exec.p50), fmtMs(gvisor![r].exec.p99)]),
    );
  } else {
    log('gvisor: the engine lists no runsc runtime; skipped (see README, Security model, for registering it)');
  }

  const added = nb.storm.p99 - nb.quiet.p99;
  const lines = [
    `neighbour echo p99: quiet ${fmtMs(nb.quiet.p99)} ms, during the storm ${fmtMs(nb.storm.p99)} ms (added ${fmtMs(added)} ms); storm p50 / docker exec p50 = ${round(nb.storm.p50 / nb.direct.p50, 2)}x`,
    ...(gvisor
      ? [
          `gVisor / runc: create p50 ${round(gvisor.runsc.create.p50 / gvisor.runc.create.p50, 2)}x, exec round trip p50 ${round(gvisor.runsc.exec.p50 / gvisor.runc.exec.p50, 2)}x`,
        ]
      : ['gVisor: not measured (no runsc runtime)']),
  ];
  printSummary(
    'sandbox',
    lines,
    [{ name: 'neighbour echo p99 added by a fork bomb + memory hog next door', measured: `${fmtMs(added)} ms`, target: `≤ ${NEIGHBOUR_ADDED_P99_MS} ms`, met: added <= NEIGHBOUR_ADDED_P99_MS }],
    { neighbour: nb, ...(gvisor ? { gvisor } : {}) },
  );
}
