/**
 * The Fleet's record of agents, kept in the Fleet DO's SQLite storage so it
 * survives hibernation and restarts. Plain functions over `SqlStorage`; the
 * DO class only wires sockets to these.
 */
import { z } from 'zod';
import {
  DockerStatus,
  HeartbeatFrame,
  SessionReport,
  summariseIssues,
  SystemInfo,
  type ContainerFigures,
  type RuntimeMode,
} from '../../shared/protocol/tunnel';
import { jsonText } from '../../shared/json-text';
import { log } from '../log';

export interface AgentRecord {
  id: string;
  name: string;
  version: string;
  mode: RuntimeMode;
  capacity: { maxSessions: number };
  docker: DockerStatus;
  system: SystemInfo | null;
  activeSessions: number;
  connected: boolean;
  connectedAt: number | null;
  lastSeen: number | null;
  sessions: SessionReport[];
  containers: ContainerFigures[];
  activePreviews: number;
  /** Set by the operator: no new sessions are placed here; running ones go on. */
  draining: boolean;
}

type Row = Record<string, SqlStorageValue>;

export class AgentRegistry {
  constructor(private readonly sql: SqlStorage) {
    sql.exec(`CREATE TABLE IF NOT EXISTS agents (
      id TEXT PRIMARY KEY,
      name TEXT NOT NULL,
      version TEXT NOT NULL DEFAULT '',
      mode TEXT NOT NULL DEFAULT 'local',
      max_sessions INTEGER NOT NULL DEFAULT 0,
      docker TEXT NOT NULL DEFAULT '{"available":false}',
      system TEXT,
      active_sessions INTEGER NOT NULL DEFAULT 0,
      connected INTEGER NOT NULL DEFAULT 0,
      connected_at INTEGER,
      last_seen INTEGER,
      sessions TEXT NOT NULL DEFAULT '[]',
      containers TEXT NOT NULL DEFAULT '[]'
    )`);
    // Storage written before `containers` existed gains the column.
    const columns = sql.exec('PRAGMA table_info(agents)').toArray().map((c) => String(c.name));
    if (!columns.includes('containers')) sql.exec("ALTER TABLE agents ADD COLUMN containers TEXT NOT NULL DEFAULT '[]'");
    if (!columns.includes('active_previews')) sql.exec('ALTER TABLE agents ADD COLUMN active_previews INTEGER NOT NULL DEFAULT 0');
    if (!columns.includes('draining')) sql.exec('ALTER TABLE agents ADD COLUMN draining INTEGER NOT NULL DEFAULT 0');
  }

  upsertOnHello(
    id: string,
    hello: { name: string; version: string; mode: RuntimeMode; capacity: { maxSessions: number }; docker: DockerStatus; system: SystemInfo },
    sessions: SessionReport[],
    now: number,
  ): void {
    this.sql.exec(
      `INSERT INTO agents (id, name, version, mode, max_sessions, docker, system, active_sessions, connected, connected_at, last_seen, sessions)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?)
       ON CONFLICT(id) DO UPDATE SET name = excluded.name, version = excluded.version, mode = excluded.mode,
         max_sessions = excluded.max_sessions, docker = excluded.docker, system = excluded.system,
         active_sessions = excluded.active_sessions, connected = 1, connected_at = excluded.connected_at,
         last_seen = excluded.last_seen, sessions = excluded.sessions`,
      id,
      hello.name,
      hello.version,
      hello.mode,
      hello.capacity.maxSessions,
      JSON.stringify(hello.docker),
      JSON.stringify(hello.system),
      sessions.filter((s) => s.state === 'running').length,
      now,
      now,
      JSON.stringify(sessions),
    );
  }

  recordHeartbeat(id: string, system: SystemInfo, activeSessions: number, now: number, containers: ContainerFigures[], activePreviews = 0): void {
    this.sql.exec(
      'UPDATE agents SET system = ?, active_sessions = ?, containers = ?, active_previews = ?, last_seen = ? WHERE id = ? AND connected = 1',
      JSON.stringify(system),
      activeSessions,
      JSON.stringify(containers),
      activePreviews,
      now,
      id,
    );
  }

  /** Turns draining on or off; false when the agent has never connected. */
  setDraining(id: string, draining: boolean): boolean {
    return this.sql.exec('UPDATE agents SET draining = ? WHERE id = ?', draining ? 1 : 0, id).rowsWritten > 0;
  }

  markDisconnected(id: string): void {
    this.sql.exec('UPDATE agents SET connected = 0 WHERE id = ?', id);
  }

  /** Connected agents whose last heartbeat is older than `cutoff`. */
  lapsed(cutoff: number): string[] {
    return this.sql
      .exec('SELECT id FROM agents WHERE connected = 1 AND (last_seen IS NULL OR last_seen < ?)', cutoff)
      .toArray()
      .map((r) => String(r.id));
  }

  anyConnected(): boolean {
    return this.sql.exec('SELECT 1 FROM agents WHERE connected = 1 LIMIT 1').toArray().length > 0;
  }

  get(id: string): AgentRecord | undefined {
    const row = this.sql.exec('SELECT * FROM agents WHERE id = ?', id).toArray()[0];
    return row ? toRecord(row) : undefined;
  }

  list(): AgentRecord[] {
    return this.sql.exec('SELECT * FROM agents ORDER BY name, id').toArray().map(toRecord);
  }
}

const DockerColumn = jsonText(DockerStatus);
const SystemColumn = jsonText(SystemInfo.nullable());
const SessionsColumn = jsonText(z.array(SessionReport));
const ContainersColumn = jsonText(HeartbeatFrame.shape.containers.unwrap());

/**
 * Decodes one row. Every JSON column is rewritten by the agent's next hello or
 * heartbeat, so one that does not decode shows its fallback until then, with
 * a warning, rather than hiding the agent from the operator and placement.
 */
export function toRecord(row: Row): AgentRecord {
  return {
    id: String(row.id),
    name: String(row.name),
    version: String(row.version),
    mode: row.mode === 'docker' ? 'docker' : 'local',
    capacity: { maxSessions: Number(row.max_sessions) },
    docker: decodeColumn(row, 'docker', DockerColumn, { available: false }),
    system: decodeColumn(row, 'system', SystemColumn, null),
    activeSessions: Number(row.active_sessions),
    connected: Number(row.connected) === 1,
    connectedAt: row.connected_at == null ? null : Number(row.connected_at),
    lastSeen: row.last_seen == null ? null : Number(row.last_seen),
    sessions: decodeColumn(row, 'sessions', SessionsColumn, []),
    containers: decodeColumn(row, 'containers', ContainersColumn, []),
    activePreviews: Number(row.active_previews ?? 0),
    draining: Number(row.draining ?? 0) === 1,
  };
}

/** A JSON column's value, or `fallback` when it is NULL or (with a warning) does not decode. */
function decodeColumn<T>(row: Row, column: string, schema: z.ZodType<T, string>, fallback: T): T {
  const value = row[column];
  if (value == null) return fallback;
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  log('warn', 'agent record column does not decode; showing its default until the agent reports again', {
    agentId: String(row.id),
    column,
    issues: summariseIssues(parsed.error),
  });
  return fallback;
}

/** An agent as the operator's views show it (without what it last reported per session). */
export type AgentView = Omit<AgentRecord, 'sessions' | 'connectedAt' | 'containers'>;
