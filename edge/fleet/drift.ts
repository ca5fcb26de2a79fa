/**
 * Heartbeats carry each container's state (`containers[].state`); a session
 * whose record says otherwise has drifted (an event was lost, or came while
 * the Fleet was busy). A disagreement is acted on only when two heartbeats
 * in a row show it, so a heartbeat built just before a start or stop the
 * edge asked for does not undo it. Sessions being created, destroyed, or
 * marked while their agent was away (hello settles those) are left alone.
 */
import type { SessionStatus } from '../../shared/api/containers';
import { AGENT_UNAVAILABLE } from './availability';
import type { IndexedSession } from './sessions';

export interface ReportedContainer {
  sessionId: string;
  state: 'running' | 'stopped' | 'missing';
}

export interface DriftUpdate {
  sessionId: string;
  status: SessionStatus;
  /** Why, for a session that stops or fails; null for one that runs. */
  note: string | null;
}

/** The disagreements in this heartbeat, as `sessionId → wanted status`. */
export function disagreements(indexed: IndexedSession[], reported: ReportedContainer[]): Map<string, SessionStatus> {
  const byId = new Map(reported.map((r) => [r.sessionId, r.state]));
  const out = new Map<string, SessionStatus>();
  for (const s of indexed) {
    const state = byId.get(s.id);
    if (state === undefined || s.status === 'creating' || s.status === 'destroyed') continue;
    if (s.status === 'error' && s.view.error === AGENT_UNAVAILABLE) continue;
    if (state === 'running' && s.status !== 'running') out.set(s.id, 'running');
    else if (state === 'stopped' && s.status === 'running') out.set(s.id, 'stopped');
    else if (state === 'missing' && s.status !== 'error') out.set(s.id, 'error');
  }
  return out;
}

/** Keeps the last heartbeat's disagreements per agent and says which held twice in a row. */
export class DriftTracker {
  private readonly last = new Map<string, Map<string, SessionStatus>>();

  observe(agentId: string, now: Map<string, SessionStatus>): DriftUpdate[] {
    const before = this.last.get(agentId);
    this.last.set(agentId, now);
    const updates: DriftUpdate[] = [];
    for (const [sessionId, status] of now) {
      if (before?.get(sessionId) !== status) continue;
      const note = status === 'error' ? 'the container is gone from its agent' : status === 'stopped' ? 'the container is not running (seen in heartbeats)' : null;
      updates.push({ sessionId, status, note });
    }
    return updates;
  }

  forget(agentId: string): void {
    this.last.delete(agentId);
  }
}
