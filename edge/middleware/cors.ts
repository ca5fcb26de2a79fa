/**
 * CORS for browser clients, limited to CORS_ORIGINS (see ../config.ts for the
 * default). An allowed origin is echoed back; any other gets no
 * Access-Control-Allow-Origin, so the browser refuses to share the response.
 * Preflights are answered here (204) and go no further: they are not
 * rate limited and reach no route. Credentials (cookies) are not allowed; the
 * API uses bearer tokens.
 */
import type { Context, MiddlewareHandler } from 'hono';
import { cors } from 'hono/cors';
import { loadConfig } from '../config';
import type { AppEnv } from '../env';
import { originAllowed } from '../http/origins';

export interface ApiCorsOptions {
  /** Preflight cache lifetime in seconds. */
  maxAgeSeconds?: number;
}

export function apiCors({ maxAgeSeconds = 600 }: ApiCorsOptions = {}): MiddlewareHandler<AppEnv> {
  const handler = cors({
    origin: (origin, c) => (originAllowed(origin, loadConfig((c as Context<AppEnv>).env).corsOrigins) ? origin : null),
    allowMethods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'],
    allowHeaders: ['Authorization', 'Content-Type', 'X-Request-Id'],
    exposeHeaders: ['RateLimit-Limit', 'RateLimit-Remaining', 'RateLimit-Reset', 'Retry-After', 'X-Request-Id'],
    maxAge: maxAgeSeconds,
    credentials: false,
  });
  return async function apiCors(c, next) {
    return handler(c, next);
  };
}
