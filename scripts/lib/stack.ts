/**
 * Starting and stopping the real processes: the edge under `wrangler dev`
 * (workerd) and the agent under Node. `npm start` and the end-to-end tests
 * share this code, so the tests run exactly what a developer runs.
 * Each child gets its own process group, and stopping kills the whole group
 * (wrangler → workerd leaves no orphan).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { EDGE_SETTINGS } from './settings';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface Managed {
  child: ChildProcess;
  name: string;
  /** Resolves with the exit code (or signal) once the whole process has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stop(timeoutMs?: number): Promise<void>;
}

/** Process groups started here and not yet stopped: killed if this process exits without stopping them. */
const liveGroups = new Set<number>();
let exitHookInstalled = false;
function killLiveGroupsOnExit(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const pgid of liveGroups) {
      try {
        process.kill(-pgid, 'SIGKILL');
      } catch {
        // gone already
      }
    }
  });
}

function manage(name: string, child: ChildProcess): Managed {
  if (child.pid !== undefined) {
    liveGroups.add(child.pid);
    killLiveGroupsOnExit();
  }
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve({ code: child.exitCode, signal: child.signalCode });
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  const signalGroup = (signal: NodeJS.Signals) => {
    if (child.pid === undefined) return;
    try {
      process.kill(-child.pid, signal);
    } catch {
      // The group is gone already.
    }
  };
  return {
    child,
    name,
    exited,
    async stop(timeoutMs = 8_000) {
      signalGroup('SIGTERM');
      const timer = setTimeout(() => signalGroup('SIGKILL'), timeoutMs);
      await exited;
      clearTimeout(timer);
      // Whatever the leader left in its group (workerd under wrangler) goes too.
      signalGroup('SIGKILL');
      if (child.pid !== undefined) liveGroups.delete(child.pid);
    },
  };
}

export interface EdgeOptions {
  host: string;
  port: number;
  stateDir: string;
  /** Worker vars: settings and secrets. */
  vars: Record<string, string>;
  /**
   * Port for wrangler's devtools inspector. Unset, wrangler tries 9229 first,
   * and two edges starting at the same moment both take it and one dies
   * ("Address already in use"); the tests pass a free port of their own.
   */
  inspectorPort?: number;
  stdio?: 'inherit' | 'pipe' | 'ignore';
  onOutput?: (line: string) => void;
  /**
   * What runs the Worker: `wrangler` (`wrangler dev`, the default: what a
   * developer runs) or `miniflare` (scripts/edge-miniflare.ts: the same
   * workerd without wrangler's dev proxy and inspector relay, the closest to
   * production on one machine). EDGE_RUNNER sets the default.
   */
  runner?: EdgeRunner;
}

export type EdgeRunner = 'wrangler' | 'miniflare';

export function edgeRunnerFromEnv(env: NodeJS.ProcessEnv = process.env): EdgeRunner {
  const v = env.EDGE_RUNNER || 'wrangler';
  if (v !== 'wrangler' && v !== 'miniflare') throw new Error(`EDGE_RUNNER must be wrangler or miniflare, not ${JSON.stringify(v)}`);
  return v;
}

