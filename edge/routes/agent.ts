/**
 * `GET /agent/connect`: the agent's control socket. The join token is checked
 * here, before the Fleet DO sees the request; a refusal is a plain 401 with
 * the error body, which the agent logs as the reason.
 */
import { Hono } from 'hono';
import { AppError, ErrorCode } from '../../shared/errors';
import { verifyToken } from '../auth/tokens';
import { loadConfig } from '../config';
import type { AppEnv } from '../env';

export const agentRoutes = new Hono<AppEnv>();

agentRoutes.get('/connect', async (c) => {
  const config = loadConfig(c.env);
  const header = c.req.header('Authorization') ?? '';
  const match = /^Bearer\s+(\S+)$/i.exec(header);
  if (!match?.[1]) throw new AppError(ErrorCode.Unauthorized, 'agent token missing: send Authorization: Bearer <token>');
  const { sub, payload } = await verifyToken(config.agentSecret, 'agent', match[1]);
  if (c.req.header('Upgrade')?.toLowerCase() !== 'websocket') {
    throw new AppError(ErrorCode.BadRequest, 'expected a WebSocket upgrade');
  }
  const headers = new Headers(c.req.raw.headers);
  headers.set('X-Agent-Id', sub);
  headers.set('X-Agent-Name', typeof payload.name === 'string' ? payload.name.slice(0, 64) : sub);
  const fleet = c.env.FLEET.get(c.env.FLEET.idFromName('fleet'));
  return fleet.fetch(new Request(c.req.raw.url, { method: 'GET', headers }));
});
