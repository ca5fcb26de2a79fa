/** The Worker's HTTP surface: one Hono app, one error shape. */
import { Hono } from 'hono';
import { newId } from '../shared/ids';
import type { AppEnv } from './env';
import { onError, onNotFound } from './errors';
import { setLogLevel } from './log';
import { agentRoutes } from './routes/agent';
import { healthRoutes } from './routes/health';

export function createApp(): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.use('*', async (c, next) => {
    setLogLevel(typeof c.env.LOG_LEVEL === 'string' ? c.env.LOG_LEVEL : undefined);
    c.set('requestId', c.req.header('X-Request-Id')?.slice(0, 64) || newId('req', 8));
    await next();
    c.header('X-Request-Id', c.get('requestId'));
  });
  app.route('/health', healthRoutes);
  app.route('/agent', agentRoutes);
  app.notFound(onNotFound);
  app.onError(onError);
  return app;
}
