/**
 * The agent's settings: read once from the environment at start-up, checked,
 * documented and frozen. A bad value stops the agent with a message naming
 * the variable and what was wrong.
 */
import os from 'node:os';
import path from 'node:path';
import { levelFromEnv, type Level } from './logger';

export interface AgentConfig {
  /** EDGE_URL (ws://127.0.0.1:3001): the edge to dial; http(s) is turned into ws(s). */
  readonly edgeUrl: string;
  /** AGENT_TOKEN (required): join token from `npm run agent:token`. */
  readonly agentToken: string;
  /**
   * The id the edge knows this agent by: the `sub` of AGENT_TOKEN, read here without
   * verifying (the edge verifies). Labels this agent's containers. Empty when the token has none.
   */
  readonly agentId: string;
  /** AGENT_NAME (host name): shown in /health. */
  readonly agentName: string;
  /** USER_WORKSPACE_BASE ($STATE_DIR/workspaces): host folder holding <userId>/<sessionId> workspaces. */
  readonly workspaceBase: string;
  /** MAX_SESSIONS (50): sessions this agent accepts. */
  readonly maxSessions: number;
  /** CONTAINER_CPU_LIMIT (0.5): CPUs per container. */
  readonly cpuLimit: number;
  /** CONTAINER_MEMORY_LIMIT (512m): memory per container, bytes or with k/m/g. */
  readonly memoryLimitBytes: number;
  /** CONTAINER_PIDS_LIMIT (512): processes per container (a fork bomb stops there). */
  readonly pidsLimit: number;
  /** MAX_FILE_SIZE (512m): largest file a write or upload may produce. */
  readonly maxFileSize: number;
  /** KEEP_WORKSPACES (off): keep a session's workspace folder when the session is deleted. */
  readonly keepWorkspaces: boolean;
  /** IMAGE_PULL_TIMEOUT_MS (60000): longest a create waits for an image pull before failing with image_not_found. */
  readonly imagePullTimeoutMs: number;
  /** AGENT_RUNTIME (auto): docker, local, or auto (Docker when the engine answers). */
  readonly runtime: 'auto' | 'docker' | 'local';
  /** DOCKER_HOST (unset: /var/run/docker.sock): the engine's socket. */
  readonly dockerHost: string | undefined;
  /** LOG_LEVEL (info) or DEBUG=*. */
  readonly logLevel: Level;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

export function loadAgentConfig(env: NodeJS.ProcessEnv = process.env): AgentConfig {
  const stateDir = path.resolve(env.STATE_DIR || '.data');
  const edgeUrl = toWsUrl(env.EDGE_URL || 'ws://127.0.0.1:3001');
  const agentToken = env.AGENT_TOKEN ?? '';
  if (!agentToken) throw new ConfigError('AGENT_TOKEN is required: create one with `npm run agent:token -- --name <name>`');
  const runtime = env.AGENT_RUNTIME || 'auto';
  if (runtime !== 'auto' && runtime !== 'docker' && runtime !== 'local') {
    throw new ConfigError(`AGENT_RUNTIME must be auto, docker or local, not "${runtime}"`);
  }
  return Object.freeze({
    edgeUrl,
    agentToken,
    agentId: tokenSubject(agentToken),
    agentName: (env.AGENT_NAME || os.hostname()).slice(0, 64),
    workspaceBase: path.resolve(env.USER_WORKSPACE_BASE || path.join(stateDir, 'workspaces')),
    maxSessions: intFrom(env, 'MAX_SESSIONS', 50, 0, 10_000),
    cpuLimit: numberFrom(env, 'CONTAINER_CPU_LIMIT', 0.5, 0.01, 256),
    memoryLimitBytes: parseBytes('CONTAINER_MEMORY_LIMIT', env.CONTAINER_MEMORY_LIMIT || '512m'),
    imagePullTimeoutMs: intFrom(env, 'IMAGE_PULL_TIMEOUT_MS', 60_000, 1000, 3_600_000),
    pidsLimit: intFrom(env, 'CONTAINER_PIDS_LIMIT', 512, 16, 1_000_000),
    keepWorkspaces: /^(1|true|yes)$/i.test(env.KEEP_WORKSPACES ?? ''),
    maxFileSize: parseBytes('MAX_FILE_SIZE', env.MAX_FILE_SIZE || '512m', 1),
    runtime,
    dockerHost: env.DOCKER_HOST || undefined,
    logLevel: levelFromEnv(env),
  });
}

function tokenSubject(token: string): string {
  const payload = token.split('.')[1];
  if (!payload) return '';
  try {
    const sub = (JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { sub?: unknown }).sub;
    return typeof sub === 'string' && /^[\w.-]{1,64}$/.test(sub) ? sub : '';
  } catch {
    return '';
  }
}

function toWsUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(`EDGE_URL is not a URL: "${raw}"`);
  }
  if (url.protocol === 'http:') url.protocol = 'ws:';
  else if (url.protocol === 'https:') url.protocol = 'wss:';
  else if (url.protocol !== 'ws:' && url.protocol !== 'wss:') throw new ConfigError('EDGE_URL must be ws(s):// or http(s)://');
  return url.toString().replace(/\/$/, '');
}

function intFrom(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const n = numberFrom(env, name, fallback, min, max);
  if (!Number.isInteger(n)) throw new ConfigError(`${name} must be a whole number`);
  return n;
}

function numberFrom(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min || n > max) throw new ConfigError(`${name} must be a number from ${min} to ${max}, not "${raw}"`);
  return n;
}

export function parseBytes(name: string, raw: string, min = 6 * 1024 * 1024): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmg]?)b?$/i.exec(raw.trim());
  if (!m?.[1]) throw new ConfigError(`${name} must be a size like 512m or 2g, not "${raw}"`);
  const unit = (m[2] ?? '').toLowerCase();
  const mult = unit === 'g' ? 1024 ** 3 : unit === 'm' ? 1024 ** 2 : unit === 'k' ? 1024 : 1;
  const bytes = Math.floor(Number(m[1]) * mult);
  if (bytes < min) throw new ConfigError(`${name} must be at least ${min} bytes`);
  return bytes;
}
