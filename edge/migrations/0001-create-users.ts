import type { Migration } from '../db/migrate';

/**
 * Users. Emails are stored lowercased, so the plain UNIQUE is case-insensitive.
 * Usernames keep the case the user chose but are unique regardless of case
 * (NOCASE: "Alice" and "alice" are the same name), so nobody can pass for
 * someone else by changing a letter's case.
 */
export const createUsers: Migration = {
  id: '0001-create-users',
  statements: [
    `CREATE TABLE IF NOT EXISTS users (
      id TEXT PRIMARY KEY,
      email TEXT NOT NULL UNIQUE,
      username TEXT NOT NULL UNIQUE COLLATE NOCASE,
      password_hash TEXT NOT NULL,
      created_at TEXT NOT NULL,
      updated_at TEXT NOT NULL
    )`,
  ],
};
