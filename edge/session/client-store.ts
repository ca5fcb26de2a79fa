/**
 * What each client socket of a Session DO needs after the DO wakes from
 * hibernation (its sockets stay open while its memory goes): which process
 * streams it follows and up to which offset it has acknowledged, and which
 * paths it watches. The socket's attachment carries a socket id (`sid`); the
 * rest lives here, in the DO's SQLite storage, so the in-memory maps of the
 * relays are caches rebuilt from it on wake.
 */
import type { StreamName } from '../../shared/protocol/session-data';
import { StreamIndex } from '../../shared/protocol/session-data';

export interface Follow {
  processId: string;
  stream: StreamName;
  acked: number;
}

export interface Watch {
  path: string;
  recursive: boolean;
}

/** Storage of per-socket state; ./client-store.ts has the SQLite one, test/helpers an in-memory one. */
export interface ClientStore {
  follows(sid: string): Follow[];
  setFollow(sid: string, f: Follow): void;
  dropFollows(sid: string, processId: string): void;
  watches(sid: string): Watch[];
  addWatch(sid: string, w: Watch): void;
  /** Forgets a socket that closed. */
  forget(sid: string): void;
  /** Forgets every socket not in `live` (ones that closed while the DO was not there to see it). */
  keepOnly(live: Set<string>): void;
}

/** Most watches one socket may hold (each `watch` frame adds one). */
export const MAX_WATCHES_PER_SOCKET = 64;

function isStream(s: string): s is StreamName {
  return Object.hasOwn(StreamIndex, s);
}

export class SqlClientStore implements ClientStore {
  constructor(private readonly sql: SqlStorage) {
    sql.exec(`CREATE TABLE IF NOT EXISTS client_follows (
      sid TEXT NOT NULL, process_id TEXT NOT NULL, stream TEXT NOT NULL, acked INTEGER NOT NULL,
      PRIMARY KEY (sid, process_id, stream))`);
    sql.exec(`CREATE TABLE IF NOT EXISTS client_watches (
      sid TEXT NOT NULL, path TEXT NOT NULL, recursive INTEGER NOT NULL, PRIMARY KEY (sid, path, recursive))`);
  }

  follows(sid: string): Follow[] {
    const out: Follow[] = [];
    for (const r of this.sql.exec('SELECT process_id, stream, acked FROM client_follows WHERE sid = ?', sid)) {
      const stream = String(r.stream);
      if (isStream(stream)) out.push({ processId: String(r.process_id), stream, acked: Number(r.acked) });
    }
    return out;
  }

  setFollow(sid: string, f: Follow): void {
    this.sql.exec('INSERT OR REPLACE INTO client_follows (sid, process_id, stream, acked) VALUES (?, ?, ?, ?)', sid, f.processId, f.stream, f.acked);
  }

  dropFollows(sid: string, processId: string): void {
    this.sql.exec('DELETE FROM client_follows WHERE sid = ? AND process_id = ?', sid, processId);
  }

  watches(sid: string): Watch[] {
    return this.sql
      .exec('SELECT path, recursive FROM client_watches WHERE sid = ?', sid)
      .toArray()
      .map((r) => ({ path: String(r.path), recursive: Number(r.recursive) === 1 }));
  }

  addWatch(sid: string, w: Watch): void {
    this.sql.exec('INSERT OR IGNORE INTO client_watches (sid, path, recursive) VALUES (?, ?, ?)', sid, w.path, w.recursive ? 1 : 0);
  }

  forget(sid: string): void {
    this.sql.exec('DELETE FROM client_follows WHERE sid = ?', sid);
    this.sql.exec('DELETE FROM client_watches WHERE sid = ?', sid);
  }

  keepOnly(live: Set<string>): void {
    const known = new Set<string>();
    for (const r of this.sql.exec('SELECT DISTINCT sid FROM client_follows UNION SELECT DISTINCT sid FROM client_watches')) known.add(String(r.sid));
    for (const sid of known) if (!live.has(sid)) this.forget(sid);
  }
}
