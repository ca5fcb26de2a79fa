/**
 * Idle timing for a running session, as pure arithmetic over the record:
 * when the next alarm should fire and what it should do then.
 */
import type { SessionRecord } from './record';

export type IdleStep = { kind: 'none' } | { kind: 'warn'; stopAt: number } | { kind: 'stop' } | { kind: 'wait'; until: number };

export function idleStep(r: SessionRecord, now: number, timeoutMs: number, warningMs: number): IdleStep {
  if (r.status !== 'running') return { kind: 'none' };
  const stopAt = r.lastActiveAt + timeoutMs;
  const warnAt = stopAt - warningMs;
  if (now >= stopAt) return { kind: 'stop' };
  if (now >= warnAt) return r.idleWarnedAt && r.idleWarnedAt >= r.lastActiveAt ? { kind: 'wait', until: stopAt } : { kind: 'warn', stopAt };
  return { kind: 'wait', until: warnAt };
}
