/**
 * The agent's settings: read once from the environment at start-up, checked,
 * documented and frozen. A bad value stops the agent with a message naming
 * the variable and what was wrong.
 */
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { jsonText } from '../shared/json-text';
import { parseSize } from '../shared/sizes';
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
  /** NODE_ENV=production: no local mode by accident, no unenforced egress policy unless EGRESS_POLICY=off. */
  readonly production: boolean;
  /** STATE_DIR (.data): holds secrets.json, so workspaces must never contain it. */
  readonly stateDir: string;
  /** EGRESS_POLICY (on): `off` installs no egress rules (then /health says egress unenforced). */
  readonly egressPolicy: 'on' | 'off';
  /** EGRESS_ALLOW_CIDRS (none): private IPv4 ranges containers may reach anyway, e.g. a registry on the LAN. */
  readonly egressAllowCidrs: readonly string[];
  /** DEFAULT_NETWORK (internet): a session's network when its create names none; `none` is loopback only. */
  readonly defaultNetwork: 'internet' | 'none';
  /** CONTAINER_USER (1000:1000): uid:gid of sessions whose image has no non-root user. */
  readonly containerUser: { uid: number; gid: number };
  /** ALLOW_ROOT_CONTAINERS (off): `1` lets images whose only user is root run as root. */
  readonly allowRootContainers: boolean;
  /** ALLOWED_IMAGES (`node:*,$DEFAULT_IMAGE`): comma-separated patterns (`*` any characters) a session image must match. */
  readonly allowedImages: readonly string[];
  /** CONTAINER_RUNTIME (runc): the engine runtime of session containers; `runsc` runs them under gVisor. */
  readonly containerRuntime: string;
  /** MAX_PROCESSES_PER_SESSION (64): commands and terminals running at once in one session. */
  readonly maxProcessesPerSession: number;
  /** MAX_WATCHES_PER_SESSION (8192): workspace folders one session's watcher holds an inotify watch on (the host user's budget is shared). */
  readonly maxWatchesPerSession: number;
  /** MAX_PREVIEW_WAITS_PER_SESSION (8): concurrent `start_preview` waits for a port. */
  readonly maxPreviewWaitsPerSession: number;
  /** MAX_PREVIEW_SOCKETS_PER_SESSION (256): preview requests and WebSockets relayed at once for one session. */
  readonly maxPreviewSocketsPerSession: number;
  /** WORKSPACE_QUOTA (5g): workspace bytes past which writes get 507; at twice it the container is stopped. */
  readonly workspaceQuotaBytes: number;
  /** WORKSPACE_QUOTA_INTERVAL_MS (10000): how often each running session's workspace is measured. */
  readonly quotaIntervalMs: number;
  /** SESSION_DAEMON (auto): `auto` runs the session daemon in new containers whose image has Node ≥ 18; `off` uses docker exec for everything. */
  readonly sessionDaemon: 'auto' | 'off';
  /** WARM_POOL_SIZE (0): started containers of DEFAULT_IMAGE and the default limits kept for creates to claim. */
  readonly warmPoolSize: number;
  /** DEFAULT_IMAGE (node:20-bullseye): the image of sessions that name none (the edge's setting), so the warm pool's. */
  readonly defaultImage: string;
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
  const production = env.NODE_ENV === 'production';
  const workspaceBase = path.resolve(env.USER_WORKSPACE_BASE || path.join(stateDir, 'workspaces'));
  const secrets = path.join(stateDir, 'secrets.json');
  if (secrets === workspaceBase || secrets.startsWith(workspaceBase + path.sep)) {
    throw new ConfigError(`USER_WORKSPACE_BASE (${workspaceBase}) must not contain STATE_DIR's secrets.json: pick a folder inside or beside STATE_DIR`);
  }
  return Object.freeze({
    production,
    stateDir,
    ...sandboxSettings(env),
    edgeUrl,
    agentToken,
    agentId: tokenSubject(agentToken),
    agentName: (env.AGENT_NAME || os.hostname()).slice(0, 64),
    workspaceBase,
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

function sandboxSettings(env: NodeJS.ProcessEnv) {
  const egressPolicy = env.EGRESS_POLICY || 'on';
  if (egressPolicy !== 'on' && egressPolicy !== 'off') throw new ConfigError(`EGRESS_POLICY must be on or off, not "${egressPolicy}"`);
  const defaultNetwork = env.DEFAULT_NETWORK || 'internet';
  if (defaultNetwork !== 'internet' && defaultNetwork !== 'none') throw new ConfigError(`DEFAULT_NETWORK must be internet or none, not "${defaultNetwork}"`);
  const user = /^(\d{1,10}):(\d{1,10})$/.exec(env.CONTAINER_USER || '1000:1000');
  if (!user || Number(user[1]) === 0) throw new ConfigError(`CONTAINER_USER must be uid:gid with a uid other than 0, not "${env.CONTAINER_USER}"`);
  const sessionDaemon = env.SESSION_DAEMON || 'auto';
  if (sessionDaemon !== 'auto' && sessionDaemon !== 'off') throw new ConfigError(`SESSION_DAEMON must be auto or off, not "${sessionDaemon}"`);
  const containerRuntime = env.CONTAINER_RUNTIME || 'runc';
  if (!/^[a-z][a-z0-9_-]{0,31}$/.test(containerRuntime)) throw new ConfigError(`CONTAINER_RUNTIME must be a runtime name like runc or runsc, not "${containerRuntime}"`);
  const defaultImage = env.DEFAULT_IMAGE || 'node:20-bullseye';
  if (!/^[A-Za-z0-9][A-Za-z0-9._\-/:@+]{0,254}$/.test(defaultImage)) throw new ConfigError(`DEFAULT_IMAGE must be an image reference like node:20-bullseye, not "${defaultImage}"`);
  const allowedImages = (env.ALLOWED_IMAGES || `node:*,${defaultImage}`)
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);
  for (const p of allowedImages) {
    if (!/^[A-Za-z0-9*][A-Za-z0-9._\-/:@+*]{0,254}$/.test(p)) throw new ConfigError(`ALLOWED_IMAGES holds "${p}", which is not an image pattern`);
  }
  return {
    egressPolicy,
    egressAllowCidrs: (env.EGRESS_ALLOW_CIDRS ?? '').split(',').map((c) => c.trim()).filter(Boolean).map(checkCidr),
    defaultNetwork,
    containerUser: { uid: Number(user[1]), gid: Number(user[2]) },
    allowRootContainers: /^(1|true|yes)$/i.test(env.ALLOW_ROOT_CONTAINERS ?? ''),
    allowedImages: Object.freeze(allowedImages),
    containerRuntime,
    sessionDaemon,
    maxProcessesPerSession: intFrom(env, 'MAX_PROCESSES_PER_SESSION', 64, 1, 10_000),
    maxWatchesPerSession: intFrom(env, 'MAX_WATCHES_PER_SESSION', 8192, 1, 1_000_000),
    maxPreviewWaitsPerSession: intFrom(env, 'MAX_PREVIEW_WAITS_PER_SESSION', 8, 1, 10_000),
    maxPreviewSocketsPerSession: intFrom(env, 'MAX_PREVIEW_SOCKETS_PER_SESSION', 256, 1, 100_000),
    workspaceQuotaBytes: parseBytes('WORKSPACE_QUOTA', env.WORKSPACE_QUOTA || '5g', 1024 * 1024),
    quotaIntervalMs: intFrom(env, 'WORKSPACE_QUOTA_INTERVAL_MS', 10_000, 100, 3_600_000),
    warmPoolSize: intFrom(env, 'WARM_POOL_SIZE', 0, 0, 100),
    defaultImage,
  } as const;
}

function checkCidr(raw: string): string {
  const m = /^(\d{1,3}(?:\.\d{1,3}){3})\/(\d{1,2})$/.exec(raw);
  if (!m?.[1] || !net.isIPv4(m[1]) || Number(m[2]) > 32) throw new ConfigError(`EGRESS_ALLOW_CIDRS holds "${raw}", which is not an IPv4 CIDR like 10.1.2.0/24`);
  return raw;
}

/** The claims of an agent token's payload, as far as its subject. */
const TokenClaims = jsonText(z.object({ sub: z.unknown() }));

function tokenSubject(token: string): string {
  const payload = token.split('.')[1];
  if (!payload) return '';
  const claims = TokenClaims.safeParse(Buffer.from(payload, 'base64url').toString('utf8'));
  const sub = claims.success ? claims.data.sub : undefined;
  return typeof sub === 'string' && /^[\w.-]{1,64}$/.test(sub) ? sub : '';
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
  const bytes = parseSize(raw);
  if (bytes === undefined) throw new ConfigError(`${name} must be a size like 512m or 2g, not "${raw}"`);
  if (bytes < min) throw new ConfigError(`${name} must be at least ${min} bytes`);
  return bytes;
}
