/**
 * Watches a whole workspace and reports what changed, whoever changed it: the
 * file API, a shell in the container, `npm install`.
 *
 * Node 20's `fs.watch(..., {recursive: true})` works on Linux (20.20 passed
 * our cases) but is a JavaScript layer that adds one inotify watch per file
 * as well as per folder, scans with readdirSync/statSync on the event loop,
 * and stats by path, following links. So this keeps one inotify watch
 * (plain `fs.watch`) per folder only, pinned to a descriptor opened through
 * the jail, and a snapshot of every entry (type, size, mtime, inode). Raw
 * events only say "look at this name": after a short window
 * (`coalesceMs`, 30 ms) the dirty names are lstat-ed and compared with the
 * snapshot, which turns bursts into one event per name and never reports
 * what did not change. A new folder is watched first and listed second, so a
 * file created in it right after `mkdir` is seen either way.
 *
 * Events are `{event, path}` with `path` in the `/workspace/...` form.
 * Removing a folder reports `remove_dir` for it and nothing for what was
 * inside and went in the same window (a slow `rm -rf` spanning windows also
 * reports the entries it removed earlier). A new folder reports `add_dir`
 * and then an add for everything inside it, parents first. A symlink is
 * reported as a file and never descended into. Folders
 * are opened through the path jail and watched through their descriptor, so
 * a folder swapped for a link is not followed out of the workspace.
 *
 * Limits: each folder costs one inotify watch (fs.inotify.max_user_watches,
 * often 8192 to 524288 per user); when they run out, folders beyond are not
 * watched and a warning is logged. An overflowing inotify queue is not
 * reported by Node, so changes can then be missed until that folder changes
 * again. Two writes within one window that leave size and mtime equal look
 * like none.
 */
import fs from 'node:fs';
import type { ChangesSinceResult, FileChanged } from '../../../shared/api/files';
import type { Logger } from '../../logger';
import { ChangeJournal, type ChangeEvent } from './change-journal';
import { hasErrno } from './fs-errors';
import { createJail, openRoot, resolveNames, type DirRef, type Jail } from './path-jail';
import { matcher, type WatchSpec } from './watch-filter';
import { isTempName, toWorkspacePath } from './workspace-path';

export { matcher, type WatchSpec } from './watch-filter';

export interface WatcherOptions {
  /** The workspace's host folder. */
  root: string;
  logger: Logger;
  journal?: ChangeJournal;
  /** How long raw events are gathered before they are compared (≤ 50 ms keeps the IDE snappy). */
  coalesceMs?: number;
  /** Names (below the root) not to watch or report; default: our own temporary files. */
  ignore?: (names: readonly string[]) => boolean;
  procFd?: boolean;
  /** Folders watched at most (MAX_WATCHES_PER_SESSION): one session cannot use up the host user's inotify watches. */
  maxWatches?: number;
}

const LSTAT_BATCH = 64;

type Kind = 'file' | 'dir';
interface Snap {
  kind: Kind;
  size: number;
  mtimeMs: number;
  ino: number;
}

export class WorkspaceWatcher {
  readonly journal: ChangeJournal;
  private readonly known = new Map<string, Snap>();
  private readonly children = new Map<string, Set<string>>();
  private readonly watches = new Map<string, fs.FSWatcher>();
  private readonly listeners = new Set<(change: FileChanged) => void>();
  private dirty = new Set<string>();
  /** Folders whose watch reported an event without a name: list them again. */
  private rescans = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private closed = false;
  private warnedLimit = false;

  private constructor(
    private readonly jail: Jail,
    private readonly logger: Logger,
    private readonly coalesceMs: number,
    private readonly ignore: (names: readonly string[]) => boolean,
    journal: ChangeJournal,
    private readonly maxWatches = Number.POSITIVE_INFINITY,
  ) {
    this.journal = journal;
  }

  /** Scans the workspace (without reporting what is already there) and starts watching. */
  static async start(opts: WatcherOptions): Promise<WorkspaceWatcher> {
    const jail = await createJail(opts.root, opts.procFd === undefined ? {} : { procFd: opts.procFd });
    const w = new WorkspaceWatcher(
      jail,
      opts.logger.child({ component: 'watcher' }),
      opts.coalesceMs ?? 30,
      opts.ignore ?? ((names) => names.some(isTempName)),
      opts.journal ?? new ChangeJournal(),
      opts.maxWatches,
    );
    w.known.set('', { kind: 'dir', size: 0, mtimeMs: 0, ino: 0 });
    await w.addDir('', await openRoot(jail), false);
    return w;
  }

