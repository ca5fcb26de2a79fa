/** `GET /health`: the seed's shape plus the fleet's agents. */
import { Hono } from 'hono';
import { loadConfig } from '../config';
import type { AppEnv } from '../env';

export const healthRoutes = new Hono<AppEnv>();
const isolateStarted = Date.now();

healthRoutes.get('/', async (c) => {
  const config = loadConfig(c.env);
  const fleet = c.env.FLEET.get(c.env.FLEET.idFromName('fleet'));
  const [agents, counts, details] = await Promise.all([fleet.listAgents(), fleet.sessionCounts(), fleet.containerDetails()]);
  const connected = agents.filter((a) => a.connected);
  const dockerAgents = connected.filter((a) => a.mode === 'docker');
  return c.json({
    status: connected.length > 0 ? 'ok' : 'degraded',
    timestamp: new Date().toISOString(),
    uptime: Math.round((Date.now() - isolateStarted) / 1000),
    sessions: counts,
    containers: {
      total: details.length,
      docker: dockerAgents.length > 0,
      dockerStatus: dockerAgents.length > 0 ? 'available' : connected.length > 0 ? 'unavailable (local mode, no isolation)' : 'no agent',
      details,
    },
    previews: { active: connected.reduce((n, a) => n + a.activePreviews, 0) },
    config: {
      environment: config.production ? 'production' : 'development',
      heartbeatIntervalMs: config.heartbeatIntervalMs,
    },
    system: {
      runtime: 'workerd',
      agentsConnected: connected.length,
      agentsKnown: agents.length,
      cpus: connected.reduce((n, a) => n + (a.system?.cpus ?? 0), 0),
      memTotal: connected.reduce((n, a) => n + (a.system?.memTotal ?? 0), 0),
      memFree: connected.reduce((n, a) => n + (a.system?.memFree ?? 0), 0),
    },
    agents: agents.map((a) => ({
      id: a.id,
      name: a.name,
      mode: a.mode,
      connected: a.connected,
      capacity: { maxSessions: a.capacity.maxSessions, activeSessions: a.activeSessions },
      lastSeen: a.lastSeen === null ? null : new Date(a.lastSeen).toISOString(),
      system: a.system,
      docker: a.docker,
      isolation: a.mode === 'docker' ? 'container' : 'none',
    })),
  });
});
