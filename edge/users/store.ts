/**
 * Users in D1. Every query binds its values (never string-built SQL), emails
 * are lowercased on the way in, and usernames are compared without regard to
 * case (the column is COLLATE NOCASE; see ../migrations/0001-create-users.ts).
 */
import { AppError, ErrorCode } from '../../shared/errors';
import { newId } from '../../shared/ids';
import { ensureMigrated } from '../db/migrate';

export interface User {
  id: string;
  email: string;
  username: string;
  createdAt: string;
  updatedAt: string;
}

export interface UserWithHash extends User {
  passwordHash: string;
}

interface Row {
  id: string;
  email: string;
  username: string;
  password_hash: string;
  created_at: string;
  updated_at: string;
}

export function normalizeEmail(email: string): string {
  return email.trim().toLowerCase();
}

/** The store, once the schema is in place (migrated on first use in an isolate). */
export async function openUserStore(db: D1Database): Promise<UserStore> {
  await ensureMigrated(db);
  return new UserStore(db);
}

export class UserStore {
  constructor(private readonly db: D1Database) {}

  /** Creates a user; 409 `conflict` naming `email` and/or `username` when either is taken. */
  async create(input: { email: string; username: string; passwordHash: string }, now = new Date()): Promise<User> {
    const email = normalizeEmail(input.email);
    await this.refuseTaken(email, input.username);
    const stamp = now.toISOString();
    const user: User = { id: newId('usr'), email, username: input.username, createdAt: stamp, updatedAt: stamp };
    try {
      await this.db
        .prepare('INSERT INTO users (id, email, username, password_hash, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)')
        .bind(user.id, user.email, user.username, input.passwordHash, stamp, stamp)
        .run();
    } catch (err) {
      // Another request took the email or username between the check and the insert.
      if (/UNIQUE constraint failed/i.test(err instanceof Error ? err.message : String(err))) {
        await this.refuseTaken(email, input.username);
      }
      throw err;
    }
    return user;
  }

  async findByEmail(email: string): Promise<UserWithHash | undefined> {
    const row = await this.db.prepare('SELECT * FROM users WHERE email = ?').bind(normalizeEmail(email)).first<Row>();
    return row ? withHash(row) : undefined;
  }

  async findById(id: string): Promise<User | undefined> {
    const row = await this.db.prepare('SELECT * FROM users WHERE id = ?').bind(id).first<Row>();
    return row ? toUser(row) : undefined;
  }

  private async refuseTaken(email: string, username: string): Promise<void> {
    const { results } = await this.db
      .prepare('SELECT email, username FROM users WHERE email = ? OR username = ?')
      .bind(email, username)
      .all<{ email: string; username: string }>();
    const fields: Array<'email' | 'username'> = [];
    if (results.some((r) => r.email === email)) fields.push('email');
    if (results.some((r) => r.username.toLowerCase() === username.toLowerCase())) fields.push('username');
    if (fields.length === 0) return;
    const message = fields.length === 2 ? 'email and username are already taken' : `${fields[0]} is already taken`;
    throw new AppError(ErrorCode.Conflict, message, { fields });
  }
}

function toUser(row: Row): User {
  return {
    id: String(row.id),
    email: String(row.email),
    username: String(row.username),
    createdAt: String(row.created_at),
    updatedAt: String(row.updated_at),
  };
}

function withHash(row: Row): UserWithHash {
  return { ...toUser(row), passwordHash: String(row.password_hash) };
}
