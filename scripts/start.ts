/**
 * `npm start`: the whole system on this machine. Starts the edge (wrangler dev,
 * workerd, local D1 and Durable Objects under STATE_DIR), then one agent
 * connected to it (Docker when an engine answers, else local mode), prints
 * where everything is, and stops both on Ctrl-C or SIGTERM. A child that dies
 * on its own is restarted after a pause.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Backoff } from '../shared/backoff';
import { newId } from '../shared/ids';
import { signToken } from '../edge/auth/tokens';
import { loadSecrets } from './lib/secrets';
import { edgeVarsFromEnv, spawnAgent, spawnEdge, waitForHealth, type Managed } from './lib/stack';

const say = (msg: string, fields: Record<string, unknown> = {}) =>
  process.stdout.write(JSON.stringify({ time: new Date().toISOString(), level: 'info', component: 'start', msg, ...fields }) + '\n');
const fail = (msg: string) => {
  process.stderr.write(JSON.stringify({ time: new Date().toISOString(), level: 'error', component: 'start', msg }) + '\n');
  process.exit(1);
};

const env = process.env;
const host = env.HOST || '127.0.0.1';
const port = Number(env.PORT || 3001);
if (!Number.isInteger(port) || port < 1 || port > 65535) fail(`PORT must be 1-65535, not "${env.PORT}"`);
const stateDir = path.resolve(env.STATE_DIR || '.data');
fs.mkdirSync(stateDir, { recursive: true });

let secrets;
try {
  secrets = loadSecrets(stateDir, env);
} catch (err) {
  fail(err instanceof Error ? err.message : String(err));
}

const agentFile = path.join(stateDir, 'agent.json');
const agentId: string = fs.existsSync(agentFile) ? (JSON.parse(fs.readFileSync(agentFile, 'utf8')) as { id: string }).id : newId('agt');
fs.writeFileSync(agentFile, JSON.stringify({ id: agentId }) + '\n');
const agentName = env.AGENT_NAME || os.hostname();
const agentToken = env.AGENT_TOKEN || (await signToken({ secret: secrets!.AGENT_SECRET, typ: 'agent', sub: agentId, claims: { name: agentName } }));

const connectHost = host === '0.0.0.0' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
const baseUrl = `http://${connectHost}:${port}`;
const passthrough = (line: string) => process.stdout.write(line + '\n');

let stopping = false;
let edge: Managed | undefined;
let agent: Managed | undefined;

function startEdge(): Managed {
  const m = spawnEdge({ host, port, stateDir, vars: edgeVarsFromEnv(env, secrets!), onOutput: passthrough });
  void m.exited.then(({ code, signal }) => restartLater('edge', code, signal, () => (edge = startEdge())));
  return m;
}

function startAgent(): Managed {
  const m = spawnAgent({
    env: {
      EDGE_URL: env.EDGE_URL || baseUrl.replace(/^http/, 'ws'),
      AGENT_TOKEN: agentToken,
      AGENT_NAME: agentName,
      STATE_DIR: stateDir,
    },
    onOutput: passthrough,
  });
  void m.exited.then(({ code, signal }) => restartLater('agent', code, signal, () => (agent = startAgent())));
  return m;
}

const backoffs = { edge: new Backoff({ baseMs: 1_000, capMs: 10_000 }), agent: new Backoff({ baseMs: 1_000, capMs: 10_000 }) };
function restartLater(name: 'edge' | 'agent', code: number | null, signal: string | null, restart: () => void): void {
  if (stopping) return;
  const wait = backoffs[name].next();
  process.stderr.write(
    JSON.stringify({ time: new Date().toISOString(), level: 'error', component: 'start', msg: `${name} exited; restarting`, code, signal, inMs: wait }) + '\n',
  );
  setTimeout(() => !stopping && restart(), wait);
}

async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  say('stopping', { signal });
  await Promise.all([agent?.stop(), edge?.stop()]);
  process.exit(0);
}
process.on('SIGINT', () => void shutdown('SIGINT'));
process.on('SIGTERM', () => void shutdown('SIGTERM'));

say('starting edge', { url: baseUrl, stateDir });
edge = startEdge();
try {
  await waitForHealth(baseUrl, () => true, { timeoutMs: 60_000 });
} catch (err) {
  await edge.stop();
  fail(`the edge did not come up: ${err instanceof Error ? err.message : String(err)}`);
}
agent = startAgent();
try {
  const health = await waitForHealth(baseUrl, (h) => h.agents.some((a) => a.id === agentId && a.connected), { timeoutMs: 60_000 });
  const me = health.agents.find((a) => a.id === agentId);
  say('ready', {
    ide: `${baseUrl}/`,
    api: `${baseUrl}/api`,
    websocket: `${baseUrl.replace(/^http/, 'ws')}/ws`,
    health: `${baseUrl}/health`,
    agent: { id: agentId, name: me?.name, mode: me?.mode },
  });
  process.stdout.write(
    `\nMominAI backend is up: open ${baseUrl}/ for the IDE page.\n  API:     ${baseUrl}/api\n  Health:  ${baseUrl}/health\n  Agent:   ${me?.name} (${me?.mode} mode${me?.mode === 'local' ? ': NO ISOLATION' : ''})\n  State:   ${stateDir}\nPress Ctrl-C to stop.\n\n`,
  );
} catch (err) {
  process.stderr.write(`the agent has not connected yet: ${err instanceof Error ? err.message : String(err)}\n`);
}
