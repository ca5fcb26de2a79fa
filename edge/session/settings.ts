/** Session settings, read once per isolate from the Worker's environment. */
import type { Env } from '../env';
import { AppError, ErrorCode } from '../../shared/errors';
import { parseSize } from '../../shared/sizes';
import { intSetting, perEnv } from '../config';

export interface SessionSettings {
  /** DEFAULT_IMAGE (node:20-bullseye): image for sessions that name none. */
  readonly defaultImage: string;
  /** MAX_SESSIONS_PER_USER (5): live sessions one user may hold. */
  readonly maxSessionsPerUser: number;
  /** SESSION_IDLE_TIMEOUT (1800000 ms): with no activity this long, the container is stopped (workspace kept). */
  readonly idleTimeoutMs: number;
  /** How long before the idle stop clients get `idle_warning`: 60 s, or half the timeout when that is shorter. */
  readonly idleWarningMs: number;
  /** MAX_FILE_SIZE (512m): largest file written through the API (413 past it); bytes, or with k/m/g. */
  readonly maxFileSize: number;
}

export const sessionSettings = perEnv((env: Env): SessionSettings => {
  const idleTimeoutMs = intSetting(env, 'SESSION_IDLE_TIMEOUT', 1_800_000, 1_000, 7 * 86_400_000);
  return Object.freeze({
    defaultImage: typeof env.DEFAULT_IMAGE === 'string' && env.DEFAULT_IMAGE ? env.DEFAULT_IMAGE : 'node:20-bullseye',
    maxSessionsPerUser: intSetting(env, 'MAX_SESSIONS_PER_USER', 5, 1, 10_000),
    idleTimeoutMs,
    idleWarningMs: Math.min(60_000, Math.floor(idleTimeoutMs / 2)),
    maxFileSize: bytesSetting(env.MAX_FILE_SIZE, 512 * 1024 * 1024),
  });
});

function bytesSetting(raw: unknown, fallback: number): number {
  if (raw === undefined || raw === '') return fallback;
  const bytes = parseSize(String(raw));
  if (bytes === undefined) throw new AppError(ErrorCode.Internal, 'configuration: MAX_FILE_SIZE must be a size like 512m');
  return bytes;
}
