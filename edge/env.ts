import type { FleetDO } from './do/fleet';

/** Bindings and variables the Worker receives (wrangler.toml, .env / secrets). */
export interface Env {
  FLEET: DurableObjectNamespace<FleetDO>;
  DB: D1Database;
  /** Signs agent join tokens. Secret. */
  AGENT_SECRET?: string;
  /** Signs user tokens. Secret. */
  JWT_SECRET?: string;
  NODE_ENV?: string;
  HEARTBEAT_INTERVAL_MS?: string;
  LOG_LEVEL?: string;
  [key: string]: unknown;
}

export type AppEnv = { Bindings: Env; Variables: { requestId: string } };
