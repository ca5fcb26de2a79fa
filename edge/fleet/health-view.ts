/**
 * The two views of `GET /health`. Anyone gets the quiet one: the seed's keys
 * with counts and a status only (no session or user ids, no host names, no
 * versions, nothing that says which agent runs without isolation). The
 * operator gets the full one. Plain functions over one Fleet snapshot.
 */
import type { ContainerFigures } from '../../shared/protocol/tunnel';
import { effectiveCapacity, type PlacementLimits } from './placement';
import type { AgentView } from './registry';

export interface FleetSnapshot {
  agents: AgentView[];
  /** Live sessions (not destroyed) and the running ones among them. */
  sessions: { total: number; active: number };
  /** What connected agents last reported per container. */
  containers: Array<ContainerFigures & { agentId: string }>;
}

export interface HealthContext {
  production: boolean;
  heartbeatIntervalMs: number;
  uptimeSeconds: number;
  now: Date;
  limits: PlacementLimits;
}

function common(s: FleetSnapshot, ctx: HealthContext) {
  const connected = s.agents.filter((a) => a.connected);
  return {
    status: connected.length > 0 ? 'ok' : 'degraded',
    timestamp: ctx.now.toISOString(),
    uptime: ctx.uptimeSeconds,
    sessions: s.sessions,
    connected,
  };
}

/** What anyone may see: counts and status. */
export function quietHealth(s: FleetSnapshot, ctx: HealthContext) {
  const { connected, ...head } = common(s, ctx);
  const byState = new Map<string, number>();
  for (const c of s.containers) byState.set(c.state, (byState.get(c.state) ?? 0) + 1);
  return {
    ...head,
    containers: {
      total: s.containers.length,
      // Whether sessions are isolated is the operator's to know (Authorization: Bearer <OPERATOR_TOKEN>).
      docker: null,
      dockerStatus: 'hidden',
      details: [...byState].sort(([a], [b]) => a.localeCompare(b)).map(([state, count]) => ({ state, count })),
    },
    previews: { active: connected.reduce((n, a) => n + a.activePreviews, 0) },
    config: { environment: ctx.production ? 'production' : 'development', heartbeatIntervalMs: ctx.heartbeatIntervalMs },
    system: { runtime: 'workerd', agentsConnected: connected.length, agentsKnown: s.agents.length },
    agents: [] as never[],
  };
}

/** The operator's view: every agent with its host figures, versions, mode and load. */
export function fullHealth(s: FleetSnapshot, ctx: HealthContext) {
  const { connected, ...head } = common(s, ctx);
  const dockerAgents = connected.filter((a) => a.mode === 'docker');
  return {
    ...head,
    containers: {
      total: s.containers.length,
      docker: dockerAgents.length > 0,
      dockerStatus: dockerAgents.length > 0 ? 'available' : connected.length > 0 ? 'unavailable (local mode, no isolation)' : 'no agent',
      details: s.containers,
    },
    previews: { active: connected.reduce((n, a) => n + a.activePreviews, 0) },
    config: { environment: ctx.production ? 'production' : 'development', heartbeatIntervalMs: ctx.heartbeatIntervalMs, ...ctx.limits },
    system: {
      runtime: 'workerd',
      agentsConnected: connected.length,
      agentsKnown: s.agents.length,
      cpus: connected.reduce((n, a) => n + (a.system?.cpus ?? 0), 0),
      memTotal: connected.reduce((n, a) => n + (a.system?.memTotal ?? 0), 0),
      memFree: connected.reduce((n, a) => n + (a.system?.memFree ?? 0), 0),
    },
    agents: s.agents.map((a) => ({
      id: a.id,
      name: a.name,
      version: a.version,
      mode: a.mode,
      connected: a.connected,
      draining: a.draining,
      capacity: { maxSessions: effectiveCapacity(a.capacity.maxSessions, ctx.limits), claimed: a.capacity.maxSessions, activeSessions: a.activeSessions },
      lastSeen: a.lastSeen === null ? null : new Date(a.lastSeen).toISOString(),
      system: a.system,
      docker: a.docker,
      isolation: a.mode === 'docker' ? 'container' : 'none',
    })),
  };
}
