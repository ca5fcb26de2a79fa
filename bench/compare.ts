/**
 * `npm run bench -- compare <bench|all> --at <commit> [--rounds 2] [bench options]`:
 * the same benchmark on an older commit and on this tree, run alternately
 * (old, new, old, new, …, so a change in the machine's load hits both), and
 * every target's figure of each run printed side by side.
 *
 * The older commit is checked out in a temporary git worktree (detached, with
 * this tree's node_modules linked in and its own web assets built) and removed afterwards; each run is a
 * child `bench/run.ts` in its own tree, whose `BENCH {...}` lines are read
 * back. Nothing of this tree is changed but git's list of worktrees, which is
 * pruned again at the end.
 */
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { interrupted, intArg, log, type BenchArgs } from './lib';

const ROOT = path.resolve(import.meta.dirname, '..');
const git = promisify(execFile);

interface BenchLine {
  bench: string;
  targets: Array<{ name: string; measured: string; target: string; met: boolean }>;
}

/** Runs `bench/run.ts` in `tree` with these arguments; resolves with the BENCH lines it printed. */
function runIn(tree: string, argv: readonly string[]): Promise<BenchLine[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'bench/run.ts', ...argv], { cwd: tree, stdio: ['ignore', 'pipe', 'inherit'] });
    const lines: BenchLine[] = [];
    let rest = '';
    child.stdout.on('data', (chunk: Buffer) => {
      process.stdout.write(chunk);
      rest += chunk.toString();
      const parts = rest.split('\n');
      rest = parts.pop() ?? '';
      for (const l of parts) if (l.startsWith('BENCH ')) lines.push(JSON.parse(l.slice(6)) as BenchLine);
    });
    const stop = () => child.kill('SIGINT');
    interrupted.signal.addEventListener('abort', stop, { once: true });
    child.on('error', reject);
    child.on('exit', () => {
      interrupted.signal.removeEventListener('abort', stop);
      resolve(lines);
    });
  });
}

export async function compare(name: string, args: BenchArgs, rawArgs: readonly string[]): Promise<number> {
  const at = args.values.get('at');
  if (!at || at === 'true') throw new Error('compare needs --at <commit> (the older commit to measure against)');
  const rounds = intArg(args, 'rounds', 2, 1, 10);
  // The bench's own options, without compare's.
  const passOn: string[] = [];
  for (let i = 0; i < rawArgs.length; i++) {
    const a = rawArgs[i]!;
    const key = a.replace(/^--/, '').split('=')[0];
    const takesValue = !a.includes('=') && rawArgs[i + 1] !== undefined && !rawArgs[i + 1]!.startsWith('--');
    if (key === 'at' || key === 'rounds') {
      if (takesValue) i++;
      continue;
    }
    passOn.push(a);
  }
  const commit = (await git('git', ['rev-parse', '--verify', `${at}^{commit}`], { cwd: ROOT })).stdout.trim();
  const tree = fs.mkdtempSync(path.join(os.tmpdir(), 'mominai-bench-old-'));
  await git('git', ['worktree', 'add', '--detach', tree, commit], { cwd: ROOT });
  const results: Array<{ side: 'old' | 'new'; round: number; lines: BenchLine[] }> = [];
  try {
    fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(tree, 'node_modules'), 'dir');
    // The edge serves the built IDE page (dist/web, not in git): build the old commit's own.
    if (fs.existsSync(path.join(tree, 'scripts/build-web.ts'))) {
      log('building the old commit\'s web assets');
      await promisify(execFile)(process.execPath, ['--import', 'tsx', 'scripts/build-web.ts'], { cwd: tree, timeout: 300_000 });
    }
    log(`old = ${commit.slice(0, 12)} in ${tree}; new = this tree; ${rounds} round(s), alternating`);
    for (let r = 1; r <= rounds && !interrupted.signal.aborted; r++) {
      for (const side of ['old', 'new'] as const) {
        if (interrupted.signal.aborted) break;
        log(`round ${r}: ${side}`);
        results.push({ side, round: r, lines: await runIn(side === 'old' ? tree : ROOT, [name, ...passOn]) });
      }
    }
  } finally {
    await git('git', ['worktree', 'remove', '--force', tree], { cwd: ROOT }).catch((err: unknown) => log(`removing the worktree ${tree}: ${String(err)}`));
    fs.rmSync(tree, { recursive: true, force: true });
    await git('git', ['worktree', 'prune'], { cwd: ROOT }).catch(() => undefined);
  }
  printComparison(commit, results);
  return results.some((r) => r.lines.length === 0) ? 1 : 0;
}

/** One table per benchmark: a row per target, a column per run (old and new alternating). */
function printComparison(commit: string, results: Array<{ side: 'old' | 'new'; round: number; lines: BenchLine[] }>): void {
  const benches = [...new Set(results.flatMap((r) => r.lines.map((l) => l.bench)))];
  console.log('');
  console.log(`== compare: old = ${commit.slice(0, 12)}, new = this tree ==`);
  for (const bench of benches) {
    const columns = results.map((r) => ({ head: `${r.side} #${r.round}`, line: r.lines.find((l) => l.bench === bench) }));
    const names = [...new Set(columns.flatMap((c) => c.line?.targets.map((t) => t.name) ?? []))];
    console.log('');
    console.log(`${bench}:`);
    console.log(['target', ...columns.map((c) => c.head)].join(' | '));
    for (const n of names) {
      const cells = columns.map((c) => {
        const t = c.line?.targets.find((x) => x.name === n);
        return t ? `${t.measured}${t.met ? '' : ' ✘'}` : '(not run)';
      });
      console.log([n, ...cells].join(' | '));
    }
  }
  console.log(`COMPARE ${JSON.stringify({ old: commit, runs: results.map((r) => ({ side: r.side, round: r.round, benches: r.lines })) })}`);
}
