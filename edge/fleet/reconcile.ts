/**
 * What an agent's hello means for the sessions the edge placed on it. The
 * agent is replaceable and re-announces its containers (found by label)
 * after every connect; the edge's index is the truth about which sessions
 * should exist. This compares the two and says what to change.
 */
import type { SessionStatus } from '../../shared/api/containers';
import type { SessionReport } from '../../shared/protocol/tunnel';
import type { IndexedSession } from './sessions';

export interface ReconcilePlan {
  /** Sessions whose status must change, with why. */
  updates: Array<{ sessionId: string; status: SessionStatus; note?: string }>;
  /** Containers the agent holds that no live session owns: remove them. */
  orphans: string[];
}

export function planReconcile(indexed: IndexedSession[], reported: SessionReport[]): ReconcilePlan {
  const byId = new Map(reported.map((r) => [r.sessionId, r]));
  const updates: ReconcilePlan['updates'] = [];
  for (const s of indexed) {
    // A session being created or destroyed right now is settled by that request.
    if (s.status === 'creating' || s.status === 'destroyed') continue;
    const r = byId.get(s.id);
    if (!r || r.state === 'missing') {
      if (s.status !== 'error') updates.push({ sessionId: s.id, status: 'error', note: 'the container is gone from its agent' });
    } else if (r.state === 'running' && s.status !== 'running') {
      updates.push({ sessionId: s.id, status: 'running' });
    } else if (r.state === 'stopped' && s.status !== 'stopped') {
      updates.push({ sessionId: s.id, status: 'stopped' });
    }
  }
  const live = new Set(indexed.filter((s) => s.status !== 'destroyed').map((s) => s.id));
  const orphans = reported.filter((r) => !live.has(r.sessionId)).map((r) => r.sessionId);
  return { updates, orphans };
}
