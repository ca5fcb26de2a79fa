/**
 * What happens to a session while its agent is away. When an agent's last
 * socket goes (closed, heartbeat lapsed, revoked), its running and stopped
 * sessions become `error` with the note `agent_unavailable`; when it says
 * hello again, reconciliation (./reconcile.ts) moves each back to what the
 * agent reports. Marking and restoring one agent's sessions run one after
 * the other (SerialByKey), never interleaved, so a quick reconnect cannot
 * leave a session marked.
 */
import type { SessionStatus } from '../../shared/api/containers';
import type { IndexedSession } from './sessions';

export const AGENT_UNAVAILABLE = 'agent_unavailable';

/** The sessions to mark when their agent goes away. */
export function sessionsToMark(indexed: readonly IndexedSession[]): string[] {
  const affected: ReadonlySet<SessionStatus> = new Set(['running', 'stopped']);
  return indexed.filter((s) => affected.has(s.status)).map((s) => s.id);
}

/** Runs tasks one after another per key; a failed task does not stop the next. */
export class SerialByKey {
  private readonly tails = new Map<string, Promise<void>>();

  run(key: string, task: () => Promise<void>): Promise<void> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    const next = previous.then(task, task);
    const tail = next.catch(() => undefined);
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return next;
  }
}
