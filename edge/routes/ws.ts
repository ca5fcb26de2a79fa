/**
 * `GET /ws?token=<jwt>&sessionId=<id>[&output=text|binary]`: the client's session socket, served by
 * the session's Durable Object. A bad or missing token refuses the upgrade
 * with 401; `sessionId` may be left out when the user has exactly one session.
 */
import { Hono } from 'hono';
import { AppError, ErrorCode } from '../../shared/errors';
import { OutputFormat } from '../../shared/protocol/client';
import type { AppEnv } from '../env';
import { requireUser } from '../middleware/auth';
import { sessionUpgrade } from '../relay/upgrade';
import { requireSession } from '../fleet/cached';
import { fleetOf, sessionOf } from './containers';

export const wsRoutes = new Hono<AppEnv>();

wsRoutes.get('/', requireUser({ from: 'query' }), async (c) => {
  if (c.req.header('Upgrade')?.toLowerCase() !== 'websocket') {
    throw new AppError(ErrorCode.BadRequest, 'expected a WebSocket upgrade');
  }
  const { userId } = c.get('principal');
  let sessionId = c.req.query('sessionId');
  if (!sessionId) {
    const live = (await fleetOf(c.env).listSessions(userId)).filter((s) => s.status !== 'destroyed');
    if (live.length !== 1) {
      throw new AppError(ErrorCode.BadRequest, `sessionId is required when you have ${live.length} sessions`);
    }
    sessionId = live[0]!.id;
  }
  const output = OutputFormat.safeParse(c.req.query('output') ?? 'text');
  if (!output.success) throw new AppError(ErrorCode.ValidationFailed, 'output must be text or binary');
  const url = new URL(c.req.url);
  const origin = `${url.protocol === 'wss:' || url.protocol === 'https:' ? 'https:' : 'http:'}//${c.req.header('Host') ?? url.host}`;
  await requireSession(c.env, sessionId);
  return sessionOf(c.env, sessionId).fetch(sessionUpgrade(c.req.raw, { kind: 'client', userId, origin, output: output.data }));
});
