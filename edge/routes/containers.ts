/**
 * `/api/containers`: a user's container sessions. Placement happens in the
 * Fleet DO; each session's lifecycle in its own Session DO, which also checks
 * ownership (another user's session → 403, unknown → 404).
 */
import { Hono, type Context } from 'hono';
import { AppError, ErrorCode } from '../../shared/errors';
import { CreateContainerBody, ExecBody, PortVisibilityBody } from '../../shared/api/containers';
import { previewLink } from './preview';
import { newId } from '../../shared/ids';
import type { AppEnv, Env } from '../env';
import { requireSession } from '../fleet/cached';
import { requireUser } from '../middleware/auth';
import { jsonBody } from '../middleware/validate';
import { unwrap } from '../relay/rpc-result';
import type { SessionRecord } from '../session/record';
import { toView } from '../session/record';
import type { FileOp } from '../session/file-relay';
import { sessionSettings } from '../session/settings';

export const containerRoutes = new Hono<AppEnv>();
containerRoutes.use('*', requireUser());
// Only sessions the Fleet index knows reach a Session DO, so a stranger's random id creates no storage.
containerRoutes.use('/:sessionId/*', async (c, next) => {
  await requireSession(c.env, c.req.param('sessionId'));
  await next();
});

const sessionIdPattern = /^ses_[0-9a-f]{8,64}$/;

export function fleetOf(env: Env) {
  return env.FLEET.get(env.FLEET.idFromName('fleet'));
}

/**
 * Session DO ids by name, per namespace: idFromName hashes the name on every
 * call, and a preview under load asks for the same session hundreds of times a
 * second. Ids are plain values (no I/O), so they may outlive a request; stubs are not kept.
 */
const sessionIds = new WeakMap<Env['SESSION'], Map<string, DurableObjectId>>();
const SESSION_IDS_KEPT = 1024;

/** The Session DO for an id from a URL; malformed ids are simply not found. */
export function sessionOf(env: Env, sessionId: string) {
  if (!sessionIdPattern.test(sessionId)) throw new AppError(ErrorCode.NotFound, 'no such session');
  let ids = sessionIds.get(env.SESSION);
  if (!ids) sessionIds.set(env.SESSION, (ids = new Map()));
  let id = ids.get(sessionId);
  if (!id) {
    id = env.SESSION.idFromName(sessionId);
    // Oldest first out: Map keeps insertion order.
    if (ids.size >= SESSION_IDS_KEPT) ids.delete(ids.keys().next().value!);
    ids.set(sessionId, id);
  }
  return env.SESSION.get(id);
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
    ...(body.network ? { network: body.network } : {}),
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

/* ---- Files: forwarded to the Session DO as internal requests, bodies streamed ---- */

function workspacePathFrom(c: { req: { path: string } }, marker: string): string {
  const at = c.req.path.indexOf(marker);
  const raw = at >= 0 ? c.req.path.slice(at + marker.length) : '';
  let decoded: string;
  try {
    decoded = decodeURIComponent(raw);
  } catch {
    throw new AppError(ErrorCode.InvalidPath, 'the path is not valid percent-encoding');
  }
  if (/[\u0000-\u001f]/.test(decoded)) throw new AppError(ErrorCode.InvalidPath, 'paths may not contain NUL or control characters');
  return decoded === '' ? '/workspace' : decoded;
}

/** A file request, handed to the Session DO as it came (body streamed), with the user and the decoded path as typed arguments. */
async function forwardFileOp(c: Context<AppEnv>, op: FileOp, path: string): Promise<Response> {
  return sessionOf(c.env, c.req.param('sessionId') ?? '').fileRequest(c.get('principal').userId, op, path, c.req.raw);
}

containerRoutes.on(['GET', 'HEAD'], '/:sessionId/files/*', (c) => forwardFileOp(c, c.req.method === 'HEAD' ? 'head' : 'get', workspacePathFrom(c, '/files/')));
containerRoutes.get('/:sessionId/files', (c) => forwardFileOp(c, 'get', '/workspace'));
containerRoutes.put('/:sessionId/files/*', (c) => forwardFileOp(c, 'put', workspacePathFrom(c, '/files/')));
containerRoutes.delete('/:sessionId/files/*', (c) => forwardFileOp(c, 'delete', workspacePathFrom(c, '/files/')));
containerRoutes.post('/:sessionId/mkdir', (c) => forwardFileOp(c, 'mkdir', '/workspace'));
containerRoutes.post('/:sessionId/rename', (c) => forwardFileOp(c, 'rename', '/workspace'));
containerRoutes.get('/:sessionId/tar/*', (c) => forwardFileOp(c, 'tar-get', workspacePathFrom(c, '/tar/')));
containerRoutes.get('/:sessionId/tar', (c) => forwardFileOp(c, 'tar-get', '/workspace'));
containerRoutes.put('/:sessionId/tar/*', (c) => forwardFileOp(c, 'tar-put', workspacePathFrom(c, '/tar/')));
containerRoutes.put('/:sessionId/tar', (c) => forwardFileOp(c, 'tar-put', '/workspace'));

/* ---- Preview access ---- */

containerRoutes.get('/:sessionId/preview-url', async (c) => {
  const { userId } = c.get('principal');
  const sessionId = c.req.param('sessionId');
  await unwrap(sessionOf(c.env, sessionId).get(userId));
  const raw = c.req.query('port');
  const port = raw === undefined || raw === '' ? null : Number(raw);
  if (port !== null && !(Number.isInteger(port) && port >= 1 && port <= 65535)) throw new AppError(ErrorCode.ValidationFailed, 'port must be 1-65535');
  return c.json(await previewLink(c, sessionId, userId, port));
});

containerRoutes.post('/:sessionId/ports/:port', jsonBody(PortVisibilityBody), async (c) => {
  const port = Number(c.req.param('port'));
  if (!(Number.isInteger(port) && port >= 1 && port <= 65535)) throw new AppError(ErrorCode.ValidationFailed, 'port must be 1-65535');
  const session = await unwrap(sessionOf(c.env, c.req.param('sessionId')).setPortVisibility(c.get('principal').userId, port, c.req.valid('json').visibility));
  return c.json({ session, port, visibility: c.req.valid('json').visibility });
});
