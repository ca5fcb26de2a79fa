/**
 * The agent registry in D1: which agents may join, until when, and which were
 * revoked. An agent join token is accepted only while its `sub` names a row
 * here that is neither revoked nor expired (checked on every connect, and by
 * the Fleet on every alarm tick for the sockets already open). Every query
 * binds its values.
 */
import { AppError, ErrorCode } from '../../shared/errors';
import { newId } from '../../shared/ids';
import { ensureMigrated } from '../db/migrate';

export interface RegisteredAgent {
  id: string;
  name: string;
  createdAt: string;
  expiresAt: string;
  revokedAt: string | null;
}

export type AgentStanding = 'active' | 'revoked' | 'expired' | 'unknown';

export const AGENT_ID_PATTERN = /^agt_[0-9a-f]{8,64}$/;
export const AGENT_NAME_PATTERN = /^[\w.-]{1,64}$/;

interface Row {
  id: string;
  name: string;
  created_at: string;
  expires_at: string;
  revoked_at: string | null;
}

const toAgent = (r: Row): RegisteredAgent => ({ id: r.id, name: r.name, createdAt: r.created_at, expiresAt: r.expires_at, revokedAt: r.revoked_at });

export async function openAgentStore(db: D1Database): Promise<AgentStore> {
  await ensureMigrated(db);
  return new AgentStore(db);
}

export class AgentStore {
  constructor(private readonly db: D1Database) {}

  /**
   * Registers a new agent, or renews an existing one's expiry when `id` names
   * it (a token re-issued for the same box). A revoked id stays revoked: 409.
   */
  async register(input: { id?: string; name: string; ttlSeconds: number }, now = new Date()): Promise<RegisteredAgent> {
    const id = input.id ?? newId('agt');
    if (!AGENT_ID_PATTERN.test(id)) throw new AppError(ErrorCode.ValidationFailed, 'an agent id is agt_ followed by 8-64 hex digits');
    if (!AGENT_NAME_PATTERN.test(input.name)) throw new AppError(ErrorCode.ValidationFailed, 'an agent name is 1-64 of A-Z a-z 0-9 _ . -');
    const existing = await this.get(id);
    if (existing?.revokedAt) throw new AppError(ErrorCode.Conflict, `agent ${id} was revoked; register a new agent instead`);
    const createdAt = existing?.createdAt ?? now.toISOString();
    const expiresAt = new Date(now.getTime() + input.ttlSeconds * 1000).toISOString();
    await this.db
      .prepare(
        `INSERT INTO agents (id, name, created_at, expires_at) VALUES (?, ?, ?, ?)
         ON CONFLICT(id) DO UPDATE SET name = excluded.name, expires_at = excluded.expires_at WHERE agents.revoked_at IS NULL`,
      )
      .bind(id, input.name, createdAt, expiresAt)
      .run();
    const stored = await this.get(id);
    if (!stored || stored.revokedAt) throw new AppError(ErrorCode.Conflict, `agent ${id} was revoked; register a new agent instead`);
    return stored;
  }

  async get(id: string): Promise<RegisteredAgent | undefined> {
    const row = await this.db.prepare('SELECT * FROM agents WHERE id = ?').bind(id).first<Row>();
    return row ? toAgent(row) : undefined;
  }

  async list(): Promise<RegisteredAgent[]> {
    const { results } = await this.db.prepare('SELECT * FROM agents ORDER BY created_at, id').all<Row>();
    return results.map(toAgent);
  }

  /** Whether a token for this agent id may be used now. */
  async standing(id: string, now = new Date()): Promise<AgentStanding> {
    const agent = await this.get(id);
    return standingOf(agent, now);
  }

  /** Of these ids, the ones that may no longer be used (revoked, expired or unknown). */
  async refused(ids: readonly string[], now = new Date()): Promise<string[]> {
    if (ids.length === 0) return [];
    const out: string[] = [];
    // D1 binds at most 100 values per statement.
    for (let i = 0; i < ids.length; i += 90) {
      const chunk = ids.slice(i, i + 90);
      const { results } = await this.db
        .prepare(`SELECT * FROM agents WHERE id IN (${chunk.map(() => '?').join(', ')})`)
        .bind(...chunk)
        .all<Row>();
      const byId = new Map(results.map((r) => [r.id, toAgent(r)]));
      for (const id of chunk) if (standingOf(byId.get(id), now) !== 'active') out.push(id);
    }
    return out;
  }

  /**
   * Revokes the agent with this id, or every unrevoked agent with this name;
   * returns what it revoked. 404 when nothing matched.
   */
  async revoke(idOrName: string, now = new Date()): Promise<RegisteredAgent[]> {
    const byId = AGENT_ID_PATTERN.test(idOrName);
    const stamp = now.toISOString();
    const { results } = await this.db
      .prepare(`UPDATE agents SET revoked_at = ? WHERE ${byId ? 'id' : 'name'} = ? AND revoked_at IS NULL RETURNING *`)
      .bind(stamp, idOrName)
      .all<Row>();
    if (results.length === 0) {
      const already = byId ? await this.get(idOrName) : undefined;
      if (already?.revokedAt) return [already];
      throw new AppError(ErrorCode.NotFound, `no registered agent ${byId ? 'with id' : 'named'} ${idOrName}`);
    }
    return results.map(toAgent);
  }
}

export function standingOf(agent: RegisteredAgent | undefined, now: Date): AgentStanding {
  if (!agent) return 'unknown';
  if (agent.revokedAt) return 'revoked';
  return agent.expiresAt <= now.toISOString() ? 'expired' : 'active';
}
