/**
 * Session workspaces on the host: `<workspaceBase>/<userId>/<sessionId>`.
 * Both runtimes use these helpers, so the layout and the id checks that keep
 * a path inside the base live in one place.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { AppError, ErrorCode } from '../../shared/errors';
import type { Logger } from '../logger';

/** Ids become folder names and label values: one path segment, no dots. */
const SAFE_ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

export function checkId(kind: 'sessionId' | 'userId', value: string): string {
  if (!SAFE_ID.test(value)) {
    throw new AppError(ErrorCode.ValidationFailed, `${kind} must be 1-64 letters, digits, "_" or "-"`);
  }
  return value;
}

export function workspacePath(base: string, userId: string, sessionId: string): string {
  return path.join(base, checkId('userId', userId), checkId('sessionId', sessionId));
}

export interface PreparedWorkspace {
  path: string;
  /** True when this call made the folder, so a failed create may remove it. */
  created: boolean;
}

/**
 * Makes the folder (and its parents) and hands it to the container's user.
 * When the agent may not chown (not root), the folder is made world-writable
 * instead, with a warning, so the container can still write to it.
 */
export async function prepareWorkspace(
  base: string,
  userId: string,
  sessionId: string,
  owner: { uid: number; gid: number } | undefined,
  logger: Logger,
): Promise<PreparedWorkspace> {
  const dir = workspacePath(base, userId, sessionId);
  const created = !(await exists(dir));
  // The parents are the agent user's alone (0700), whatever mode they had: nothing in a
  // workspace (a setuid file, a world-readable secret) is reachable by another host user.
  for (const parent of [base, path.dirname(dir)]) {
    await fs.mkdir(parent, { recursive: true, mode: 0o700 });
    await fs.chmod(parent, 0o700);
  }
  await fs.mkdir(dir, { mode: 0o755 }).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'EEXIST') throw err;
  });
  if (owner) {
    try {
      await fs.chown(dir, owner.uid, owner.gid);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EPERM') throw err;
      if (process.getuid?.() !== owner.uid) {
        logger.warn('cannot chown the workspace; making it world-writable', { workspace: dir, uid: owner.uid });
        await fs.chmod(dir, 0o777);
      }
    }
  }
  return { path: dir, created };
}

/** Removes a session's folder and then its user's folder when that is empty. Never throws for a missing folder. */
export async function removeWorkspace(base: string, userId: string, sessionId: string): Promise<void> {
  const dir = workspacePath(base, userId, sessionId);
  await fs.rm(dir, { recursive: true, force: true });
  await fs.rmdir(path.dirname(dir)).catch(() => undefined);
}

/** Finds which user's folder holds a session, for removals after the container is gone. */
export async function findWorkspaceOwner(base: string, sessionId: string): Promise<string | undefined> {
  checkId('sessionId', sessionId);
  let users: string[];
  try {
    users = await fs.readdir(base);
  } catch {
    return undefined;
  }
  for (const userId of users) {
    if (!SAFE_ID.test(userId)) continue;
    if (await exists(path.join(base, userId, sessionId))) return userId;
  }
  return undefined;
}

async function exists(p: string): Promise<boolean> {
  try {
    await fs.lstat(p);
    return true;
  } catch {
    return false;
  }
}
