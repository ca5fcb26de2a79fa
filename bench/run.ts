/**
 * `npm run bench -- <name> [options]`: runs one benchmark, or all of them in
 * turn. Each starts and stops its own stack and cleans up what it made; the
 * first Ctrl-C asks it to stop at its next step and clean up, a second one
 * exits at once.
 *
 *   lifecycle  [--n 10] [--pool N]            create-to-running vs docker run -d (with a warm pool of N: WARM_POOL_SIZE)
 *   terminal   [--n 200] [--mib 100] [--reps 3]  keystroke echo and bulk output vs docker exec
 *   files      [--n-small 20] [--n-large 5]   1 MiB and 50 MiB write/read via the API vs docker cp
 *   preview    [--concurrency 8] [--seconds 5] [--load-reps 2] [--n 200] [--mib 50] [--reps 3]
 *                                             the preview host (3000-<id>.preview.localhost) vs the container directly: req/s, latency, 50 MiB
 *   soak       [--sessions 10] [--seconds 480] [--rate-kib 40]
 *                                             N sessions printing RATE KiB/s to acking clients: edge memory per busy session
 *   scale      [--sessions 50] [--rate-kib 40] [--seconds 40] [--n 150] [--idle-seconds 60]
 *                                             N sessions on one agent, each a terminal at RATE KiB/s: echo idle vs loaded,
 *                                             agent CPU and RSS per session, dockerd and edge CPU, exec calls while idle
 *   sandbox    [--n 30] [--runtime-n 8]     a neighbour's echo p99 through a fork bomb + memory hog next door
 *                                             (vs docker exec in the same storm); create and exec under runsc vs runc
 *   daemon     [--n 100]                      exec_command true through the edge with the session daemon vs docker exec (CLI)
 *   restart    [--procs 10] [--rounds 2]      the bundled agent SIGKILLed / SIGTERMed and restarted: spawn to output flowing again
 *   all        every benchmark above but soak and scale, in that order
 *   compare <bench|all> --at <commit> [--rounds 2]
 *              that benchmark on an older commit (a temporary git worktree) and on this tree,
 *              alternately, each target's figures side by side (./compare.ts)
 *
 * Common options: --timeout <seconds> (each benchmark's budget), --debug (stack logs on stderr),
 * --edge miniflare|wrangler (what runs the edge Worker; default miniflare, or EDGE_RUNNER):
 * miniflare is the same workerd without wrangler dev's proxy and inspector relay,
 * the closest to production on one machine; wrangler is what `npm start` runs.
 */
import { compare } from './compare';
import { daemon } from './daemon';
import { files } from './files';
import { lifecycle } from './lifecycle';
import { interrupted, log, parseArgs, type BenchArgs } from './lib';
import { preview } from './preview';
import { restart } from './restart';
import { sandbox } from './sandbox';
import { scale } from './scale';
import { soak } from './soak';
import { terminal } from './terminal';

const BENCHES: Record<string, (args: BenchArgs) => Promise<void>> = { lifecycle, terminal, files, preview, sandbox, soak, scale, daemon, restart };

async function main(): Promise<number> {
  const [name, ...rest] = process.argv.slice(2);
  if (name === 'compare') {
    const [what, ...more] = rest;
    if (!what || (what !== 'all' && !(what in BENCHES))) {
      console.error(`usage: npm run bench -- compare <${[...Object.keys(BENCHES), 'all'].join('|')}> --at <commit> [--rounds 2] [options]`);
      return 2;
    }
    process.on('SIGINT', () => interrupted.abort());
    return compare(what, parseArgs(more), more);
  }
  if (!name || (name !== 'all' && !(name in BENCHES))) {
    console.error(`usage: npm run bench -- <${[...Object.keys(BENCHES), 'all'].join('|')}> [--n N] [--timeout S] ...`);
    return 2;
  }
  const args = parseArgs(rest);
  const edge = args.values.get('edge') ?? (process.env.EDGE_RUNNER || 'miniflare');
  if (edge !== 'miniflare' && edge !== 'wrangler') {
    console.error(`--edge must be miniflare or wrangler, not "${edge}"`);
    return 2;
  }
  // TestStack's spawnEdge reads it.
  process.env.EDGE_RUNNER = edge;
  let stops = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    stops += 1;
    if (stops > 1) process.exit(130);
    log(`${sig}: stopping after the current step and cleaning up (again to exit at once)`);
    interrupted.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // The soak and the scale run take minutes: only when asked for by name.
  const names = name === 'all' ? Object.keys(BENCHES).filter((n) => n !== 'soak' && n !== 'scale') : [name];
  let failed = 0;
  for (const n of names) {
    if (interrupted.signal.aborted) break;
    try {
      await BENCHES[n]!(args);
    } catch (err) {
      failed += 1;
      console.error(`[bench] ${n} failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    }
  }
  return failed > 0 ? 1 : 0;
}

// Exits explicitly: a lingering keep-alive socket or timer must not hold the process.
main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
