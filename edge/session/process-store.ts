/**
 * What the Session DO remembers of its processes, in its SQLite storage:
 * the history (last 1,000 commands, with times and exit codes), each
 * process's stream base and stdin offset, and every journal chunk as it
 * arrives, so what the edge has acknowledged outlives hibernation and restarts.
 */
import { z } from 'zod';
import { StreamIndex, type StreamName } from '../../shared/protocol/session-data';
import type { Chunk } from './journal';
import { checkProcessStreamBase } from './stream-ids';

export interface ProcessRow {
  id: string;
  streamBase: number;
  command: string[];
  display: string;
  cwd: string | null;
  tty: boolean;
  startedAt: number;
  endedAt: number | null;
  exitCode: number | null;
  signal: string | null;
  reason: string | null;
  stdinOffset: number;
  endOffsets: Record<StreamName, number> | null;
}

export const HISTORY_LIMIT = 1000;

/** What the relays use of the store (test/helpers/memory-stores.ts has an in-memory one). */
export type ProcessStorePort = Pick<
  ProcessStore,
  'nextStreamBase' | 'insert' | 'finish' | 'setStdinOffset' | 'get' | 'running' | 'history' | 'appendChunk' | 'trimChunks' | 'readChunk' | 'firstChunkOffset' | 'storedStreams'
>;

export class ProcessStore {
  constructor(private readonly sql: SqlStorage) {
    sql.exec(`CREATE TABLE IF NOT EXISTS processes (
      id TEXT PRIMARY KEY, stream_base INTEGER NOT NULL, command TEXT NOT NULL, display TEXT NOT NULL,
      cwd TEXT, tty INTEGER NOT NULL, started_at INTEGER NOT NULL, ended_at INTEGER, exit_code INTEGER,
      signal TEXT, reason TEXT, stdin_offset INTEGER NOT NULL DEFAULT 0, end_offsets TEXT)`);
    sql.exec(`CREATE TABLE IF NOT EXISTS journal_chunks (
      process_id TEXT NOT NULL, stream TEXT NOT NULL, offset INTEGER NOT NULL, data BLOB NOT NULL,
      PRIMARY KEY (process_id, stream, offset))`);
    sql.exec('CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)');
  }

  /** A fresh range of stream ids for a new process (below the one-shot range: ./stream-ids.ts). */
  nextStreamBase(width: number): number {
    const row = this.sql.exec("SELECT value FROM meta WHERE key = 'next_stream_base'").toArray()[0];
    const base = Number(row?.value ?? 0);
    checkProcessStreamBase(base, width);
    this.sql.exec("INSERT OR REPLACE INTO meta (key, value) VALUES ('next_stream_base', ?)", base + width);
    return base;
  }

  insert(p: ProcessRow): void {
    this.sql.exec(
      'INSERT INTO processes (id, stream_base, command, display, cwd, tty, started_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
      p.id,
      p.streamBase,
      JSON.stringify(p.command),
      p.display,
      p.cwd,
      p.tty ? 1 : 0,
      p.startedAt,
    );
    const old = this.sql
      .exec('SELECT id FROM processes WHERE ended_at IS NOT NULL ORDER BY started_at DESC LIMIT -1 OFFSET ?', HISTORY_LIMIT)
      .toArray();
    for (const { id } of old) this.forget(String(id));
  }

  finish(id: string, exit: { exitCode: number | null; signal?: string; reason: string; endOffsets: Record<StreamName, number> }, at: number): void {
    this.sql.exec(
      'UPDATE processes SET ended_at = ?, exit_code = ?, signal = ?, reason = ?, end_offsets = ? WHERE id = ? AND ended_at IS NULL',
      at,
      exit.exitCode,
      exit.signal ?? null,
      exit.reason,
      JSON.stringify(exit.endOffsets),
      id,
    );
  }

  setStdinOffset(id: string, offset: number): void {
    this.sql.exec('UPDATE processes SET stdin_offset = ? WHERE id = ?', offset, id);
  }

  get(id: string): ProcessRow | undefined {
    const row = this.sql.exec<Record<string, SqlStorageValue>>('SELECT * FROM processes WHERE id = ?', id).toArray()[0];
    return row ? toRow(row) : undefined;
  }

  running(): ProcessRow[] {
    return this.sql.exec<Record<string, SqlStorageValue>>('SELECT * FROM processes WHERE ended_at IS NULL ORDER BY started_at').toArray().map(toRow);
  }

