/**
 * `npm run bench -- daemon [--n 100]`: the command round trip with the
 * session daemon. A session of the node image (so it runs the daemon) on an
 * agent with SESSION_DAEMON=auto; a client socket sends `exec_command true`
 * and waits for its `command_exit` (client → edge → agent → daemon and back),
 * against `docker exec <container> true` from the CLI on the same container
 * in the same run (the target: p50 ≤ 0.25×, p99 ≤ 0.5×).
 */
import { ensureTestImage, TEST_IMAGES } from '../test/helpers/images';
import { dockerCli, intArg, log, msSince, now, sessionContainer, type BenchArgs } from './lib';
import { fmtMs, printSummary, printTable, roundSummary, summarize } from './report';
import { withStack } from './setup';

export async function daemon(args: BenchArgs): Promise<void> {
  const n = intArg(args, 'n', 100, 5, 10_000);
  const image = TEST_IMAGES.node;
  await ensureTestImage('node');
  await withStack({ agentEnv: { SESSION_DAEMON: 'auto' } }, async (scope) => {
    const session = await scope.session({ image });
    const container = await sessionContainer(scope.b, session.id);
    const sock = await scope.socket(session.id);
    const viaStack = async () => {
      const started = now();
      const reply = await sock.request('exec_command', { command: 'true', args: [] });
      const processId = String(reply.payload.processId);
      const { frame } = await sock.waitForTimed((f) => f.type === 'command_exit' && f.payload.processId === processId, 60_000, 'command_exit');
      if (frame.payload.exitCode !== 0) throw new Error(`true exited ${JSON.stringify(frame.payload)}`);
      return msSince(started);
    };
    const viaCli = async () => {
      const started = now();
      await dockerCli(['exec', container, 'true']);
      return msSince(started);
    };
    // Warm both paths (the first command waits for the daemon to listen).
    for (let i = 0; i < 3; i++) await viaStack().then(viaCli);
    const stack: number[] = [];
    const cli: number[] = [];
    for (let i = 0; i < n; i++) {
      stack.push(await viaStack());
      cli.push(await viaCli());
    }
    const s = roundSummary(summarize(stack));
    const c = roundSummary(summarize(cli));
    printTable(
      ['path', 'n', 'p50 ms', 'p90 ms', 'p99 ms'],
      [
        ['exec_command true through the edge (daemon)', String(n), fmtMs(s.p50), fmtMs(s.p90), fmtMs(s.p99)],
        ['docker exec <c> true (CLI)', String(n), fmtMs(c.p50), fmtMs(c.p90), fmtMs(c.p99)],
      ],
    );
    const p50 = s.p50 / c.p50;
    const p99 = s.p99 / c.p99;
    printSummary(
      'daemon',
      [`round trip p50 ${fmtMs(s.p50)} ms vs docker exec ${fmtMs(c.p50)} ms (${p50.toFixed(2)}x); p99 ${fmtMs(s.p99)} vs ${fmtMs(c.p99)} ms (${p99.toFixed(2)}x)`],
      [
        { name: 'round trip p50 vs docker exec', measured: `${p50.toFixed(2)}x`, target: '≤ 0.25x', met: p50 <= 0.25 },
        { name: 'round trip p99 vs docker exec', measured: `${p99.toFixed(2)}x`, target: '≤ 0.5x', met: p99 <= 0.5 },
      ],
      { n, stack: s, dockerExec: c, ratioP50: p50, ratioP99: p99 },
    );
  });
  log('daemon bench done');
}
