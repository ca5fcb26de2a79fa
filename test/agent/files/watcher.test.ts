import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { memoryLogger } from '../../../agent/logger';
import { FileService } from '../../../agent/services/files/file-service';
import { matcher, WorkspaceWatcher } from '../../../agent/services/files/watcher';
import type { FileChanged } from '../../../shared/api/files';
import { makeSandbox, type Sandbox } from './fixtures';

const sh = promisify(execFile);
const DEADLINE = 15_000;

/** Collects changes and resolves waits as soon as a matching change arrives. */
class Recorder {
  readonly changes: FileChanged[] = [];
  private waiters: Array<{ pred: (c: FileChanged) => boolean; resolve: (c: FileChanged) => void }> = [];
  readonly listener = (c: FileChanged) => {
    this.changes.push(c);
    this.waiters = this.waiters.filter((w) => (w.pred(c) ? (w.resolve(c), false) : true));
  };
  /** The first change (already seen or still to come) matching `event` and `path`, or a failure after the deadline. */
  waitFor(event: FileChanged['event'], p: string): Promise<FileChanged> {
    const pred = (c: FileChanged) => c.event === event && c.path === p;
    const seen = this.changes.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${event} ${p} within ${DEADLINE} ms; saw ${JSON.stringify(this.changes)}`)), DEADLINE);
      this.waiters.push({ pred, resolve: (c) => (clearTimeout(timer), resolve(c)) });
    });
  }
}

describe('WorkspaceWatcher', () => {
  let sb: Sandbox;
  let watcher: WorkspaceWatcher;
  let rec: Recorder;
  beforeEach(async () => {
    sb = await makeSandbox();
    await fs.promises.mkdir(path.join(sb.ws, 'existing'));
    await fs.promises.writeFile(path.join(sb.ws, 'existing', 'old.txt'), 'old');
    watcher = await WorkspaceWatcher.start({ root: sb.ws, logger: memoryLogger() });
    rec = new Recorder();
    watcher.subscribe({ path: '/workspace', recursive: true }, rec.listener);
  });
  afterEach(async () => {
    await watcher.close();
    await sb.cleanup();
  });

  it('does not report what was there before it started', async () => {
    await fs.promises.writeFile(path.join(sb.ws, 'marker'), 'x');
    await rec.waitFor('add_file', '/workspace/marker');
    expect(rec.changes.map((c) => c.path)).toEqual(['/workspace/marker']);
  });

  it('sees a file created by another process in folders that process just made', async () => {
    await sh('sh', ['-c', 'mkdir -p a/b && echo x > a/b/f.txt'], { cwd: sb.ws });
    await rec.waitFor('add_dir', '/workspace/a');
    await rec.waitFor('add_dir', '/workspace/a/b');
    await rec.waitFor('add_file', '/workspace/a/b/f.txt');
    // Parents come before what is inside them.
    const order = rec.changes.map((c) => c.path);
    expect(order.indexOf('/workspace/a')).toBeLessThan(order.indexOf('/workspace/a/b/f.txt'));
  });

  it('sees files created deep inside quickly nested new folders (mkdir -p a/b/c && touch a/b/c/x)', async () => {
    await sh('sh', ['-c', 'mkdir -p q/r/s && touch q/r/s/x && echo y > q/r/s/y'], { cwd: sb.ws });
    await rec.waitFor('add_file', '/workspace/q/r/s/x');
    await rec.waitFor('add_file', '/workspace/q/r/s/y');
  });

  it('sees every file of an npm-install-like burst (100 folders, 1,000 files)', async () => {
    const script = 'for d in $(seq 1 50); do mkdir -p node_modules/pkg$d/lib; for f in $(seq 1 20); do echo x > node_modules/pkg$d/lib/f$f.js; done; done';
    await sh('sh', ['-c', script], { cwd: sb.ws });
    await rec.waitFor('add_file', '/workspace/node_modules/pkg50/lib/f20.js');
    await watcher.flush();
    const files = new Set(rec.changes.filter((c) => c.event === 'add_file').map((c) => c.path));
    expect(files.size).toBe(1000);
    expect(rec.changes.filter((c) => c.event === 'add_dir')).toHaveLength(101);
    expect(rec.changes.filter((c) => c.event.startsWith('remove'))).toEqual([]);
  });

  it('reports changes, removals and replacements once each', async () => {
    await sh('sh', ['-c', 'echo more >> existing/old.txt'], { cwd: sb.ws });
    await rec.waitFor('change', '/workspace/existing/old.txt');
    await sh('sh', ['-c', 'rm existing/old.txt'], { cwd: sb.ws });
    await rec.waitFor('remove_file', '/workspace/existing/old.txt');
    await sh('sh', ['-c', 'rm -r existing'], { cwd: sb.ws });
    await rec.waitFor('remove_dir', '/workspace/existing');
    await watcher.flush();
    expect(rec.changes.map((c) => `${c.event} ${c.path}`)).toEqual([
      'change /workspace/existing/old.txt',
      'remove_file /workspace/existing/old.txt',
      'remove_dir /workspace/existing',
    ]);
  });

  it('coalesces a burst of writes to one file', async () => {
    await sh('sh', ['-c', 'for i in 1 2 3 4 5 6 7 8 9 10; do echo $i >> burst.txt; done'], { cwd: sb.ws });
    await rec.waitFor('add_file', '/workspace/burst.txt');
    await watcher.flush();
    const forBurst = rec.changes.filter((c) => c.path === '/workspace/burst.txt');
    expect(forBurst.length).toBeLessThanOrEqual(3); // one add, at most a change or two if the shell was slow
  });

  it('reports one remove_dir for a removed tree and stops watching inside it', async () => {
    await sh('sh', ['-c', 'mkdir -p t/u/v && touch t/u/v/w'], { cwd: sb.ws });
    await rec.waitFor('add_file', '/workspace/t/u/v/w');
    await sh('sh', ['-c', 'rm -rf t'], { cwd: sb.ws });
    await rec.waitFor('remove_dir', '/workspace/t');
    await watcher.flush();
    expect(rec.changes.filter((c) => c.event.startsWith('remove'))).toEqual([expect.objectContaining({ event: 'remove_dir', path: '/workspace/t' })]);
  });

  it('follows a renamed folder: old path removed, new path and its contents added', async () => {
    await sh('sh', ['-c', 'mv existing moved'], { cwd: sb.ws });
    await rec.waitFor('remove_dir', '/workspace/existing');
    await rec.waitFor('add_dir', '/workspace/moved');
    await rec.waitFor('add_file', '/workspace/moved/old.txt');
    await sh('sh', ['-c', 'echo new > moved/new.txt'], { cwd: sb.ws });
    await rec.waitFor('add_file', '/workspace/moved/new.txt');
  });

  it('sees atomic writes by the file service as add then change, never its temporary files', async () => {
    const svc = await FileService.open({ root: sb.ws, logger: memoryLogger() });
    await svc.writeFile('svc.txt', 'one');
    await rec.waitFor('add_file', '/workspace/svc.txt');
    await svc.writeFile('svc.txt', 'two!');
    await rec.waitFor('change', '/workspace/svc.txt');
    await svc.extractTar('.', [await (await import('./fixtures')).makeTar([{ name: 'from-tar/x.txt', content: 'x' }])]);
    await rec.waitFor('add_file', '/workspace/from-tar/x.txt');
    await watcher.flush();
    expect(rec.changes.filter((c) => c.path.includes('.mominai-'))).toEqual([]);
  });

  it('reports a symlink as a file and does not follow it out', async () => {
    await fs.promises.symlink(sb.outside, path.join(sb.ws, 'out-link'));
    await rec.waitFor('add_file', '/workspace/out-link');
    await fs.promises.writeFile(path.join(sb.outside, 'new-outside.txt'), 'x');
    await fs.promises.writeFile(path.join(sb.ws, 'after.txt'), 'x');
    await rec.waitFor('add_file', '/workspace/after.txt');
    await watcher.flush();
    expect(rec.changes.some((c) => c.path.includes('new-outside'))).toBe(false);
  });

  describe('journal', () => {
    it('lets a client that reconnects catch up with changes_since, or tells it to resync', async () => {
      const v0 = watcher.journal.version;
      await sh('sh', ['-c', 'mkdir -p late && echo 1 > late/one.txt'], { cwd: sb.ws });
      await rec.waitFor('add_file', '/workspace/late/one.txt');
      const caughtUp = watcher.changesSince(v0);
      expect(caughtUp.resync).toBe(false);
      if (!caughtUp.resync) {
        expect(caughtUp.changes.map((c) => `${c.event} ${c.path}`)).toEqual(['add_dir /workspace/late', 'add_file /workspace/late/one.txt']);
        expect(caughtUp.version).toBe(caughtUp.changes.at(-1)?.version);
      }
      expect(watcher.changesSince(v0, { path: 'late', recursive: false })).toMatchObject({ resync: false, changes: { length: 2 } });
      expect(watcher.changesSince(v0, { path: 'elsewhere', recursive: true })).toMatchObject({ resync: false, changes: [] });
      expect(watcher.changesSince(v0 - 1)).toMatchObject({ resync: true });
    });

    it('resyncs a client once the bounded journal has moved past it', async () => {
      const small = await WorkspaceWatcher.start({ root: sb.ws, logger: memoryLogger(), journal: new (await import('../../../agent/services/files/change-journal')).ChangeJournal({ capacity: 3 }) });
      try {
        const r = new Recorder();
        small.subscribe({ path: '.', recursive: true }, r.listener);
        const v0 = small.journal.version;
        await sh('sh', ['-c', 'touch j1 j2 j3 j4 j5'], { cwd: sb.ws });
        await r.waitFor('add_file', '/workspace/j5');
        await small.flush();
        expect(small.changesSince(v0)).toEqual({ version: small.journal.version, resync: true });
        expect(small.changesSince(small.journal.version - 3)).toMatchObject({ resync: false, changes: { length: 3 } });
      } finally {
        await small.close();
      }
    });
  });
});

describe('matcher (watch filters)', () => {
  const ch = (event: FileChanged['event'], p: string): FileChanged => ({ version: 1, event, path: p });
  it('matches the path itself, its children, and descendants when recursive', () => {
    const flat = matcher({ path: 'src', recursive: false });
    const deep = matcher({ path: '/workspace/src', recursive: true });
    expect(flat(ch('change', '/workspace/src'))).toBe(true);
    expect(flat(ch('add_file', '/workspace/src/a.ts'))).toBe(true);
    expect(flat(ch('add_file', '/workspace/src/lib/b.ts'))).toBe(false);
    expect(deep(ch('add_file', '/workspace/src/lib/b.ts'))).toBe(true);
    expect(deep(ch('add_file', '/workspace/srcx/b.ts'))).toBe(false);
  });

  it('matches the removal of a folder above the watched path', () => {
    const m = matcher({ path: 'src/lib', recursive: true });
    expect(m(ch('remove_dir', '/workspace/src'))).toBe(true);
    expect(m(ch('add_dir', '/workspace/src'))).toBe(false);
  });

  it('refuses watch paths outside the workspace', () => {
    expect(() => matcher({ path: '../x', recursive: true })).toThrow(/leaves the workspace/);
  });
});
