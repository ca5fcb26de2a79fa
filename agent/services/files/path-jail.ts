/**
 * The path jail: the one function (`resolvePath`) every file operation, the
 * tar extractor and the watcher use to turn a client path into something on
 * the host that is provably inside the workspace.
 *
 * How it stays inside, also while someone in the container swaps folders for
 * symlinks during an operation:
 * - ./workspace-path.ts first reduces the path to plain names below the root
 *   (no `..`, NUL, over-long names), or refuses it.
 * - The walk then opens the root and each folder on the way with
 *   O_DIRECTORY|O_NOFOLLOW and names the next entry through the open
 *   descriptor, `/proc/self/fd/<fd>/<name>` (the Linux way to get openat
 *   semantics from Node). The kernel never follows a symlink for us: each
 *   lookup starts in a folder we hold open and resolves one plain name, and
 *   O_NOFOLLOW, lstat, rename, unlink, rmdir and mkdir all act on a final
 *   symlink itself. A swap between two steps only makes a step fail (ELOOP or
 *   ENOTDIR, retried a few times, then `conflict`); it cannot redirect it.
 * - Symlinks met on the way are resolved by the walk itself, from their target
 *   text, as the container sees them: relative targets from the folder holding
 *   the link, absolute `/workspace/...` from the root, anything else absolute
 *   or any `..` above the root is `path_outside_workspace`. At most 40 links.
 * - Every descriptor handed out is checked once more after opening: the
 *   kernel's name for it (readlink /proc/self/fd/<fd>) must lie under the
 *   root's real path. This is belt and braces over the walk above.
 *
 * Residual limits, stated honestly:
 * - Without /proc (macOS laptops) the walk uses plain host paths of folders it
 *   has just checked; a swap in the short window between check and use can
 *   still redirect an operation. Linux hosts, where containers run, are not
 *   affected. `Jail.procFd` tells which mode is active.
 * - A folder we hold open stays inside as long as nobody moves it out of the
 *   workspace; the container cannot (the workspace is a mount, renames out of
 *   it fail with EXDEV), only the host can.
 * - Hard links: the container cannot link to host files it cannot see, tar
 *   extraction refuses hard links, and writes replace files by rename, so an
 *   existing hard link is never written through.
 */
import fs from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { AppError, ErrorCode } from '../../../shared/errors';
import { hasErrno, toAppError } from './fs-errors';
import { outside, parseLinkTarget, parseWorkspacePath, toWorkspacePath } from './workspace-path';

const { O_RDONLY, O_DIRECTORY, O_NOFOLLOW } = fs.constants;
export const DIR_OPEN_FLAGS = O_RDONLY | O_DIRECTORY | O_NOFOLLOW;
const MAX_LINKS = 40;
const MAX_RETRIES = 8;

export interface Jail {
  /** The host folder mounted at /workspace, as configured. */
  readonly root: string;
  /** Its real path; every descriptor we use must lie at or under it. */
  readonly rootReal: string;
  /** True where `/proc/self/fd/<fd>/<name>` addressing works (Linux). */
  readonly procFd: boolean;
}

/** Checks the root once and picks the addressing mode (`procFd: false` forces the fallback, for tests). */
export async function createJail(root: string, opts: { procFd?: boolean } = {}): Promise<Jail> {
  let rootReal: string;
  try {
    rootReal = await fs.promises.realpath(root);
    if (!(await fs.promises.stat(rootReal)).isDirectory()) throw new Error('not a folder');
  } catch {
    throw new AppError(ErrorCode.NotFound, 'workspace folder does not exist');
  }
  const procFd = opts.procFd ?? (await procFdWorks(rootReal));
  return Object.freeze({ root, rootReal, procFd });
}

async function procFdWorks(rootReal: string): Promise<boolean> {
  try {
    const fh = await fs.promises.open(rootReal, DIR_OPEN_FLAGS);
    try {
      return (await fs.promises.readlink(`/proc/self/fd/${fh.fd}`)) === rootReal;
    } finally {
      await fh.close();
    }
  } catch {
    return false;
  }
}

