import type { Migration } from '../db/migrate';

/**
 * Registered agents: every agent join token names one of these rows by its
 * `sub`, and the edge accepts the token only while the row is neither
 * revoked nor past `expires_at`. Times are ISO-8601 UTC strings, which sort
 * and compare as text. Names are for people and need not be unique.
 */
export const createAgents: Migration = {
  id: '0002-create-agents',
  statements: [
    `CREATE TABLE IF NOT EXISTS agents (
      id TEXT PRIMARY KEY,
      name TEXT NOT NULL,
      created_at TEXT NOT NULL,
      expires_at TEXT NOT NULL,
      revoked_at TEXT
    )`,
    'CREATE INDEX IF NOT EXISTS agents_by_name ON agents (name)',
  ],
};