  /**
   * Calls `listener` for each change at or below `spec.path` (direct children
   * only unless recursive), and for the removal of a folder above it. The
   * path is checked lexically here (it need not exist yet). Returns unsubscribe.
   */
  subscribe(spec: WatchSpec, listener: (change: FileChanged) => void): () => void {
    const match = matcher(spec);
    const wrapped = (change: FileChanged) => {
      if (match(change)) listener(change);
    };
    this.listeners.add(wrapped);
    return () => this.listeners.delete(wrapped);
  }

  /** Changes after `version` (for `changes_since`), filtered like `subscribe` when `spec` is given. */
  changesSince(version: number, spec?: WatchSpec): ChangesSinceResult {
    return this.journal.since(version, spec ? matcher(spec) : undefined);
  }

  /** Processes whatever is pending now instead of after the window. */
  async flush(): Promise<void> {
    while (this.running || this.dirty.size > 0 || this.rescans.size > 0) {
      if (this.running) await this.running;
      else this.process();
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    for (const w of this.watches.values()) w.close();
    this.watches.clear();
    this.listeners.clear();
    await this.running;
  }

  private onRaw(dirRel: string, filename: string | null): void {
    if (this.closed) return;
    if (filename === null) this.rescans.add(dirRel);
    else if (!filename.includes('/')) this.dirty.add(join(dirRel, filename));
    else this.rescans.add(dirRel); // not expected from a non-recursive watch: be thorough
    this.schedule();
  }

  private schedule(): void {
    if (!this.timer && !this.running && !this.closed) this.timer = setTimeout(() => this.process(), this.coalesceMs);
  }

  /** Takes everything dirty so far as one batch; a batch runs alone, later events wait for the next. */
  private process(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.running) return;
    const byDepth = (a: string, b: string) => depth(a) - depth(b) || (a < b ? -1 : 1);
    const rescans = [...this.rescans].sort(byDepth);
    const checks = [...this.dirty].sort(byDepth);
    this.rescans = new Set();
    this.dirty = new Set();
    this.running = this.processBatch(rescans, checks)
      .catch((err: unknown) => this.logger.error('watcher batch failed', { err }))
      .finally(() => {
        this.running = undefined;
        if (this.dirty.size > 0 || this.rescans.size > 0) this.schedule();
      });
  }

  private async processBatch(rescans: string[], checks: string[]): Promise<void> {
    // Folders opened for this batch, by path: a burst in one folder walks to it once.
    const opened = new Map<string, DirRef | null>();
    try {
      for (const rel of rescans) {
        if (this.closed) return;
        if (this.known.get(rel)?.kind === 'dir') await this.rescan(rel);
      }
      for (const rel of checks) {
        if (this.closed) return;
        const parent = parentOf(rel);
        if (this.known.get(parent)?.kind !== 'dir') continue; // its folder is gone: already reported
        if (!opened.has(parent)) opened.set(parent, await this.openDir(parent));
        await this.check(rel, opened.get(parent) ?? null);
      }
    } finally {
      for (const dir of opened.values()) await dir?.close();
    }
  }

  /** Compares one entry (in the open folder `parent`) with the snapshot and reports the difference. */
  private async check(rel: string, parent: DirRef | null): Promise<void> {
    if (!parent) {
      if (parentOf(rel) !== '') this.dirty.add(parentOf(rel)); // the folder itself changed: look at it next round
      return;
    }
    await this.apply(rel, await lstatOrNull(parent.child(baseOf(rel))), true, parent);
  }

  /** Lists a folder again and reconciles every entry with the snapshot. */
  private async rescan(rel: string): Promise<void> {
    const dir = await this.openDir(rel);
    if (!dir) return;
    try {
      const onDisk = new Set((await fs.promises.readdir(dir.self)).filter((n) => !this.ignore(split(join(rel, n)))));
      for (const name of this.children.get(rel) ?? []) if (!onDisk.has(name)) await this.apply(join(rel, name), null, true, dir);
      for (const name of onDisk) await this.apply(join(rel, name), await lstatOrNull(dir.child(name)), true, dir);
    } finally {
      await dir.close();
    }
  }

  /** `parent` is the open folder holding `rel`, so a new sub-folder is opened from it without a walk. */
  private async apply(rel: string, st: fs.Stats | null, emit: boolean, parent: DirRef): Promise<void> {
    if (this.ignore(split(rel))) return;
    const old = this.known.get(rel);
    if (!st) {
      if (old) this.forget(rel, emit);
      return;
    }
    const snap: Snap = { kind: st.isDirectory() ? 'dir' : 'file', size: st.size, mtimeMs: st.mtimeMs, ino: st.ino };
    if (old && (old.kind !== snap.kind || (snap.kind === 'dir' && old.ino !== snap.ino))) {
      this.forget(rel, emit); // replaced by something else: report it as gone, then as new
    } else if (old) {
      if (snap.kind === 'file' && (old.size !== snap.size || old.mtimeMs !== snap.mtimeMs || old.ino !== snap.ino)) {
        this.known.set(rel, snap);
        if (emit) this.report({ event: 'change', path: toWorkspacePath(split(rel)) });
      }
      return;
    }
    this.known.set(rel, snap);
    const parentRel = parentOf(rel);
    if (!this.children.has(parentRel)) this.children.set(parentRel, new Set());
    this.children.get(parentRel)?.add(baseOf(rel));
    if (emit) this.report({ event: snap.kind === 'dir' ? 'add_dir' : 'add_file', path: toWorkspacePath(split(rel)) });
    if (snap.kind === 'dir') {
      // O_NOFOLLOW through the parent's descriptor: a folder swapped for a link meanwhile is not entered.
      const dir = await parent.openChild(baseOf(rel)).catch(() => null);
      if (dir) await this.addDir(rel, dir, emit);
    }
  }

