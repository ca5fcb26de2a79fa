/**
 * Applies the D1 migrations in ../migrations, in order, each once. The edge
 * runs this itself before its first query in an isolate, so `npm start`, the
 * tests and a fresh deployment need no separate migration step.
 *
 * Each migration is one D1 batch (a transaction) that also records its id in
 * `_migrations`; if two isolates race, the loser's batch fails on that primary
 * key, rolls back, and it finds the migration applied when it looks again.
 */
import { log } from '../log';
import { migrations as allMigrations } from '../migrations';

export interface Migration {
  /** Stable and sortable, e.g. "0001-create-users". */
  readonly id: string;
  /** SQL statements, run in one transaction. */
  readonly statements: readonly string[];
}

const CREATE_LEDGER = `CREATE TABLE IF NOT EXISTS _migrations (
  id TEXT PRIMARY KEY,
  applied_at TEXT NOT NULL
)`;

async function appliedIds(db: D1Database): Promise<Set<string>> {
  const { results } = await db.prepare('SELECT id FROM _migrations').all<{ id: string }>();
  return new Set(results.map((r) => r.id));
}

/** Applies every migration not yet recorded; returns the ids it applied. */
export async function migrate(db: D1Database, migrations: readonly Migration[] = allMigrations): Promise<string[]> {
  await db.prepare(CREATE_LEDGER).run();
  let applied = await appliedIds(db);
  const done: string[] = [];
  for (const m of migrations) {
    if (applied.has(m.id)) continue;
    try {
      await db.batch([
        db.prepare('INSERT INTO _migrations (id, applied_at) VALUES (?, ?)').bind(m.id, new Date().toISOString()),
        ...m.statements.map((sql) => db.prepare(sql)),
      ]);
      done.push(m.id);
      log('info', 'applied D1 migration', { migration: m.id });
    } catch (err) {
      applied = await appliedIds(db);
      if (!applied.has(m.id)) throw err;
    }
  }
  return done;
}

let ready: Promise<void> | undefined;

/** Migrates once per isolate; later calls share the first call's promise. A failure is retried by the next caller. */
export function ensureMigrated(db: D1Database): Promise<void> {
  ready ??= migrate(db).then(
    () => undefined,
    (err: unknown) => {
      ready = undefined;
      throw err;
    },
  );
  return ready;
}
