/**
 * `/api/admin/*`: the operator's routes (OPERATOR_TOKEN or an operator JWT, see
 * ../auth/operator.ts).
 *   GET  /api/admin/agents                  registered agents with their load
 *   POST /api/admin/agents {name, id?, ttl?} registers an agent (or renews an id) → {agent, token}
 *   POST /api/admin/agents/:idOrName/revoke revokes it; its sockets close at once
 *   POST /api/admin/agents/:id/drain        no new sessions placed there; running ones go on
 *   POST /api/admin/agents/:id/undrain      placements resume
 * The edge mints agent tokens itself, so AGENT_SECRET never leaves it: an
 * operator needs only the edge's URL and the operator token
 * (`npm run agent:token`, `npm run agent:revoke`).
 */
import { Hono } from 'hono';
import { z } from 'zod';
import { AppError, ErrorCode } from '../../shared/errors';
import { signToken } from '../auth/tokens';
import { loadConfig, parseDurationSeconds } from '../config';
import type { AppEnv } from '../env';
import { AGENT_ID_PATTERN, AGENT_NAME_PATTERN, openAgentStore } from '../fleet/agent-store';
import { log } from '../log';
import { requireOperator } from '../middleware/auth';
import { jsonBody } from '../middleware/validate';
import { unwrap } from '../relay/rpc-result';
import { fleetOf } from './containers';

/** Agent tokens live 90 days unless asked otherwise; from a minute to ten years. */
export const AGENT_TTL_DEFAULT = '90d';
const TTL_MIN_SECONDS = 60;
const TTL_MAX_SECONDS = 3650 * 86_400;

export const RegisterAgentBody = z.object({
  name: z.string().regex(AGENT_NAME_PATTERN, 'a name is 1-64 of A-Z a-z 0-9 _ . -'),
  id: z.string().regex(AGENT_ID_PATTERN, 'an agent id is agt_ followed by 8-64 hex digits').optional(),
  ttl: z
    .union([z.string().max(16), z.number().int()])
    .optional()
    .transform((v, ctx) => {
      const seconds = parseDurationSeconds(String(v ?? AGENT_TTL_DEFAULT));
      if (seconds === undefined || seconds < TTL_MIN_SECONDS || seconds > TTL_MAX_SECONDS) {
        ctx.addIssue({ code: 'custom', message: 'ttl is seconds or a duration like 30m, 24h or 90d, from 60 s to 3650 d' });
        return z.NEVER;
      }
      return seconds;
    }),
});

export const adminRoutes = new Hono<AppEnv>();
adminRoutes.use('*', requireOperator());

adminRoutes.get('/agents', async (c) => {
  const [registered, loads] = await Promise.all([(await openAgentStore(c.env.DB)).list(), fleetOf(c.env).agentLoads()]);
  const loadById = new Map(loads.map((l) => [l.id, l]));
  const ids = [...new Set([...registered.map((r) => r.id), ...loads.map((l) => l.id)])];
  const registration = new Map(registered.map((r) => [r.id, r]));
  const agents = ids.map((id) => {
    const r = registration.get(id);
    const load = loadById.get(id);
    return {
      id,
      name: r?.name ?? load?.name ?? id,
      // Null for an agent the Fleet remembers but the registry does not know: it cannot join again.
      createdAt: r?.createdAt ?? null,
      expiresAt: r?.expiresAt ?? null,
      revokedAt: r?.revokedAt ?? null,
      mode: load?.mode ?? null,
      connected: load?.connected ?? false,
      draining: load?.draining ?? false,
      lastSeen: load?.lastSeen ?? null,
      capacity: load?.capacity ?? null,
      running: load?.running ?? 0,
      sessions: load?.sessions ?? 0,
      free: load?.free ?? 0,
    };
  });
  return c.json({ agents });
});

adminRoutes.post('/agents', jsonBody(RegisterAgentBody), async (c) => {
  const body = c.req.valid('json');
  const now = new Date();
  const store = await openAgentStore(c.env.DB);
  const agent = await store.register({ name: body.name, ttlSeconds: body.ttl, ...(body.id ? { id: body.id } : {}) }, now);
  // The token's exp and the registration's expiry come from the same instant (exp is whole seconds, so up to 1 s earlier).
  const token = await signToken({
    secret: loadConfig(c.env).agentSecret,
    typ: 'agent',
    sub: agent.id,
    ttlSeconds: body.ttl,
    claims: { name: agent.name },
    now: now.getTime(),
  });
  log('info', 'agent registered', { agentId: agent.id, name: agent.name, expiresAt: agent.expiresAt });
  return c.json({ agent, token }, 201);
});

adminRoutes.post('/agents/:idOrName/revoke', async (c) => {
  const revoked = await (await openAgentStore(c.env.DB)).revoke(c.req.param('idOrName'));
  await fleetOf(c.env).revokeAgents(revoked.map((a) => a.id));
  log('warn', 'agent revoked', { agents: revoked.map((a) => a.id) });
  return c.json({ revoked });
});

for (const [action, draining] of [['drain', true], ['undrain', false]] as const) {
  adminRoutes.post(`/agents/:agentId/${action}`, async (c) => {
    const agentId = c.req.param('agentId');
    if (!AGENT_ID_PATTERN.test(agentId)) throw new AppError(ErrorCode.NotFound, `no agent ${agentId}`);
    const agent = await unwrap(fleetOf(c.env).setDraining(agentId, draining));
    return c.json({ agent });
  });
}
