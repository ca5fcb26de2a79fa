/**
 * `GET /health`: the seed's shape. Anyone gets counts and a status (a quiet
 * view that names no session, user, host, version or agent mode); the
 * operator (`Authorization: Bearer <OPERATOR_TOKEN>` or an operator JWT) gets
 * every agent and container. The anonymous answer comes from a Fleet snapshot
 * this isolate reuses for about a second; the operator's is always fresh.
 */
import { Hono } from 'hono';
import { loadConfig } from '../config';
import type { AppEnv } from '../env';
import { cachedSnapshot } from '../fleet/cached';
import { fullHealth, quietHealth, type HealthContext } from '../fleet/health-view';
import { isOperator } from '../middleware/auth';
import { fleetOf } from './containers';

export const healthRoutes = new Hono<AppEnv>();
const isolateStarted = Date.now();

healthRoutes.get('/', async (c) => {
  const config = loadConfig(c.env);
  const operator = await isOperator(c.env, c.req.header('Authorization'));
  const ctx: HealthContext = {
    production: config.production,
    heartbeatIntervalMs: config.heartbeatIntervalMs,
    uptimeSeconds: Math.round((Date.now() - isolateStarted) / 1000),
    now: new Date(),
    limits: { agentMaxSessions: config.agentMaxSessions, allowLocalAgents: config.allowLocalAgents },
  };
  if (operator) return c.json(fullHealth(await fleetOf(c.env).healthSnapshot(), ctx));
  return c.json(quietHealth(await cachedSnapshot(c.env), ctx));
});
