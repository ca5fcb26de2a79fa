import type { UserPrincipal } from './auth/principal';
import type { FleetDO } from './do/fleet';
import type { RateLimiterDO } from './do/rate-limiter';
import type { SessionDO } from './do/session';

/** Bindings and variables the Worker receives (wrangler.toml, .env / secrets). */
export interface Env {
  FLEET: DurableObjectNamespace<FleetDO>;
  /** One instance per container session (idFromName(sessionId)). */
  SESSION: DurableObjectNamespace<SessionDO>;
  /** One instance per client key; counts requests for the rate limits. */
  RATE_LIMITER: DurableObjectNamespace<RateLimiterDO>;
  DB: D1Database;
  /** The IDE page's static assets (wrangler.toml [assets]); absent where no assets are configured. */
  ASSETS?: Fetcher;
  /** Signs agent join tokens. Secret. */
  AGENT_SECRET?: string;
  /** Signs user tokens. Secret. */
  JWT_SECRET?: string;
  /** Opens the operator's view (full /health, /api/admin/*). Secret. */
  OPERATOR_TOKEN?: string;
  NODE_ENV?: string;
  AGENT_MAX_SESSIONS?: string;
  ALLOW_LOCAL_AGENTS?: string;
  HEARTBEAT_INTERVAL_MS?: string;
  LOG_LEVEL?: string;
  JWT_TTL?: string;
  RATE_LIMIT_MAX?: string;
  RATE_LIMIT_WINDOW_MS?: string;
  AUTH_RATE_LIMIT_MAX?: string;
  AUTH_RATE_LIMIT_WINDOW_MS?: string;
  TRUST_PROXY?: string;
  CORS_ORIGINS?: string;
  MAX_BODY_BYTES?: string;
  DEFAULT_IMAGE?: string;
  MAX_SESSIONS_PER_USER?: string;
  SESSION_IDLE_TIMEOUT?: string;
  [key: string]: unknown;
}

/**
 * The Hono environment. `principal` is set by the auth middleware
 * (./middleware/auth.ts) and only there; it exists on routes behind it.
 */
export type AppEnv = { Bindings: Env; Variables: { requestId: string; principal: UserPrincipal } };
