/**
 * The real stack for end-to-end tests: the edge in workerd (`wrangler dev`, as
 * `npm start` runs it) and real agent processes, each in a fresh STATE_DIR on
 * a free loopback port. Everything started here is stopped by `stop()`.
 */
import fs from 'node:fs';
import Docker from 'dockerode';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { newId } from '../../shared/ids';
import { signToken } from '../../edge/auth/tokens';
import { registerAgent } from '../../scripts/lib/admin-client';
import { spawnAgent, spawnEdge, waitForHealth, type EdgeRunner, type Health, type Managed } from '../../scripts/lib/stack';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

export interface TestAgent {
  id: string;
  name: string;
  proc: Managed;
  logs: string[];
  /** Resolves with the first log line (parsed) that matches. */
  waitForLog(pred: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
}

export interface StackOptions {
  edgeVars?: Record<string, string>;
  debug?: boolean;
  /** What runs the edge Worker; EDGE_RUNNER or `wrangler` when unset (see spawnEdge). */
  runner?: EdgeRunner;
  /** Another stack's state folder and secrets, to start an edge on what it left. */
  reuse?: { stateDir: string; secrets: StackSecrets };
}

export interface StackSecrets {
  AGENT_SECRET: string;
  JWT_SECRET: string;
  /** The operator's bearer token (full /health, /api/admin/*). */
  OPERATOR_TOKEN: string;
}

/** Removes whatever Docker objects the given agents made (containers by label, their networks). */
async function removeDockerLeftovers(agents: Array<{ id: string; name: string }>): Promise<void> {
  if (agents.length === 0) return;
  const docker = new Docker();
  try {
    await docker.ping();
  } catch {
    return;
  }
  const ids = new Set(agents.map((a) => a.id));
  for (const c of await docker.listContainers({ all: true, filters: { label: ['dev.mominai.agent'] } })) {
    if (ids.has(c.Labels['dev.mominai.agent'] ?? '')) await docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined);
  }
  for (const a of agents) await docker.getNetwork(`mominai-${a.name}`).remove().catch(() => undefined);
}

/** Stacks with a started edge, for the failure digest (./failure-digest.ts). */
export const liveStacks = new Set<TestStack>();

export class TestStack {
  readonly secrets: StackSecrets;
  readonly stateDir: string;
  port = 0;
  edge: Managed | undefined;
  edgeLogs: string[] = [];
  readonly agents: TestAgent[] = [];

