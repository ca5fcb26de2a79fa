/**
 * `npm start`: the whole system on this machine. Starts the edge (wrangler dev,
 * workerd, local D1 and Durable Objects under STATE_DIR), registers this
 * machine's agent with it (through the operator's /api/admin/agents, which
 * records it in the edge's D1 and mints its token; the agent keeps its id in
 * STATE_DIR/agent.json across starts), starts the agent (Docker when an
 * engine answers, else local mode), prints where everything is, and stops
 * both on Ctrl-C or SIGTERM. A child that dies on its own is restarted after a pause.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { decodeJwt } from 'jose';
import { Backoff } from '../shared/backoff';
import { newId } from '../shared/ids';
import { AdminError, registerAgent } from './lib/admin-client';
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
const storedAgentId = (() => {
  try {
    const id: unknown = JSON.parse(fs.readFileSync(agentFile, 'utf8')).id;
    return typeof id === 'string' && /^agt_[0-9a-f]{8,64}$/.test(id) ? id : undefined;
  } catch {
    return undefined;
  }
})();
let agentId: string = storedAgentId ?? newId('agt');
// The agent name is also the registry's: letters, digits, _ . - only.
const agentName = (env.AGENT_NAME || os.hostname()).replace(/[^\w.-]/g, '-').slice(0, 64) || 'agent';
let agentToken = env.AGENT_TOKEN ?? '';
if (agentToken) {
  // A token given from outside names its agent; wait for that one.
  try {
    const sub = decodeJwt(agentToken).sub;
    if (sub) agentId = sub;
  } catch {
    fail('AGENT_TOKEN is not a JWT: make one with npm run agent:token -- --name <name>');
  }
}

/** Registers (or renews) this machine's agent with the running edge; a revoked id is replaced by a new one. */
async function registerLocalAgent(): Promise<string> {
  const target = { edgeUrl: baseUrl, operatorToken: secrets!.OPERATOR_TOKEN };
  try {
    return (await registerAgent(target, { id: agentId, name: agentName })).token;
  } catch (err) {
    if (!(err instanceof AdminError && err.code === 'conflict')) throw err;
    say('this agent was revoked; registering a new one', { revoked: agentId });
    agentId = newId('agt');
    return (await registerAgent(target, { id: agentId, name: agentName })).token;
  }
}

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
if (!agentToken) {
  try {
    agentToken = await registerLocalAgent();
  } catch (err) {
    await edge.stop();
    fail(`could not register the agent with the edge: ${err instanceof Error ? err.message : String(err)}`);
  }
  fs.writeFileSync(agentFile, JSON.stringify({ id: agentId }) + '\n');
}
agent = startAgent();
try {
  const health = await waitForHealth(baseUrl, (h) => h.agents.some((a) => a.id === agentId && a.connected), {
    timeoutMs: 60_000,
    operatorToken: secrets!.OPERATOR_TOKEN,
  });
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
