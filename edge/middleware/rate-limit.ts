/**
 * `rateLimit({ rules })`: counts each request against its client's budgets in
 * that client's RateLimiterDO (one per IP; see ../ratelimit/client-ip.ts) and
 * answers every request it covers with `RateLimit-Limit`,
 * `RateLimit-Remaining` and `RateLimit-Reset` (seconds). Over budget, the
 * request goes no further: 429 `rate_limited` with `Retry-After`.
 *
 * If the limiter itself fails, the request is let through and the failure
 * logged: an outage of the counter should not become an outage of the API.
 */
import type { Context, MiddlewareHandler } from 'hono';
import { AppError, ErrorCode } from '../../shared/errors';
import { loadConfig } from '../config';
import type { AppEnv } from '../env';
import { refuse } from '../errors';
import { log } from '../log';
import { clientKey } from '../ratelimit/client-ip';
import { bindingDecision, rateLimitHeaders, type RateLimitRule } from '../ratelimit/window';

export interface RateLimitOptions {
  /** The budgets this request spends from; none means it is not limited. */
  rules: (c: Context<AppEnv>) => RateLimitRule[];
  /** The client a request counts against; defaults to its IP (TRUST_PROXY decides which headers count). */
  key?: (c: Context<AppEnv>) => string;
}

const defaultKey = (c: Context<AppEnv>): string => clientKey(c.req.raw.headers, loadConfig(c.env).trustProxy);

export function rateLimit({ rules, key = defaultKey }: RateLimitOptions): MiddlewareHandler<AppEnv> {
  if (typeof rules !== 'function') throw new TypeError('rateLimit: rules must be a function of the request');
  return async function rateLimit(c, next) {
    const applicable = rules(c);
    if (applicable.length === 0) return next();
    const client = key(c);
    let reply;
    try {
      const limiter = c.env.RATE_LIMITER.get(c.env.RATE_LIMITER.idFromName(client));
      reply = await limiter.consume(applicable);
    } catch (err) {
      log('error', 'rate limiter unavailable; request let through', {
        requestId: c.get('requestId'),
        error: err instanceof Error ? err.message : String(err),
      });
      return next();
    }
    const decision = bindingDecision(reply.decisions);
    const headers = decision ? rateLimitHeaders(decision, reply.now) : {};
    if (!reply.allowed) {
      log('info', 'rate limited', { requestId: c.get('requestId'), client, bucket: decision?.bucket, path: c.req.path });
      const err = new AppError(ErrorCode.RateLimited, 'too many requests; try again later', {
        bucket: decision?.bucket,
        retryAfterSeconds: Number(headers['Retry-After'] ?? 1),
      });
      return refuse(c.req.raw, err, headers);
    }
    await next();
    for (const [name, value] of Object.entries(headers)) c.header(name, value);
  };
}
