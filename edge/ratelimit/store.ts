/** The rate-limit windows of one client, in its RateLimiterDO's SQLite storage. */
import type { WindowState } from './window';

export class WindowStore {
  constructor(private readonly sql: SqlStorage) {
    sql.exec(`CREATE TABLE IF NOT EXISTS windows (
      bucket TEXT PRIMARY KEY,
      start INTEGER NOT NULL,
      count INTEGER NOT NULL,
      reset_at INTEGER NOT NULL
    )`);
  }

  load(buckets: readonly string[]): Map<string, WindowState> {
    const out = new Map<string, WindowState>();
    for (const bucket of buckets) {
      const row = this.sql.exec('SELECT start, count FROM windows WHERE bucket = ?', bucket).toArray()[0];
      if (row) out.set(bucket, { start: Number(row.start), count: Number(row.count) });
    }
    return out;
  }

  save(bucket: string, state: WindowState, resetAt: number): void {
    this.sql.exec(
      `INSERT INTO windows (bucket, start, count, reset_at) VALUES (?, ?, ?, ?)
       ON CONFLICT(bucket) DO UPDATE SET start = excluded.start, count = excluded.count, reset_at = excluded.reset_at`,
      bucket,
      state.start,
      state.count,
      resetAt,
    );
  }

  /** Forgets closed windows; returns when the earliest open one closes, or null when none is left. */
  prune(now: number): number | null {
    this.sql.exec('DELETE FROM windows WHERE reset_at <= ?', now);
    const row = this.sql.exec('SELECT MIN(reset_at) AS next FROM windows').toArray()[0];
    return row?.next == null ? null : Number(row.next);
  }
}
