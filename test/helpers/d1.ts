/**
 * Reads and changes the edge's local D1 database from a test, the way an
 * operator would: `wrangler d1 execute --local` against the stack's state.
 * For seeing what the edge stored (or did not) and for changes no API makes
 * (deleting a user). Each call takes a second or two.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { ROOT, wranglerEnv } from '../../scripts/lib/stack';

const run = promisify(execFile);

export async function d1Execute<T = Record<string, unknown>>(stateDir: string, sql: string): Promise<T[]> {
  const { stdout } = await run(
    process.execPath,
    [
      path.join(ROOT, 'node_modules/wrangler/bin/wrangler.js'),
      'd1',
      'execute',
      'DB',
      '--local',
      '--config',
      path.join(ROOT, 'wrangler.toml'),
      '--persist-to',
      path.join(stateDir, 'edge'),
      '--command',
      sql,
      '--json',
    ],
    {
      cwd: ROOT,
      timeout: 60_000,
      env: wranglerEnv(stateDir),
    },
  );
  const parsed = JSON.parse(stdout) as Array<{ results: T[]; success: boolean }>;
  return parsed.flatMap((r) => r.results);
}
