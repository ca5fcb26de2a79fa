/**
 * Agent sockets. The join token is checked here, before any Durable Object
 * sees the request: its signature, type, audience and expiry, then that the
 * agent it names is registered and neither revoked nor expired (D1, see
 * ../fleet/agent-store.ts). A refusal is a plain 401 with the error body,
 * which the agent logs as the reason.
 *   GET /agent/connect               the control socket (Fleet DO)
 *   GET /agent/sessions/:sessionId   a session's data socket (Session DO); the
 *                                    session must be placed on this agent.
 */
import { Hono, type Context } from 'hono';
import { AppError, ErrorCode } from '../../shared/errors';
import { verifyToken } from '../auth/tokens';
import { loadConfig } from '../config';
import { openAgentStore } from '../fleet/agent-store';
import type { AppEnv } from '../env';
import { internalUpgrade, sessionUpgrade } from '../relay/upgrade';
import { fleetOf, sessionOf } from './containers';

export const agentRoutes = new Hono<AppEnv>();

const refusals = {
  unknown: 'agent not registered: make its token with npm run agent:token',
  revoked: 'agent token revoked',
  expired: 'agent registration expired: make a new token with npm run agent:token',
} as const;

async function verifyAgent(c: Context<AppEnv>): Promise<{ agentId: string; name: string }> {
  const config = loadConfig(c.env);
  const header = c.req.header('Authorization') ?? '';
  const match = /^Bearer\s+(\S+)$/i.exec(header);
  if (!match?.[1]) throw new AppError(ErrorCode.Unauthorized, 'agent token missing: send Authorization: Bearer <token>');
  const { sub, payload } = await verifyToken(config.agentSecret, 'agent', match[1]);
  const standing = await (await openAgentStore(c.env.DB)).standing(sub);
  if (standing !== 'active') throw new AppError(ErrorCode.InvalidToken, refusals[standing]);
  if (c.req.header('Upgrade')?.toLowerCase() !== 'websocket') {
    throw new AppError(ErrorCode.BadRequest, 'expected a WebSocket upgrade');
  }
  return { agentId: sub, name: typeof payload.name === 'string' ? payload.name.slice(0, 64) : sub };
}

agentRoutes.get('/connect', async (c) => {
  const { agentId, name } = await verifyAgent(c);
  return fleetOf(c.env).fetch(internalUpgrade(c.req.raw, { 'X-Agent-Id': agentId, 'X-Agent-Name': name }));
});

agentRoutes.get('/sessions/:sessionId', async (c) => {
  const { agentId } = await verifyAgent(c);
  const sessionId = c.req.param('sessionId');
  const stub = sessionOf(c.env, sessionId);
  const placed = await fleetOf(c.env).getSession(sessionId);
  if (!placed) throw new AppError(ErrorCode.NotFound, 'no such session');
  if (placed.agentId !== agentId) throw new AppError(ErrorCode.Forbidden, 'this session is placed on another agent');
  return stub.fetch(sessionUpgrade(c.req.raw, { kind: 'agent', agentId }));
});