  constructor(private readonly opts: StackOptions = {}) {
    this.stateDir = opts.reuse?.stateDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'mominai-test-'));
    this.secrets = opts.reuse?.secrets ?? {
      AGENT_SECRET: `test-agent-${'x'.repeat(24)}-${Math.random().toString(36).slice(2)}`,
      JWT_SECRET: `test-jwt-${'y'.repeat(24)}-${Math.random().toString(36).slice(2)}`,
      OPERATOR_TOKEN: `test-operator-${'z'.repeat(24)}-${Math.random().toString(36).slice(2)}`,
    };
  }

  get baseUrl(): string {
    return `http://127.0.0.1:${this.port}`;
  }
  get wsUrl(): string {
    return `ws://127.0.0.1:${this.port}`;
  }

  async startEdge(): Promise<void> {
    liveStacks.add(this);
    if (!this.port) this.port = await freePort();
    this.edge = spawnEdge({
      host: '127.0.0.1',
      port: this.port,
      inspectorPort: await freePort(),
      stateDir: this.stateDir,
      ...(this.opts.runner ? { runner: this.opts.runner } : {}),
      vars: { HEARTBEAT_INTERVAL_MS: '1000', ...this.opts.edgeVars, ...this.secrets },
      onOutput: (l) => {
        this.edgeLogs.push(l);
        if (this.opts.debug) process.stderr.write(`[edge] ${l}\n`);
      },
    });
    // wrangler dev bundles and starts two workerds: under a full suite on 2 cores that has taken
    // over 60 s. Wait nearly the hook's 120 s, but give up at once (with its output) if it exits.
    const edge = this.edge;
    const exited = edge.exited.then(({ code, signal }) => {
      throw new Error(`the edge exited (${code ?? signal}) before answering /health:\n${this.edgeLogs.slice(-20).join('\n')}`);
    });
    exited.catch(() => undefined); // a later exit (stop) is no error
    await Promise.race([waitForHealth(this.baseUrl, () => true, { timeoutMs: 110_000 }), exited]);
  }

  async stopEdge(): Promise<void> {
    await this.edge?.stop();
    this.edge = undefined;
  }

  /**
   * An agent join token. As an operator does it, by default: the agent is
   * registered with the edge (POST /api/admin/agents, so the edge must be up)
   * and the edge's token is returned. A token signed here instead, without
   * registering: with `register: false`, another `secret`, or an id that is
   * no agent id (tokens meant to be refused). `ttlSeconds` re-signs the
   * registered agent's token with that lifetime.
   */
  async agentToken(opts: { id?: string; name?: string; ttlSeconds?: number; secret?: string; register?: boolean } = {}): Promise<string> {
    const id = opts.id ?? newId('agt');
    const name = opts.name ?? 'test-agent';
    const register = opts.register !== false && opts.secret === undefined && /^agt_[0-9a-f]{8,64}$/.test(id);
    if (register) {
      const { token } = await registerAgent({ edgeUrl: this.baseUrl, operatorToken: this.secrets.OPERATOR_TOKEN }, { id, name });
      if (opts.ttlSeconds === undefined) return token;
    }
    return signToken({ secret: opts.secret ?? this.secrets.AGENT_SECRET, typ: 'agent', sub: id, claims: { name }, ttlSeconds: opts.ttlSeconds ?? 3600 });
  }

  /** The operator's Authorization header. */
  get operatorAuth(): { Authorization: string } {
    return { Authorization: `Bearer ${this.secrets.OPERATOR_TOKEN}` };
  }

  /** `nodeArgs`: what node runs (default agent/main.ts under tsx; see spawnAgent). */
  async startAgent(opts: { id?: string; name?: string; token?: string; env?: Record<string, string>; nodeArgs?: string[] } = {}): Promise<TestAgent> {
    const id = opts.id ?? newId('agt');
    const name = opts.name ?? `agent-${this.agents.length + 1}`;
    const token = opts.token ?? (await this.agentToken({ id, name }));
    const logs: string[] = [];
    const waiters = new Set<(line: Record<string, unknown>) => void>();
    const proc = spawnAgent({
      ...(opts.nodeArgs ? { nodeArgs: opts.nodeArgs } : {}),
      env: {
        EDGE_URL: this.wsUrl,
        AGENT_TOKEN: token,
        AGENT_NAME: name,
        STATE_DIR: this.stateDir,
        LOG_LEVEL: 'debug',
        ...opts.env,
      },
      onOutput: (l) => {
        logs.push(l);
        if (this.opts.debug) process.stderr.write(`[${name}] ${l}\n`);
        let parsed: Record<string, unknown>;
        try {
          parsed = JSON.parse(l) as Record<string, unknown>;
        } catch {
          return;
        }
        for (const w of waiters) w(parsed);
      },
    });
    const agent: TestAgent = {
      id,
      name,
      proc,
      logs,
      waitForLog(pred, timeoutMs = 30_000) {
        for (const l of logs) {
          try {
            const parsed = JSON.parse(l) as Record<string, unknown>;
            if (pred(parsed)) return Promise.resolve(parsed);
          } catch {
            // not JSON
          }
        }
        return new Promise((resolve, reject) => {
          const timer = setTimeout(() => {
            waiters.delete(check);
            reject(new Error(`timed out waiting for an agent log line; last lines:\n${logs.slice(-10).join('\n')}`));
          }, timeoutMs);
          const check = (line: Record<string, unknown>) => {
            if (!pred(line)) return;
            clearTimeout(timer);
            waiters.delete(check);
            resolve(line);
          };
          waiters.add(check);
        });
      },
    };
    this.agents.push(agent);
    return agent;
  }

  /** Removes the containers and networks this stack's agents made. */
  async removeContainers(): Promise<void> {
    await removeDockerLeftovers(this.agents);
  }

  health(until: (h: Health) => boolean, timeoutMs = 30_000): Promise<Health> {
    return waitForHealth(this.baseUrl, until, { timeoutMs, operatorToken: this.secrets.OPERATOR_TOKEN });
  }

  /** The warnings and errors the edge and the agents logged (the newest `max` of each). */
  digest(max = 30): string {
    // Request lines are warn for every 4xx, which refusal tests make by the hundred: only 5xx ones count.
    const notable = (lines: string[]) =>
      lines.filter((l) => /"level":"(warn|error)"|\b(warn|error|Error)\b/.test(l) && !/"msg":"request".*"status":4\d\d/.test(l)).slice(-max);
    const parts = [`edge :${this.port}`, ...notable(this.edgeLogs)];
    for (const a of this.agents) parts.push(`agent ${a.name} (${a.id})`, ...notable(a.logs));
    return parts.join('\n');
  }

  async stop(): Promise<void> {
    liveStacks.delete(this);
    await Promise.all(this.agents.map((a) => a.proc.stop()));
    await this.stopEdge();
    await this.removeContainers();
    fs.rmSync(this.stateDir, { recursive: true, force: true });
  }
}
