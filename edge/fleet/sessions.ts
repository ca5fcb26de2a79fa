/**
 * The Fleet's session index: which session lives on which agent, for whom,
 * in what state. Placement reads it (capacity per agent, sessions per user);
 * listing a user's sessions reads it. Each Session DO holds the full record
 * and pushes changes here.
 */
import { z } from 'zod';
import { SessionStatus, type SessionView } from '../../shared/api/containers';
import { SessionViewSchema } from '../../shared/protocol/server-frames';
import { summariseIssues } from '../../shared/protocol/tunnel';
import { jsonText } from '../../shared/json-text';

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
    const row = this.sql.exec('SELECT * FROM sessions WHERE id = ?', id).toArray()[0];
    return row ? toIndexed(row) : undefined;
  }

  byUser(userId: string): IndexedSession[] {
    return this.sql
      .exec('SELECT * FROM sessions WHERE user_id = ? ORDER BY created_at', userId)
      .toArray()
      .map(toIndexed);
  }

  byAgent(agentId: string): IndexedSession[] {
    return this.sql
      .exec('SELECT * FROM sessions WHERE agent_id = ? ORDER BY created_at', agentId)
      .toArray()
      .map(toIndexed);
  }

  /**
   * Sessions that hold a place on their agent: those running or being
   * created. A stopped session frees its place (starting it again needs one).
   */
  countByAgent(): Map<string, number> {
    const out = new Map<string, number>();
    for (const row of this.sql.exec(
      "SELECT agent_id, COUNT(*) AS n FROM sessions WHERE status IN ('creating', 'running') GROUP BY agent_id",
    )) {
      out.set(String(row.agent_id), Number(row.n));
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
    for (const row of this.sql.exec(
      "SELECT agent_id, COUNT(*) AS n FROM sessions WHERE status != 'destroyed' GROUP BY agent_id",
    )) {
      out.set(String(row.agent_id), Number(row.n));
    }
    return out;
  }

  /** Every session's count per status, for the anonymous /health. */
  countByStatus(): Map<string, number> {
    const out = new Map<string, number>();
    for (const row of this.sql.exec('SELECT status, COUNT(*) AS n FROM sessions GROUP BY status')) {
      out.set(String(row.status), Number(row.n));
    }
    return out;
  }

  countForUser(userId: string): number {
    const row = this.sql
      .exec("SELECT COUNT(*) AS n FROM sessions WHERE user_id = ? AND status != 'destroyed'", userId)
      .toArray()[0];
    return Number(row?.n ?? 0);
  }

  all(): IndexedSession[] {
    return this.sql.exec('SELECT * FROM sessions ORDER BY created_at').toArray().map(toIndexed);
  }
}

/** A stored index row; `view` is the SessionView its Session DO last pushed. */
const IndexRow = z.object({
  id: z.string(),
  user_id: z.string(),
  agent_id: z.string(),
  status: SessionStatus,
  view: jsonText(SessionViewSchema),
});

/**
 * Decodes one row. The index decides placement and which containers an agent
 * may keep, so a row that does not decode is a storage fault that stops the
 * caller with an error naming the session, never a session silently left out.
 */
export function toIndexed(row: Record<string, SqlStorageValue>): IndexedSession {
  const parsed = IndexRow.safeParse(row);
  if (!parsed.success) {
    const issues = summariseIssues(parsed.error).map((i) => `${i.path}: ${i.message}`);
    throw new Error(`the Fleet's session index row for ${String(row.id)} does not decode (${issues.join('; ')})`);
  }
  const { id, user_id, agent_id, status, view } = parsed.data;
  return { id, userId: user_id, agentId: agent_id, status, view };
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
