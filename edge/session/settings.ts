/** Session settings, read once per isolate from the Worker's environment. */
import type { Env } from '../env';
import { intSetting } from '../config';

export interface SessionSettings {
  /** DEFAULT_IMAGE (node:20-bullseye): image for sessions that name none. */
  readonly defaultImage: string;
  /** MAX_SESSIONS_PER_USER (5): live sessions one user may hold. */
  readonly maxSessionsPerUser: number;
  /** SESSION_IDLE_TIMEOUT (1800000 ms): with no activity this long, the container is stopped (workspace kept). */
  readonly idleTimeoutMs: number;
  /** How long before the idle stop clients get `idle_warning`: 60 s, or half the timeout when that is shorter. */
  readonly idleWarningMs: number;
}

let cached: { env: Env; settings: SessionSettings } | undefined;

export function sessionSettings(env: Env): SessionSettings {
  if (cached?.env === env) return cached.settings;
  const idleTimeoutMs = intSetting(env, 'SESSION_IDLE_TIMEOUT', 1_800_000, 1_000, 7 * 86_400_000);
  const settings: SessionSettings = Object.freeze({
    defaultImage: typeof env.DEFAULT_IMAGE === 'string' && env.DEFAULT_IMAGE ? env.DEFAULT_IMAGE : 'node:20-bullseye',
    maxSessionsPerUser: intSetting(env, 'MAX_SESSIONS_PER_USER', 5, 1, 10_000),
    idleTimeoutMs,
    idleWarningMs: Math.min(60_000, Math.floor(idleTimeoutMs / 2)),
  });
  cached = { env, settings };
  return settings;
}