export function isInside(rootReal: string, hostPath: string): boolean {
  const base = rootReal.endsWith('/') ? rootReal : `${rootReal}/`;
  return hostPath === rootReal || hostPath.startsWith(base);
}

/**
 * Refuses a descriptor whose kernel-side path is not under the root. On hosts
 * without /proc this check is not available and passes.
 */
export async function verifyDescriptor(jail: Jail, fh: FileHandle, shown: string): Promise<void> {
  if (!jail.procFd) return;
  let real = await fs.promises.readlink(`/proc/self/fd/${fh.fd}`);
  if (real.endsWith(' (deleted)')) real = real.slice(0, -' (deleted)'.length);
  if (!isInside(jail.rootReal, real)) throw outside(shown);
}

/** An open folder under the root, and a way to name entries inside it. */
export class DirRef {
  private closed = false;
  constructor(
    readonly jail: Jail,
    readonly fh: FileHandle,
    /** Names from the root to this folder, no symlinks among them. */
    readonly names: readonly string[],
  ) {}

  /** A path to `name` in this folder that does not re-resolve the folder's own path (with /proc). */
  child(name: string): string {
    return this.jail.procFd ? `/proc/self/fd/${this.fh.fd}/${name}` : path.join(this.hostPath, name);
  }

  /** A path to this folder itself, for readdir and fs.watch. */
  get self(): string {
    return this.jail.procFd ? `/proc/self/fd/${this.fh.fd}` : this.hostPath;
  }

  get hostPath(): string {
    return path.join(this.jail.rootReal, ...this.names);
  }

  get shown(): string {
    return toWorkspacePath(this.names);
  }

  verify(): Promise<void> {
    return verifyDescriptor(this.jail, this.fh, this.shown);
  }

  /** Opens the sub-folder `name`, refusing a symlink there. */
  async openChild(name: string): Promise<DirRef> {
    const fh = await fs.promises.open(this.child(name), DIR_OPEN_FLAGS);
    return new DirRef(this.jail, fh, [...this.names, name]);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.fh.close().catch(() => undefined);
  }
}

export async function openRoot(jail: Jail): Promise<DirRef> {
  const fh = await fs.promises.open(jail.rootReal, DIR_OPEN_FLAGS);
  const dir = new DirRef(jail, fh, []);
  try {
    await dir.verify();
  } catch (err) {
    await dir.close();
    throw err;
  }
  return dir;
}

export interface ResolveOptions {
  /** A symlink as the last name: follow it (while it stays inside) or act on the link itself. */
  final: 'follow' | 'nofollow';
  /** Symlinks before the last name: followed while they stay inside (default) or refused (tar extraction). */
  links?: 'follow' | 'refuse';
}

export interface Resolved {
  /** Open, checked folder holding the target; when `missing` is not empty, the deepest folder that exists. */
  readonly dir: DirRef;
  /** The target's name in `dir`, or null when the target is the workspace root (then `dir` is the root). */
  readonly name: string | null;
  /** Names below `dir` that do not exist yet, the target's name last; empty when the target exists. */
  readonly missing: readonly string[];
  /** lstat of the target (of the link's target when a final link was followed); null when missing. */
  readonly stat: fs.Stats | null;
  /** Names from the root to the target after following links: the target's canonical place. */
  readonly names: readonly string[];
  /** The path as the client asked for it, normalized: `/workspace/...`. Results and messages use this. */
  readonly shown: string;
  /** The canonical place as a `/workspace/...` path (differs from `shown` when links were followed). */
  readonly target: string;
  /** The target's host path at the time of the walk, for logs and fallbacks only. */
  readonly hostPath: string;
  close(): Promise<void>;
}

/** Parses a client path and walks it; see the file comment. The caller closes the result. */
export async function resolvePath(jail: Jail, input: unknown, opts: ResolveOptions): Promise<Resolved> {
  return resolveNames(jail, parseWorkspacePath(input), opts);
}

/**
 * The jail as a plain function: the checked host path of a client path. The
 * string is only as good as the moment it was made; operations on the
 * workspace use `resolvePath` and the descriptors it returns instead.
 */
