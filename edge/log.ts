/**
 * Structured logs for the edge: one JSON object a line, with a level; and the
 * request log, one line per request (method, route, status, duration, request
 * id), counted in Workers Analytics Engine too when the ANALYTICS binding is
 * configured. LOG_LEVEL sets the level; DEBUG=* (or DEBUG=mominai…) turns on
 * debug, as on the agent.
 */
import type { Context, MiddlewareHandler } from 'hono';
import { routePath } from 'hono/route';
import { newId } from '../shared/ids';

export type Level = 'debug' | 'info' | 'warn' | 'error';
const order: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

let threshold: Level = 'info';
export function setLogLevel(level: string | undefined): void {
  if (level === 'debug' || level === 'info' || level === 'warn' || level === 'error') threshold = level;
}

/** The level the Worker's vars ask for: DEBUG=* or DEBUG=mominai… means debug, else LOG_LEVEL, else info. */
export function levelFromVars(vars: { LOG_LEVEL?: unknown; DEBUG?: unknown }): Level {
  const debug = typeof vars.DEBUG === 'string' ? vars.DEBUG : '';
  if (debug === '*' || /(^|,)mominai/.test(debug)) return 'debug';
  const level = typeof vars.LOG_LEVEL === 'string' ? vars.LOG_LEVEL.toLowerCase() : 'info';
  return level in order ? (level as Level) : 'info';
}

export function log(level: Level, msg: string, fields: Record<string, unknown> = {}): void {
  if (order[level] < order[threshold]) return;
  const line = JSON.stringify({ time: new Date().toISOString(), level, component: 'edge', msg, ...fields });
  if (level === 'error') console.error(line);
  else if (level === 'warn') console.warn(line);
  else console.log(line);
}

/** The part of a Workers Analytics Engine dataset binding the request log uses. */
interface DataPointWriter {
  writeDataPoint(point: { blobs?: string[]; doubles?: number[]; indexes?: string[] }): void;
}

function analyticsOf(env: unknown): DataPointWriter | undefined {
  const binding = (env as { ANALYTICS?: unknown } | undefined)?.ANALYTICS;
  return typeof (binding as DataPointWriter | undefined)?.writeDataPoint === 'function' ? (binding as DataPointWriter) : undefined;
}

export interface RequestLogOptions {
  /** Clock in ms (tests pass their own). */
  now?: () => number;
}

/**
 * Outermost middleware: gives every request an id (the client's X-Request-Id
 * when it sent a usable one, else a new one) as `requestId`, and once the
 * response is ready writes one `request` line: method, route (the matched
 * pattern, so ids in paths do not spread into the logs), status, durationMs,
 * requestId. Server errors log at error, client errors at warn, the rest at
 * info. With an ANALYTICS binding the same figures become a data point
 * (blobs: method, route, status class, status; doubles: duration, 1; index:
 * route); without one nothing else happens.
 */
export function requestLog({ now = () => Date.now() }: RequestLogOptions = {}): MiddlewareHandler<{ Variables: { requestId: string } }> {
  return async function requestLogger(c, next) {
    const started = now();
    setLogLevel(levelFromVars((c.env ?? {}) as Record<string, unknown>));
    const given = c.req.header('X-Request-Id');
    c.set('requestId', given && /^[\w.:-]{1,64}$/.test(given) ? given : newId('req', 8));
    await next();
    const status = c.res.status;
    const durationMs = now() - started;
    const route = matchedRoute(c);
    log(status >= 500 ? 'error' : status >= 400 ? 'warn' : 'info', 'request', {
      method: c.req.method,
      route,
      status,
      durationMs,
      requestId: c.get('requestId'),
    });
    try {
      analyticsOf(c.env)?.writeDataPoint({
        blobs: [c.req.method, route, `${Math.floor(status / 100)}xx`, String(status)],
        doubles: [durationMs, 1],
        indexes: [route],
      });
    } catch (err) {
      log('warn', 'analytics data point not written', { error: err instanceof Error ? err.message : String(err) });
    }
  };
}

/** The pattern of the handler that answered (e.g. /api/containers/:sessionId), or the path's first segment when none matched. */
function matchedRoute(c: Context): string {
  const route = routePath(c, -1);
  return route && route !== '*' && route !== '/*' ? route : `/${c.req.path.split('/')[1] ?? ''}${c.req.path.split('/').length > 2 ? '/*' : ''}`;
}
