/**
 * `npm run dev`: `npm start` (edge + one agent, same settings, same STATE_DIR)
 * restarted whenever a source file under edge/, agent/, shared/ or scripts/
 * changes. A restart stops the whole stack the way Ctrl-C does (start.ts stops
 * the edge's and the agent's process groups), then starts it again; state in
 * STATE_DIR survives, and sessions' containers carry on across agent restarts.
 * Changes are debounced, so saving several files restarts once.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ROOT } from './lib/stack';

/** The source folders; `--watch <dir>` (repeatable) names others instead (the test watches a folder of its own). */
const { values } = parseArgs({ options: { watch: { type: 'string', multiple: true } } });
const WATCHED = (values.watch ?? ['edge', 'agent', 'shared', 'scripts']).map((d) => path.resolve(ROOT, d));
const SOURCE = /\.(ts|js|mjs|cjs|json|sql)$/;
const DEBOUNCE_MS = 200;
/** start.ts gives each child 8 s to stop; past this its group is killed. */
const STOP_GRACE_MS = 15_000;

const say = (msg: string, fields: Record<string, unknown> = {}) =>
  process.stdout.write(JSON.stringify({ time: new Date().toISOString(), level: 'info', component: 'dev', msg, ...fields }) + '\n');

let child: ChildProcess | undefined;
let exited: Promise<void> = Promise.resolve();
let stopping = false;

function startStack(): void {
  const c = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'scripts/start.ts')], {
    cwd: ROOT,
    stdio: 'inherit',
    detached: true,
    env: process.env,
  });
  child = c;
  exited = new Promise((resolve) => c.once('exit', () => resolve()));
}

async function stopStack(): Promise<void> {
  const c = child;
  if (!c || c.exitCode !== null || c.signalCode !== null || c.pid === undefined) return;
  const pid = c.pid;
  c.kill('SIGTERM');
  const timer = setTimeout(() => {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }, STOP_GRACE_MS);
  await exited;
  clearTimeout(timer);
}

let timer: NodeJS.Timeout | undefined;
let changed = new Set<string>();
let restarting = false;
async function restart(): Promise<void> {
  if (restarting || stopping) return;
  restarting = true;
  const files = [...changed];
  changed = new Set();
  say('change seen; restarting edge and agent', { files: files.slice(0, 5) });
  await stopStack();
  if (!stopping) startStack();
  restarting = false;
  if (changed.size > 0) schedule();
}
function schedule(): void {
  clearTimeout(timer);
  timer = setTimeout(() => void restart(), DEBOUNCE_MS);
}

for (const dir of WATCHED) {
  fs.watch(dir, { recursive: true }, (_event, file) => {
    if (!file || !SOURCE.test(file) || file.split(path.sep).includes('node_modules')) return;
    changed.add(path.relative(ROOT, path.join(dir, file)));
    schedule();
  });
}

async function shutdown(): Promise<void> {
  if (stopping) return;
  stopping = true;
  clearTimeout(timer);
  await stopStack();
  process.exit(0);
}
process.on('SIGINT', () => void shutdown());
process.on('SIGTERM', () => void shutdown());

say('watching for changes', { folders: WATCHED.map((d) => path.relative(ROOT, d) || '.') });
startStack();
