import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { memoryLogger } from '../../../agent/logger';
import { measureDiskUse, WorkspaceQuota } from '../../../agent/services/workspace-quota';

describe('WorkspaceQuota', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quota-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('measures allocated bytes and counts a hard link once', async () => {
    fs.mkdirSync(path.join(dir, 'a/b'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'a/b/one'), Buffer.alloc(256 * 1024, 1));
    fs.linkSync(path.join(dir, 'a/b/one'), path.join(dir, 'a/two'));
    const used = await measureDiskUse(dir);
    expect(used).toBeGreaterThanOrEqual(256 * 1024);
    expect(used).toBeLessThan(2 * 256 * 1024);
  });

  it('allows writes under the quota, warns once past it, answers 507 and stops past twice it', async () => {
    const events: string[] = [];
    let size = 100;
    const q = new WorkspaceQuota({
      root: dir,
      quotaBytes: 1000,
      logger: memoryLogger(),
      measure: async () => size,
      onWarning: (used, quota) => events.push(`warning ${used}/${quota}`),
      onExceeded: (used, quota) => events.push(`stop ${used}/${quota}`),
    });
    await q.refresh();
    expect(() => q.check()).not.toThrow();
    size = 1500;
    await q.refresh();
    await q.refresh();
    expect(q.diskUsed).toBe(1500);
    expect(() => q.check()).toThrow(expect.objectContaining({ code: 'quota_exceeded', details: { diskUsed: 1500, quota: 1000 } }));
    size = 2500;
    await q.refresh();
    await q.refresh();
    expect(events).toEqual(['warning 1500/1000', 'stop 2500/1000']);
  });
});