export async function jailPath(jail: Jail, input: unknown, opts: ResolveOptions = { final: 'follow' }): Promise<string> {
  const r = await resolvePath(jail, input, opts);
  await r.close();
  return r.hostPath;
}

export async function resolveNames(
  jail: Jail,
  start: readonly string[],
  opts: ResolveOptions,
  shown: string = toWorkspacePath(start),
): Promise<Resolved> {
  let queue = [...start];
  let dir = await openRoot(jail);
  let links = 0;
  let retries = 0;
  try {
    while (queue.length > 0) {
      const name = queue.shift() as string;
      if (name === '..') {
        // Only symlink targets bring `..` here: go up by walking the canonical
        // names again from the root.
        if (dir.names.length === 0) throw outside(shown);
        queue = [...dir.names.slice(0, -1), ...queue];
        await dir.close();
        dir = await openRoot(jail);
        continue;
      }
      const last = queue.length === 0;
      let st: fs.Stats;
      try {
        st = await fs.promises.lstat(dir.child(name));
      } catch (err) {
        if (!hasErrno(err, 'ENOENT')) throw toAppError(err, shown);
        return done(dir, name, [name, ...queue], null, shown);
      }
      if (st.isSymbolicLink() && (!last || opts.final === 'follow')) {
        if (!last && opts.links === 'refuse') {
          throw new AppError(ErrorCode.InvalidPath, `a symlink is in the way: ${toWorkspacePath([...dir.names, name])}`);
        }
        if (++links > MAX_LINKS) throw new AppError(ErrorCode.InvalidPath, `too many levels of symlinks: ${shown}`);
        let target: string;
        try {
          target = await fs.promises.readlink(dir.child(name));
        } catch (err) {
          if (!hasErrno(err, 'EINVAL', 'ENOENT') || ++retries > MAX_RETRIES) throw toAppError(err, shown);
          queue.unshift(name); // it stopped being a link: look again
          continue;
        }
        const t = parseLinkTarget(target, shown);
        if (t.absolute) {
          await dir.close();
          dir = await openRoot(jail);
        }
        queue = [...t.names, ...queue];
        continue;
      }
      if (last) return done(dir, name, [], st, shown);
      if (!st.isDirectory()) throw new AppError(ErrorCode.NotFound, `not a folder: ${toWorkspacePath([...dir.names, name])}`);
      let next: DirRef;
      try {
        next = await dir.openChild(name);
      } catch (err) {
        if (!hasErrno(err, 'ELOOP', 'ENOTDIR', 'ENOENT') || ++retries > MAX_RETRIES) throw toAppError(err, shown);
        queue.unshift(name); // swapped since the lstat: look again
        continue;
      }
      await dir.close();
      dir = next;
    }
    await dir.verify();
    const st = await dir.fh.stat();
    if (dir.names.length === 0) return done(dir, null, [], st, shown);
    // A link or `..` led to a folder we now hold: describe it from its parent.
    const names = dir.names;
    await dir.close();
    return await resolveNames(jail, names, { final: 'nofollow', links: 'refuse' }, shown);
  } catch (err) {
    await dir.close();
    throw toAppError(err, shown);
  }
}

async function done(
  dir: DirRef,
  name: string | null,
  missing: string[],
  stat: fs.Stats | null,
  shown: string,
): Promise<Resolved> {
  // `..` after a missing name (from a link target) names nothing: the kernel
  // would answer ENOENT, and creating folders along it would be wrong.
  if (missing.includes('..')) throw new AppError(ErrorCode.NotFound, `no such file or folder: ${shown}`);
  await dir.verify();
  const names = name === null ? [...dir.names] : missing.length > 0 ? [...dir.names, ...missing] : [...dir.names, name];
  const hostPath = path.join(dir.jail.rootReal, ...names);
  return {
    dir,
    name: missing.length > 0 ? (missing[missing.length - 1] as string) : name,
    missing,
    stat,
    names,
    shown,
    target: toWorkspacePath(names),
    hostPath,
    close: () => dir.close(),
  };
}
