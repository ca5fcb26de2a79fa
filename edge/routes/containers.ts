/**
 * `/api/containers`: a user's container sessions. Placement happens in the
 * Fleet DO; each session's lifecycle in its own Session DO, which also checks
 * ownership (another user's session → 403, unknown → 404).
 */
import { Hono } from 'hono';
import { AppError, ErrorCode } from '../../shared/errors';
import { CreateContainerBody, ExecBody } from '../../shared/api/containers';
import { newId } from '../../shared/ids';
import type { AppEnv, Env } from '../env';
import { requireUser } from '../middleware/auth';
import { jsonBody } from '../middleware/validate';
import { unwrap } from '../relay/rpc-result';
import type { SessionRecord } from '../session/record';
import { toView } from '../session/record';
import { sessionSettings } from '../session/settings';

export const containerRoutes = new Hono<AppEnv>();
containerRoutes.use('*', requireUser());

const sessionIdPattern = /^ses_[0-9a-f]{8,64}$/;

export function fleetOf(env: Env) {
  return env.FLEET.get(env.FLEET.idFromName('fleet'));
}

/** The Session DO for an id from a URL; malformed ids are simply not found. */
export function sessionOf(env: Env, sessionId: string) {
  if (!sessionIdPattern.test(sessionId)) throw new AppError(ErrorCode.NotFound, 'no such session');
  return env.SESSION.get(env.SESSION.idFromName(sessionId));
}

containerRoutes.post('/', jsonBody(CreateContainerBody), async (c) => {
  const body = c.req.valid('json');
  const { userId } = c.get('principal');
  const settings = sessionSettings(c.env);
  const id = newId('ses');
  const now = Date.now();
  const record: SessionRecord = {
    id,
    userId,
    agentId: '',
    name: body.name ?? id,
    image: body.image ?? settings.defaultImage,
    status: 'creating',
    ports: [...new Set(body.ports ?? [])],
    env: body.env ?? [],
    createdAt: now,
    lastActiveAt: now,
    limits: { cpu: 0, memory: 0 },
  };
  const { agentId } = await unwrap(fleetOf(c.env).placeSession(toView(record), userId, settings.maxSessionsPerUser));
  const session = await unwrap(sessionOf(c.env, id).create({ ...record, agentId }));
  return c.json({ session }, 201);
});

containerRoutes.get('/', async (c) => {
  const sessions = await fleetOf(c.env).listSessions(c.get('principal').userId);
  return c.json({ sessions });
});

containerRoutes.get('/:sessionId', async (c) => {
  const session = await unwrap(sessionOf(c.env, c.req.param('sessionId')).get(c.get('principal').userId));
  return c.json({ session });
});

containerRoutes.delete('/:sessionId', async (c) => {
  const result = await unwrap(sessionOf(c.env, c.req.param('sessionId')).destroy(c.get('principal').userId));
  return c.json({ message: 'Session deleted', session: result });
});

containerRoutes.post('/:sessionId/stop', async (c) => {
  const session = await unwrap(sessionOf(c.env, c.req.param('sessionId')).stop(c.get('principal').userId));
  return c.json({ session });
});

containerRoutes.post('/:sessionId/start', async (c) => {
  const session = await unwrap(sessionOf(c.env, c.req.param('sessionId')).start(c.get('principal').userId));
  return c.json({ session });
});

containerRoutes.post('/:sessionId/exec', jsonBody(ExecBody), async (c) => {
  const result = await unwrap(sessionOf(c.env, c.req.param('sessionId')).exec(c.get('principal').userId, c.req.valid('json')));
  return c.json(result);
});
