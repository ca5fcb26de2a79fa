/**
 * Who owns a container taken from the warm pool. Docker cannot change a
 * container's labels or env after it is created (the update API ignores
 * `Labels`: checked in test/agent/runtime/warm-pool.test.ts), so a pooled
 * container keeps its `dev.mominai.pool` label and no session or user label
 * for its whole life. The agent records each claim here instead, one file
 * per container, written before the claim changes anything; every place that
 * would read a session's labels asks `ownerOf` first, and the agent's start-up
 * reconciliation reads these records (see ./warm-pool.ts).
 *
 * The records live beside the workspaces, under `<USER_WORKSPACE_BASE>/.pool`,
 * because they must last exactly as long as the containers and workspace
 * folders they describe, and that base is the folder every deployment keeps.
 * The folder is 0700 and each record 0600: a record holds the session's env.
 * `.pool` can never be a user's folder (user ids start with a letter or digit).
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import type { Logger } from '../../logger';
import { checkId } from '../workspace';
import { Labels } from './container-spec';

/** The label every pooled container carries (value: its slot id), claimed or not. */
export const POOL_LABEL = 'dev.mominai.pool';

const SafeId = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/);

export const ClaimRecord = z.object({
  v: z.literal(1),
  containerId: z.string().regex(/^[0-9a-f]{64}$/),
  /** The pool slot: names the slot folder the container's /workspace bind mount was made from. */
  slot: SafeId,
  sessionId: SafeId,
  userId: SafeId,
  ports: z.array(z.number().int().min(1).max(65535)).max(10),
  /** The session's KEY=value env, given to every process at exec time (a running container's env cannot change). */
  env: z.array(z.string().max(40_000)).max(64),
  claimedAt: z.number(),
});
export type ClaimRecord = z.infer<typeof ClaimRecord>;

export function poolRoot(workspaceBase: string): string {
  return path.join(workspaceBase, '.pool');
}

/** The folder a pooled container's /workspace was bound to; after its claim, a symlink to the session's workspace. */
export function slotPath(workspaceBase: string, slot: string): string {
  return path.join(poolRoot(workspaceBase), 'slots', checkId('sessionId', slot));
}

export class ClaimStore {
  private readonly byId = new Map<string, ClaimRecord>();
  private readonly bySessionId = new Map<string, ClaimRecord>();
  readonly dir: string;

  /** Reads every record once, synchronously: it runs at agent start, before any request. */
  constructor(
    private readonly workspaceBase: string,
    private readonly logger: Logger,
  ) {
    this.dir = path.join(poolRoot(workspaceBase), 'claims');
    let names: string[] = [];
    try {
      names = fs.readdirSync(this.dir).filter((n) => n.endsWith('.json'));
    } catch {
      return; // no pool has ever claimed here
    }
    for (const name of names) {
      try {
        const parsed = ClaimRecord.safeParse(JSON.parse(fs.readFileSync(path.join(this.dir, name), 'utf8')));
        if (parsed.success) this.remember(parsed.data);
        else logger.warn('ignored a malformed pool claim record', { file: name, error: parsed.error.issues[0]?.message });
      } catch (err) {
        logger.warn('could not read a pool claim record', { file: name, error: err instanceof Error ? err.message : String(err) });
      }
    }
  }

  byContainer(containerId: string): ClaimRecord | undefined {
    return this.byId.get(containerId);
  }

  bySession(sessionId: string): ClaimRecord | undefined {
    return this.bySessionId.get(sessionId);
  }

  all(): ClaimRecord[] {
    return [...this.byId.values()];
  }

  /** Writes the record (temp file + rename, 0600) before anything else of the claim happens. */
  async put(record: ClaimRecord): Promise<void> {
    await fsp.mkdir(this.dir, { recursive: true, mode: 0o700 });
    await fsp.chmod(poolRoot(this.workspaceBase), 0o700);
    const file = path.join(this.dir, `${record.containerId}.json`);
    const tmp = `${file}.${process.pid}.tmp`;
    await fsp.writeFile(tmp, JSON.stringify(record), { mode: 0o600 });
    await fsp.rename(tmp, file);
    this.remember(record);
  }

  /** Forgets a claim whose container is gone: its record and the slot's symlink (the workspace itself stays). */
  async release(record: ClaimRecord): Promise<void> {
    this.byId.delete(record.containerId);
    if (this.bySessionId.get(record.sessionId)?.containerId === record.containerId) this.bySessionId.delete(record.sessionId);
    await fsp.rm(path.join(this.dir, `${record.containerId}.json`), { force: true });
    const slot = slotPath(this.workspaceBase, record.slot);
    const st = await fsp.lstat(slot).catch(() => undefined);
    if (st?.isSymbolicLink()) await fsp.unlink(slot).catch(() => undefined);
  }

  private remember(record: ClaimRecord): void {
    this.byId.set(record.containerId, record);
    this.bySessionId.set(record.sessionId, record);
  }
}

/**
 * A container's session and user: its labels when it was created for the
 * session, else its claim record; empty strings when it is no session's (an
 * unclaimed pooled container, or someone else's).
 */
export function ownerOf(claims: ClaimStore, containerId: string, labels: Record<string, string> | undefined): { sessionId: string; userId: string } {
  const sessionId = labels?.[Labels.session];
  if (sessionId) return { sessionId, userId: labels?.[Labels.user] ?? '' };
  const claim = claims.byContainer(containerId);
  return claim ? { sessionId: claim.sessionId, userId: claim.userId } : { sessionId: '', userId: '' };
}

/** A claim's KEY=value entries as an exec env (later entries win, as in a container's Env). */
export function claimEnv(record: ClaimRecord | undefined): Record<string, string> {
  const env: Record<string, string> = {};
  for (const entry of record?.env ?? []) {
    const eq = entry.indexOf('=');
    if (eq > 0) env[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  return env;
}
