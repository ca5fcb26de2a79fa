/**
 * The Worker's HTTP surface: one Hono app, one error shape. The front door,
 * outermost first: the request log (a request id and one line per request,
 * ./log.ts), previews and the IDE page, security headers on every other
 * response, the X-Request-Id header, CORS (answering preflights), then on
 * /api/* the per-IP rate limit. /health and
 * /agent/connect are outside /api and so are not rate limited.
 */
import { Hono } from 'hono';
import { secureHeaders } from 'hono/secure-headers';
import { loadConfig } from './config';
import type { AppEnv } from './env';
import { onError, onNotFound } from './errors';
import { requestLog } from './log';
import { openApiDocument } from './openapi';
import { apiCors } from './middleware/cors';
import { rateLimit } from './middleware/rate-limit';
import type { RateLimitRule } from './ratelimit/window';
import { adminRoutes } from './routes/admin';
import { agentRoutes } from './routes/agent';
import { authRoutes } from './routes/auth';
import { containerRoutes } from './routes/containers';
import { healthRoutes } from './routes/health';
import { wsRoutes } from './routes/ws';
import { previewByHost, previewByPath } from './routes/preview';
import { idePage } from './routes/page';

/** Paths that also spend the tighter AUTH_RATE_LIMIT budget (password guessing, account spam). */
const AUTH_PATHS: ReadonlySet<string> = new Set(['/api/auth/register', '/api/auth/login']);

export function createApp(): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  // Outermost: the request id and one log line per request, previews and the page included.
  app.use('*', requestLog());
  // Previews first: they are the app's responses, without the API's headers, limits or CORS.
  app.use('*', previewByHost());
  app.use('/preview/*', previewByPath());
  // Then the IDE page's files from the static assets, with the page's own security headers.
  app.use('*', idePage());
  app.use(
    '*',
    secureHeaders({
      contentSecurityPolicy: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] },
      xFrameOptions: 'DENY',
    }),
  );
  app.use('*', async (c, next) => {
    await next();
    c.header('X-Request-Id', c.get('requestId'));
  });
  app.use('*', apiCors());
  app.use(
    '/api/*',
    rateLimit({
      rules: (c) => {
        const config = loadConfig(c.env);
        const rules: RateLimitRule[] = [{ bucket: 'api', ...config.rateLimit }];
        if (AUTH_PATHS.has(c.req.path)) rules.push({ bucket: 'auth', ...config.authRateLimit });
        return rules;
      },
    }),
  );
  app.route('/health', healthRoutes);
  app.route('/agent', agentRoutes);
  app.route('/api/admin', adminRoutes);
  app.route('/api/auth', authRoutes);
  app.route('/api/containers', containerRoutes);
  app.route('/ws', wsRoutes);
  app.get('/openapi.json', (c) => c.json(openApiDocument()));
  app.notFound(onNotFound);
  app.onError(onError);
  return app;
}