  history(limit: number): ProcessRow[] {
    return this.sql
      .exec<Record<string, SqlStorageValue>>('SELECT * FROM processes ORDER BY started_at DESC LIMIT ?', limit)
      .toArray()
      .map(toRow);
  }

  /** Persists one journal chunk as it arrives, so an acknowledged byte survives an edge restart. */
  appendChunk(processId: string, stream: StreamName, chunk: Chunk): void {
    this.sql.exec('INSERT OR REPLACE INTO journal_chunks (process_id, stream, offset, data) VALUES (?, ?, ?, ?)', processId, stream, chunk.offset, chunk.bytes);
  }

  /** Drops chunks the journal evicted (everything before `start`) or lost to a gap. */
  trimChunks(processId: string, stream: StreamName, start: number): void {
    this.sql.exec('DELETE FROM journal_chunks WHERE process_id = ? AND stream = ? AND offset < ?', processId, stream, start);
  }

  /** The stored row holding `from` (sliced to start there), or the first row after it. */
  readChunk(processId: string, stream: StreamName, from: number): Chunk | undefined {
    const row =
      this.sql.exec('SELECT offset, data FROM journal_chunks WHERE process_id = ? AND stream = ? AND offset <= ? ORDER BY offset DESC LIMIT 1', processId, stream, from).toArray()[0] ??
      this.sql.exec('SELECT offset, data FROM journal_chunks WHERE process_id = ? AND stream = ? AND offset > ? ORDER BY offset LIMIT 1', processId, stream, from).toArray()[0];
    if (!row || !(row.data instanceof ArrayBuffer)) return undefined;
    const offset = Number(row.offset);
    const bytes = new Uint8Array(row.data);
    if (from < offset) return { offset, bytes };
    if (from >= offset + bytes.byteLength) {
      // `from` is past this row: the next one, if any.
      const next = this.sql.exec('SELECT offset, data FROM journal_chunks WHERE process_id = ? AND stream = ? AND offset > ? ORDER BY offset LIMIT 1', processId, stream, from).toArray()[0];
      return next && next.data instanceof ArrayBuffer ? { offset: Number(next.offset), bytes: new Uint8Array(next.data) } : undefined;
    }
    return { offset: from, bytes: bytes.subarray(from - offset) };
  }

  firstChunkOffset(processId: string, stream: StreamName): number | undefined {
    const row = this.sql.exec('SELECT MIN(offset) AS o FROM journal_chunks WHERE process_id = ? AND stream = ?', processId, stream).toArray()[0];
    return row?.o == null ? undefined : Number(row.o);
  }

  /** Every stream with stored bytes and where they end (after a restart). */
  storedStreams(): Array<{ processId: string; stream: StreamName; end: number }> {
    const out: Array<{ processId: string; stream: StreamName; end: number }> = [];
    for (const r of this.sql.exec('SELECT process_id, stream, MAX(offset + length(data)) AS e FROM journal_chunks GROUP BY process_id, stream')) {
      const stream = String(r.stream);
      if (isStreamName(stream)) out.push({ processId: String(r.process_id), stream, end: Number(r.e) });
    }
    return out;
  }

  private forget(id: string): void {
    this.sql.exec('DELETE FROM processes WHERE id = ?', id);
    this.sql.exec('DELETE FROM journal_chunks WHERE process_id = ?', id);
  }
}

/** JSON columns, decoded (a row that does not decode is a storage fault: zod throws). */
const StoredCommand = z.array(z.string());
const StoredEndOffsets = z.object({ stdout: z.number(), stderr: z.number(), pty: z.number() });

function isStreamName(s: string): s is StreamName {
  return Object.hasOwn(StreamIndex, s);
}

function toRow(r: Record<string, SqlStorageValue>): ProcessRow {
  return {
    id: String(r.id),
    streamBase: Number(r.stream_base),
    command: StoredCommand.parse(JSON.parse(String(r.command))),
    display: String(r.display),
    cwd: r.cwd == null ? null : String(r.cwd),
    tty: Number(r.tty) === 1,
    startedAt: Number(r.started_at),
    endedAt: r.ended_at == null ? null : Number(r.ended_at),
    exitCode: r.exit_code == null ? null : Number(r.exit_code),
    signal: r.signal == null ? null : String(r.signal),
    reason: r.reason == null ? null : String(r.reason),
    stdinOffset: Number(r.stdin_offset),
    endOffsets: r.end_offsets == null ? null : StoredEndOffsets.parse(JSON.parse(String(r.end_offsets))),
  };
}
