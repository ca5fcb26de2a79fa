/**
 * Answers from the Fleet DO that a Worker isolate may reuse for a short
 * while, so floods of anonymous requests do not queue behind placement and
 * heartbeats in the one Fleet DO:
 *   - the /health snapshot, for about a second (in-flight calls shared);
 *   - whether a session exists, before any route touches its Session DO (a
 *     Session DO that is touched keeps storage, so strangers with random ids
 *     must not reach one). "Yes" is kept for a minute (a Session DO handles a
 *     session destroyed since), "no" for a second (ids are random: nobody can
 *     ask for one before it is made, except its creator right after).
 */
import { AppError, ErrorCode } from '../../shared/errors';
import { log } from '../log';
import type { FleetSnapshot } from './health-view';

/**
 * What this needs of the Worker's env: the FLEET namespace, described by the
 * two calls it makes (so plain Node tests can pass a fake without Worker types).
 */
export interface FleetReads {
  healthSnapshot(): Promise<FleetSnapshot>;
  sessionExists(sessionId: string): Promise<boolean>;
}
export interface FleetEnv {
  FLEET: { idFromName(name: string): unknown; get(id: never): FleetReads };
}
type Env = FleetEnv;

export const SNAPSHOT_TTL_MS = 1_000;
const EXISTS_TTL_MS = 60_000;
const MISSING_TTL_MS = 1_000;
const EXISTS_KEPT = 4096;

const fleetOf = (env: Env) => env.FLEET.get(env.FLEET.idFromName('fleet') as never);

const snapshots = new WeakMap<Env['FLEET'], { at: number; value: Promise<FleetSnapshot> }>();

/** The Fleet's health snapshot, at most SNAPSHOT_TTL_MS old. */
export function cachedSnapshot(env: Env, now = Date.now()): Promise<FleetSnapshot> {
  const hit = snapshots.get(env.FLEET);
  if (hit && now - hit.at < SNAPSHOT_TTL_MS) return hit.value;
  const value = fleetOf(env).healthSnapshot();
  log('debug', 'health snapshot asked of the Fleet');
  snapshots.set(env.FLEET, { at: now, value });
  // A failed call is not kept: the next request tries again.
  value.catch(() => snapshots.get(env.FLEET)?.value === value && snapshots.delete(env.FLEET));
  return value;
}

const known = new WeakMap<Env['FLEET'], Map<string, { exists: boolean; until: number }>>();

/** Whether the Fleet index knows this session (cached as described above). */
export async function sessionExists(env: Env, sessionId: string, now = Date.now()): Promise<boolean> {
  let cache = known.get(env.FLEET);
  if (!cache) known.set(env.FLEET, (cache = new Map()));
  const hit = cache.get(sessionId);
  if (hit && hit.until > now) return hit.exists;
  const exists = await fleetOf(env).sessionExists(sessionId);
  cache.delete(sessionId);
  // Oldest first out: Map keeps insertion order.
  if (cache.size >= EXISTS_KEPT) cache.delete(cache.keys().next().value!);
  cache.set(sessionId, { exists, until: now + (exists ? EXISTS_TTL_MS : MISSING_TTL_MS) });
  return exists;
}

/** 404 `not_found` unless the session exists; call before touching its Session DO. */
export async function requireSession(env: Env, sessionId: string): Promise<void> {
  if (!(await sessionExists(env, sessionId))) throw new AppError(ErrorCode.NotFound, 'no such session');
}
