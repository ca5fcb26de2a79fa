/**
 * Modes of what the agent keeps on the host. STATE_DIR holds secrets.json
 * (JWT_SECRET, AGENT_SECRET) and users' data, so it is the agent user's alone
 * (0700) and secrets are 0600, also when an older run or another tool left
 * them looser. The folders above each workspace (the base and each user's
 * folder) are 0700 too: a setuid file or a world-readable secret a session
 * makes in its workspace is then out of reach of every other host user.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../logger';

async function tighten(p: string, mode: number, logger: Logger): Promise<void> {
  let st;
  try {
    st = await fs.lstat(p);
  } catch {
    return; // not made yet: whoever makes it uses the mode
  }
  if (st.isSymbolicLink() || (st.mode & 0o777) === mode) return;
  try {
    await fs.chmod(p, mode);
    logger.info('tightened permissions', { path: p, from: (st.mode & 0o777).toString(8), to: mode.toString(8) });
  } catch (err) {
    logger.warn('could not tighten permissions', { path: p, error: err instanceof Error ? err.message : String(err) });
  }
}

export async function tightenStateDir(stateDir: string, workspaceBase: string, logger: Logger): Promise<void> {
  await tighten(stateDir, 0o700, logger);
  await tighten(path.join(stateDir, 'secrets.json'), 0o600, logger);
  await fs.mkdir(workspaceBase, { recursive: true, mode: 0o700 });
  await tighten(workspaceBase, 0o700, logger);
  let users: string[] = [];
  try {
    users = await fs.readdir(workspaceBase);
  } catch {
    return;
  }
  for (const u of users) await tighten(path.join(workspaceBase, u), 0o700, logger);
}
