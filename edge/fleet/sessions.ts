/**
 * The Fleet's session index: which session lives on which agent, for whom,
 * in what state. Placement reads it (capacity per agent, sessions per user);
 * listing a user's sessions reads it. Each Session DO holds the full record
 * and pushes changes here.
 */
import type { SessionStatus, SessionView } from '../../shared/api/containers';

export interface IndexedSession {
  id: string;
  userId: string;
  agentId: string;
  status: SessionStatus;
  view: SessionView;
}

export class SessionIndex {
  constructor(private readonly sql: SqlStorage) {
    sql.exec(`CREATE TABLE IF NOT EXISTS sessions (
      id TEXT PRIMARY KEY,
      user_id TEXT NOT NULL,
      agent_id TEXT NOT NULL,
      status TEXT NOT NULL,
      view TEXT NOT NULL,
      created_at INTEGER NOT NULL
    )`);
    sql.exec('CREATE INDEX IF NOT EXISTS sessions_by_user ON sessions (user_id)');
    sql.exec('CREATE INDEX IF NOT EXISTS sessions_by_agent ON sessions (agent_id)');
  }

  insert(s: IndexedSession, now: number): void {
    this.sql.exec(
      'INSERT INTO sessions (id, user_id, agent_id, status, view, created_at) VALUES (?, ?, ?, ?, ?, ?)',
      s.id,
      s.userId,
      s.agentId,
      s.status,
      JSON.stringify(s.view),
      now,
    );
  }

  update(view: SessionView): void {
    this.sql.exec('UPDATE sessions SET status = ?, view = ? WHERE id = ?', view.status, JSON.stringify(view), view.id);
  }

  remove(id: string): void {
    this.sql.exec('DELETE FROM sessions WHERE id = ?', id);
  }

  get(id: string): IndexedSession | undefined {
    const row = this.sql.exec<Record<string, string>>('SELECT * FROM sessions WHERE id = ?', id).toArray()[0];
    return row ? toIndexed(row) : undefined;
  }

  byUser(userId: string): IndexedSession[] {
    return this.sql
      .exec<Record<string, string>>('SELECT * FROM sessions WHERE user_id = ? ORDER BY created_at', userId)
      .toArray()
      .map(toIndexed);
  }

  byAgent(agentId: string): IndexedSession[] {
    return this.sql
      .exec<Record<string, string>>('SELECT * FROM sessions WHERE agent_id = ? ORDER BY created_at', agentId)
      .toArray()
      .map(toIndexed);
  }

  /**
   * Sessions that hold a place on their agent: those running or being
   * created. A stopped session frees its place (starting it again needs one).
   */
  countByAgent(): Map<string, number> {
    const out = new Map<string, number>();
    for (const row of this.sql.exec<{ agent_id: string; n: number }>(
      "SELECT agent_id, COUNT(*) AS n FROM sessions WHERE status IN ('creating', 'running') GROUP BY agent_id",
    )) {
      out.set(row.agent_id, Number(row.n));
    }
    return out;
  }

  /** Whether the index knows this session (placed and not yet removed). */
  has(id: string): boolean {
    return this.sql.exec('SELECT 1 FROM sessions WHERE id = ? LIMIT 1', id).toArray().length > 0;
  }

  /** Live sessions per agent (everything not destroyed), for the operator's view of load. */
  liveByAgent(): Map<string, number> {
    const out = new Map<string, number>();
    for (const row of this.sql.exec<{ agent_id: string; n: number }>(
      "SELECT agent_id, COUNT(*) AS n FROM sessions WHERE status != 'destroyed' GROUP BY agent_id",
    )) {
      out.set(row.agent_id, Number(row.n));
    }
    return out;
  }

  /** Every session's count per status, for the anonymous /health. */
  countByStatus(): Map<string, number> {
    const out = new Map<string, number>();
    for (const row of this.sql.exec<{ status: string; n: number }>('SELECT status, COUNT(*) AS n FROM sessions GROUP BY status')) {
      out.set(row.status, Number(row.n));
    }
    return out;
  }

  countForUser(userId: string): number {
    const row = this.sql
      .exec<{ n: number }>("SELECT COUNT(*) AS n FROM sessions WHERE user_id = ? AND status != 'destroyed'", userId)
      .toArray()[0];
    return Number(row?.n ?? 0);
  }

  all(): IndexedSession[] {
    return this.sql.exec<Record<string, string>>('SELECT * FROM sessions ORDER BY created_at').toArray().map(toIndexed);
  }
}

function toIndexed(row: Record<string, string>): IndexedSession {
  return {
    id: row.id!,
    userId: row.user_id!,
    agentId: row.agent_id!,
    status: row.status as SessionStatus,
    view: JSON.parse(row.view!) as SessionView,
  };
}

export interface PlacementCandidate {
  id: string;
  connected: boolean;
  maxSessions: number;
}

/** The connected agent with the most free places, or undefined when all are full. */
export function chooseAgent(agents: PlacementCandidate[], used: Map<string, number>): string | undefined {
  let best: { id: string; free: number } | undefined;
  for (const a of agents) {
    if (!a.connected) continue;
    const free = a.maxSessions - (used.get(a.id) ?? 0);
    if (free <= 0) continue;
    if (!best || free > best.free || (free === best.free && a.id < best.id)) best = { id: a.id, free };
  }
  return best?.id;
}