/** Writes the vars to an env file wrangler reads (mode 0600, under STATE_DIR) and starts `wrangler dev`. */
export function spawnEdge({
  host,
  port,
  stateDir,
  vars,
  inspectorPort,
  stdio = 'pipe',
  onOutput,
  runner = edgeRunnerFromEnv(),
}: EdgeOptions): Managed {
  fs.mkdirSync(stateDir, { recursive: true });
  const envFile = path.join(stateDir, 'edge.env');
  const lines = Object.entries(vars).map(([k, v]) => `${k}=${JSON.stringify(v)}`);
  fs.writeFileSync(envFile, lines.join('\n') + '\n', { mode: 0o600 });
  if (runner === 'miniflare') {
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        path.join(ROOT, 'scripts/edge-miniflare.ts'),
        '--ip',
        host,
        '--port',
        String(port),
        '--persist-to',
        path.join(stateDir, 'edge'),
        '--env-file',
        envFile,
        ...(process.env.EDGE_INSPECTOR_PORT ? ['--inspector-port', process.env.EDGE_INSPECTOR_PORT] : []),
      ],
      { cwd: ROOT, detached: true, stdio: ['ignore', stdio, stdio], env: wranglerEnv(stateDir) },
    );
    pipeLines(child, onOutput);
    return manage('edge', child);
  }
  const child = spawn(
    process.execPath,
    [
      path.join(ROOT, 'node_modules/wrangler/bin/wrangler.js'),
      'dev',
      '--local',
      '--config',
      path.join(ROOT, 'wrangler.toml'),
      '--ip',
      host,
      '--port',
      String(port),
      ...(inspectorPort === undefined ? [] : ['--inspector-port', String(inspectorPort)]),
      '--persist-to',
      path.join(stateDir, 'edge'),
      '--env-file',
      envFile,
      '--show-interactive-dev-session=false',
      '--log-level',
      'warn',
    ],
    {
      cwd: ROOT,
      detached: true,
      stdio: ['ignore', stdio, stdio],
      env: wranglerEnv(stateDir),
    },
  );
  pipeLines(child, onOutput);
  return manage('edge', child);
}

/** The environment wrangler runs in here: no outside calls, no banner, its config kept under STATE_DIR. */
export function wranglerEnv(stateDir: string): NodeJS.ProcessEnv {
  return {
    ...process.env,
    CLOUDFLARE_CF_FETCH_ENABLED: 'false',
    WRANGLER_SEND_METRICS: 'false',
    WRANGLER_HIDE_BANNER: 'true',
    XDG_CONFIG_HOME: path.join(stateDir, '.config'),
    FORCE_COLOR: '0',
  };
}

export interface AgentOptions {
  env: Record<string, string | undefined>;
  stdio?: 'inherit' | 'pipe' | 'ignore';
  onOutput?: (line: string) => void;
  /** Node's arguments (default: agent/main.ts under tsx); e.g. `['dist/agent/agent.cjs']` runs the bundle production runs. */
  nodeArgs?: string[];
}

export function spawnAgent({ env, stdio = 'pipe', onOutput, nodeArgs }: AgentOptions): Managed {
  const child = spawn(process.execPath, nodeArgs ?? ['--import', 'tsx', path.join(ROOT, 'agent/main.ts')], {
    cwd: ROOT,
    detached: true,
    stdio: ['ignore', stdio, stdio],
    env: { ...process.env, ...env },
  });
  pipeLines(child, onOutput);
  return manage('agent', child);
}

function pipeLines(child: ChildProcess, onOutput?: (line: string) => void): void {
  for (const stream of [child.stdout, child.stderr]) {
    if (!stream) continue;
    let buf = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      buf += chunk;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        onOutput?.(line);
      }
    });
  }
}

/** The edge's vars from the environment: the listed settings plus the secrets. */
export function edgeVarsFromEnv(env: NodeJS.ProcessEnv, secrets: Record<string, string>): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const name of EDGE_SETTINGS) {
    const v = env[name];
    if (v !== undefined && v !== '') vars[name] = v;
  }
  return { ...vars, ...secrets };
}

export interface Health {
  status: string;
  agents: Array<{ id: string; name: string; mode: string; connected: boolean }>;
  [key: string]: unknown;
}

/**
 * Polls /health until `until` holds or the time runs out. With the operator
 * token it reads the full view (agents by id); without, the quiet one (counts).
 */
export async function waitForHealth(
  baseUrl: string,
  until: (h: Health) => boolean,
  { timeoutMs = 30_000, intervalMs = 100, operatorToken }: { timeoutMs?: number; intervalMs?: number; operatorToken?: string } = {},
): Promise<Health> {
  const deadline = Date.now() + timeoutMs;
  const headers: Record<string, string> = operatorToken ? { Authorization: `Bearer ${operatorToken}` } : {};
  let last: unknown;
  for (;;) {
    try {
      const res = await fetch(`${baseUrl}/health`, { headers, signal: AbortSignal.timeout(5_000) });
      if (res.ok) {
        const h = (await res.json()) as Health;
        last = h;
        if (until(h)) return h;
      } else last = `HTTP ${res.status}`;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${baseUrl}/health; last: ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