  /** Watches an open folder, then lists it (in that order, so nothing created in between is lost); closes it. */
  private async addDir(rel: string, dir: DirRef, emit: boolean): Promise<void> {
    try {
      this.watch(rel, dir);
      const names = await fs.promises.readdir(dir.self);
      for (let i = 0; i < names.length; i += LSTAT_BATCH) {
        const batch = names.slice(i, i + LSTAT_BATCH);
        const stats = await Promise.all(batch.map((name) => lstatOrNull(dir.child(name))));
        for (let j = 0; j < batch.length; j++) await this.apply(join(rel, batch[j] as string), stats[j] ?? null, emit, dir);
      }
    } finally {
      await dir.close();
    }
  }

  private watch(rel: string, dir: DirRef): void {
    if (this.closed || this.watches.has(rel)) return;
    if (this.watches.size >= this.maxWatches) {
      if (!this.warnedLimit) {
        this.warnedLimit = true;
        this.logger.warn('the session reached MAX_WATCHES_PER_SESSION: further folders are not watched', { limit: this.maxWatches });
      }
      return;
    }
    try {
      // Watching through the descriptor pins the inotify watch to this very folder.
      const w = fs.watch(dir.self, { persistent: false }, (_type, filename) => this.onRaw(rel, filename));
      w.on('error', (err) => {
        this.logger.debug('folder watch failed', { path: toWorkspacePath(split(rel)), err });
        w.close();
        if (this.watches.get(rel) === w) this.watches.delete(rel);
      });
      this.watches.set(rel, w);
    } catch (err) {
      if (hasErrno(err, 'ENOSPC', 'EMFILE') && !this.warnedLimit) {
        this.warnedLimit = true;
        this.logger.warn('out of inotify watches: some folders are not watched', { errno: (err as { code?: string }).code });
      } else if (!hasErrno(err, 'ENOSPC', 'EMFILE', 'ENOENT')) {
        throw err;
      }
    }
  }

  /** Drops an entry and everything below it; reports only the entry itself. */
  private forget(rel: string, emit: boolean): void {
    const old = this.known.get(rel);
    if (!old) return;
    for (const name of this.children.get(rel) ?? []) this.forget(join(rel, name), false);
    this.children.delete(rel);
    this.known.delete(rel);
    this.children.get(parentOf(rel))?.delete(baseOf(rel));
    this.watches.get(rel)?.close();
    this.watches.delete(rel);
    if (emit) this.report({ event: old.kind === 'dir' ? 'remove_dir' : 'remove_file', path: toWorkspacePath(split(rel)) });
  }

  private report(change: ChangeEvent): void {
    const entry = this.journal.append(change);
    for (const listener of this.listeners) {
      try {
        listener(entry);
      } catch (err) {
        this.logger.error('watch listener failed', { err });
      }
    }
  }

  /** The folder at `rel`, opened through the jail with no links on the way; null when it is not (or no longer) one. */
  private async openDir(rel: string): Promise<DirRef | null> {
    try {
      const r = await resolveNames(this.jail, split(rel), { final: 'nofollow', links: 'refuse' });
      if (r.name === null) return r.dir;
      try {
        return r.stat?.isDirectory() ? await r.dir.openChild(r.name) : null;
      } finally {
        await r.close();
      }
    } catch {
      return null;
    }
  }
}

async function lstatOrNull(p: string): Promise<fs.Stats | null> {
  try {
    return await fs.promises.lstat(p);
  } catch (err) {
    if (hasErrno(err, 'ENOENT', 'ENOTDIR')) return null;
    throw err;
  }
}

const join = (dir: string, name: string) => (dir === '' ? name : `${dir}/${name}`);
const split = (rel: string) => (rel === '' ? [] : rel.split('/'));
const depth = (rel: string) => (rel === '' ? 0 : rel.split('/').length);
const parentOf = (rel: string) => (rel.includes('/') ? rel.slice(0, rel.lastIndexOf('/')) : '');
const baseOf = (rel: string) => rel.slice(rel.lastIndexOf('/') + 1);
