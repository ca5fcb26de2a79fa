/**
 * Folder operations: mkdir, delete (also recursive) and rename. Every entry is
 * named through an open, checked folder (see ./path-jail.ts), so none of them
 * follows a symlink: deleting or renaming a link acts on the link itself, and
 * a recursive delete never descends into a link, even one swapped in while it
 * runs.
 */
import fs from 'node:fs';
import { AppError, ErrorCode } from '../../../shared/errors';
import type { Owner } from './file-info';
import { hasErrno, toAppError } from './fs-errors';
import { resolvePath, type DirRef, type Jail } from './path-jail';
import { toWorkspacePath } from './workspace-path';

const DIR_MODE = 0o755;

/**
 * Creates `names` one below the other under `dir` and returns the last one,
 * open. Each new folder is opened with O_NOFOLLOW right after mkdir, so a
 * folder swapped for a link in between is refused, not followed. New folders
 * get `owner`. `dir` stays open; the caller closes both.
 */
export async function mkdirChain(dir: DirRef, names: readonly string[], owner: Owner | null): Promise<DirRef> {
  let current = dir;
  try {
    for (const name of names) {
      const shown = toWorkspacePath([...current.names, name]);
      let created = true;
      try {
        await fs.promises.mkdir(current.child(name), { mode: DIR_MODE });
      } catch (err) {
        if (!hasErrno(err, 'EEXIST')) throw toAppError(err, shown);
        created = false; // someone else made it meanwhile; it must still be a real folder
      }
      let next: DirRef;
      try {
        next = await current.openChild(name);
      } catch (err) {
        if (hasErrno(err, 'ENOTDIR', 'ELOOP')) throw new AppError(ErrorCode.Conflict, `exists and is not a folder: ${shown}`);
        throw toAppError(err, shown);
      }
      if (current !== dir) await current.close();
      current = next;
      await current.verify();
      if (created && owner) await current.fh.chown(owner.uid, owner.gid);
    }
    return current;
  } catch (err) {
    if (current !== dir) await current.close();
    throw err;
  }
}

export async function makeDir(jail: Jail, input: unknown, recursive: boolean, owner: Owner | null): Promise<{ path: string }> {
  const r = await resolvePath(jail, input, { final: 'follow' });
  try {
    if (r.missing.length === 0) {
      if (recursive && r.stat?.isDirectory()) return { path: r.shown };
      throw new AppError(ErrorCode.Conflict, `already exists: ${r.shown}`);
    }
    if (r.missing.length > 1 && !recursive) {
      throw new AppError(ErrorCode.NotFound, `parent folder does not exist: ${r.shown}`);
    }
    const made = await mkdirChain(r.dir, r.missing, owner);
    await made.close();
    return { path: r.shown };
  } finally {
    await r.close();
  }
}

export async function removeEntry(jail: Jail, input: unknown, recursive: boolean): Promise<{ path: string }> {
  const r = await resolvePath(jail, input, { final: 'nofollow' });
  try {
    if (r.missing.length > 0 || r.stat === null) throw new AppError(ErrorCode.NotFound, `no such file or folder: ${r.shown}`);
    if (r.name === null) throw new AppError(ErrorCode.InvalidPath, 'the workspace root cannot be deleted');
    const target = r.dir.child(r.name);
    try {
      if (!r.stat.isDirectory()) {
        await fs.promises.unlink(target);
      } else {
        try {
          await fs.promises.rmdir(target);
        } catch (err) {
          if (!hasErrno(err, 'ENOTEMPTY', 'EEXIST')) throw err;
          if (!recursive) throw new AppError(ErrorCode.Conflict, `folder is not empty (use recursive): ${r.shown}`);
          await removeTree(r.dir, r.name);
        }
      }
    } catch (err) {
      throw toAppError(err, r.shown);
    }
    return { path: r.shown };
  } finally {
    await r.close();
  }
}

/**
 * Deletes `name` in `parent` and everything below it without following any
 * link: each folder is opened with O_NOFOLLOW through its parent's
 * descriptor and its entries are unlinked through its own. An entry that
 * turns into a link mid-way is unlinked as a link.
 */
export async function removeTree(parent: DirRef, name: string): Promise<void> {
  let dir: DirRef;
  try {
    dir = await parent.openChild(name);
  } catch (err) {
    if (hasErrno(err, 'ENOENT')) return;
    if (!hasErrno(err, 'ELOOP', 'ENOTDIR')) throw err;
    await fs.promises.unlink(parent.child(name)).catch((e: unknown) => {
      if (!hasErrno(e, 'ENOENT')) throw e;
    });
    return;
  }
  try {
    await dir.verify();
    for (const entry of await fs.promises.readdir(dir.self)) {
      try {
        await fs.promises.unlink(dir.child(entry));
      } catch (err) {
        if (hasErrno(err, 'ENOENT')) continue;
        if (!hasErrno(err, 'EISDIR', 'EPERM')) throw err;
        await removeTree(dir, entry);
      }
    }
  } finally {
    await dir.close();
  }
  await fs.promises.rmdir(parent.child(name)).catch((e: unknown) => {
    if (!hasErrno(e, 'ENOENT')) throw e;
  });
}

/**
 * Renames `from` to `to`, both jailed, acting on links themselves. The
 * destination's parent must exist; an existing file or link there is
 * replaced, an existing folder never is.
 */
export async function renameEntry(jail: Jail, from: unknown, to: unknown): Promise<{ from: string; to: string }> {
  const src = await resolvePath(jail, from, { final: 'nofollow' });
  try {
    if (src.missing.length > 0 || src.stat === null) throw new AppError(ErrorCode.NotFound, `no such file or folder: ${src.shown}`);
    if (src.name === null) throw new AppError(ErrorCode.InvalidPath, 'the workspace root cannot be renamed');
    const dst = await resolvePath(jail, to, { final: 'nofollow' });
    try {
      if (dst.name === null) throw new AppError(ErrorCode.Conflict, 'destination is the workspace root');
      if (dst.missing.length > 1) throw new AppError(ErrorCode.NotFound, `destination folder does not exist: ${dst.shown}`);
      if (dst.target === src.target) return { from: src.shown, to: dst.shown };
      if (dst.stat?.isDirectory()) throw new AppError(ErrorCode.Conflict, `destination is a folder: ${dst.shown}`);
      if (dst.stat && src.stat.isDirectory()) throw new AppError(ErrorCode.Conflict, `destination exists: ${dst.shown}`);
      if (src.stat.isDirectory() && isBelow(dst.names, src.names)) {
        throw new AppError(ErrorCode.InvalidPath, `cannot move a folder into itself: ${dst.shown}`);
      }
      try {
        await fs.promises.rename(src.dir.child(src.name), dst.dir.child(dst.name));
      } catch (err) {
        throw toAppError(err, hasErrno(err, 'ENOENT') ? src.shown : dst.shown);
      }
      return { from: src.shown, to: dst.shown };
    } finally {
      await dst.close();
    }
  } finally {
    await src.close();
  }
}

function isBelow(names: readonly string[], ancestor: readonly string[]): boolean {
  return names.length > ancestor.length && ancestor.every((n, i) => names[i] === n);
}
