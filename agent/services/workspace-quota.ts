/**
 * A session's workspace disk use against WORKSPACE_QUOTA. The agent measures
 * the folder itself (allocated blocks of every entry, hard links counted
 * once), because the host's ext4 offers no per-folder quota and Docker's
 * `storage-opt size` does not apply to bind mounts. Measuring every
 * `intervalMs` bounds what a session can overshoot to what it writes in one
 * interval:
 *   - past the quota: API writes get 507 quota_exceeded (`check()`), and the
 *     session's clients are told once (`onWarning`);
 *   - past `stopFactor` times the quota (writes from inside the container
 *     are not stopped by the API), the container is stopped (`onExceeded`).
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { AppError, ErrorCode } from '../../shared/errors';
import type { Logger } from '../logger';

/** Entries measured at most per walk: a pathological tree cannot make one walk endless. */
const MAX_ENTRIES = 2_000_000;

export async function measureDiskUse(root: string): Promise<number> {
  let total = 0;
  let entries = 0;
  const seen = new Set<string>();
  const stack = [root];
  while (stack.length > 0 && entries < MAX_ENTRIES) {
    const dir = stack.pop()!;
    let names: string[];
    try {
      names = await fs.readdir(dir);
    } catch {
      continue; // removed meanwhile, or not a folder any more
    }
    for (const name of names) {
      const p = path.join(dir, name);
      entries++;
      try {
        const st = await fs.lstat(p);
        if (st.nlink > 1 && !st.isDirectory()) {
          const key = `${st.dev}:${st.ino}`;
          if (seen.has(key)) continue;
          seen.add(key);
        }
        total += st.blocks * 512;
        if (st.isDirectory()) stack.push(p);
      } catch {
        // gone between readdir and lstat
      }
    }
  }
  return total;
}

export interface WorkspaceQuotaOptions {
  root: string;
  quotaBytes: number;
  logger: Logger;
  /** Measuring interval (default 10 s). */
  intervalMs?: number;
  /** The container is stopped past quota × stopFactor (default 2). */
  stopFactor?: number;
  onWarning(diskUsed: number, quota: number): void;
  onExceeded(diskUsed: number, quota: number): void;
  measure?: (root: string) => Promise<number>;
}

export class WorkspaceQuota {
  private used: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private warned = false;
  private stopped = false;
  private measuring: Promise<number> | undefined;

  constructor(private readonly opts: WorkspaceQuotaOptions) {}

  start(): void {
    void this.refresh();
    this.timer = setInterval(() => void this.refresh(), this.opts.intervalMs ?? 10_000);
    this.timer.unref();
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** Bytes the workspace held at the last measurement (undefined before the first). */
  get diskUsed(): number | undefined {
    return this.used;
  }

  /** Measures now (one walk at a time) and acts on the result. */
  refresh(): Promise<number> {
    this.measuring ??= (this.opts.measure ?? measureDiskUse)(this.opts.root)
      .then((used) => {
        this.used = used;
        this.act(used);
        return used;
      })
      .finally(() => {
        this.measuring = undefined;
      });
    return this.measuring;
  }

  /** Throws 507 quota_exceeded when the last measurement was past the quota. */
  check(): void {
    const { quotaBytes } = this.opts;
    if (this.used !== undefined && this.used > quotaBytes) {
      throw new AppError(ErrorCode.QuotaExceeded, `the workspace uses ${this.used} bytes of its ${quotaBytes}-byte quota (WORKSPACE_QUOTA): delete files first`, {
        diskUsed: this.used,
        quota: quotaBytes,
      });
    }
  }

  private act(used: number): void {
    const { quotaBytes, logger } = this.opts;
    if (used <= quotaBytes) {
      this.warned = false;
      this.stopped = false;
      return;
    }
    if (!this.warned) {
      this.warned = true;
      logger.warn('workspace past its quota', { diskUsed: used, quota: quotaBytes });
      this.opts.onWarning(used, quotaBytes);
    }
    if (!this.stopped && used > quotaBytes * (this.opts.stopFactor ?? 2)) {
      this.stopped = true;
      logger.warn('workspace far past its quota: stopping the container', { diskUsed: used, quota: quotaBytes });
      this.opts.onExceeded(used, quotaBytes);
    }
  }
}
