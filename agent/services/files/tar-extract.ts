/**
 * Unpacks a tar (or tar.gz) stream into a workspace folder.
 *
 * All or nothing, as far as a file system allows: entries are written into a
 * temporary folder inside the destination (`.mominai-extract-<random>`); only
 * when the whole archive has been read and checked are they moved into place,
 * after a dry run of that move has found no file/folder clashes. A bad entry,
 * a limit, or a cut-off stream leaves the destination as it was. The move
 * itself is one rename per top-level entry (per file where folders merge), so
 * a crash during it can leave part of the archive in place.
 *
 * Every entry goes through the path jail, with symlinks on the way refused:
 * absolute names, `..`, hard links, devices and FIFOs are refused, and so are
 * symlinks whose target leaves the workspace; an entry can never be written
 * through a symlink an earlier entry created. Entries get the workspace
 * root's owner (not the archive's), permission bits without setuid/setgid,
 * and files keep the archive's mtime.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { extract as tarExtract, type Header } from 'tar-stream';
import { AppError, ErrorCode } from '../../../shared/errors';
import type { Logger } from '../../logger';
import type { Owner } from './file-info';
import { hasErrno, toAppError } from './fs-errors';
import { resolveNames, resolvePath, type DirRef, type Jail, type Resolved } from './path-jail';
import { checkLinkTarget, DEFAULT_EXTRACT_LIMITS, drained, maybeGunzip, parseEntryName, type ByteSource, type ExtractLimits } from './tar';
import { mkdirChain, removeTree } from './tree-ops';
import { writeInto } from './write-ops';
import { TEMP_DIR_PREFIX, toWorkspacePath } from './workspace-path';

export interface ExtractOptions {
  limits?: Partial<ExtractLimits>;
  maxFileSize: number;
  owner: Owner | null;
  logger: Logger;
}

export interface ExtractResult {
  /** The destination folder, `/workspace/...`. */
  path: string;
  files: number;
  dirs: number;
  symlinks: number;
  /** Bytes of file content written. */
  bytes: number;
}

/** Extracts `source` into the folder `destInput` (created when missing). */
export async function extractTar(jail: Jail, destInput: unknown, source: ByteSource, opts: ExtractOptions): Promise<ExtractResult> {
  const limits = { ...DEFAULT_EXTRACT_LIMITS, ...opts.limits };
  const d = await resolvePath(jail, destInput, { final: 'follow' });
  const tmpName = `${TEMP_DIR_PREFIX}${randomBytes(8).toString('hex')}`;
  let dest: DirRef | undefined;
  let tmp: DirRef | undefined;
  try {
    dest = await openDest(d, opts.owner);
    await fs.promises.mkdir(dest.child(tmpName), { mode: 0o700 });
    tmp = await dest.openChild(tmpName);
    const result = await unpack(jail, dest.names, tmp, source, limits, opts);
    await merge(tmp, dest, true);
    await merge(tmp, dest, false);
    return { path: d.shown, ...result };
  } catch (err) {
    throw toAppError(err, d.shown);
  } finally {
    await tmp?.close();
    if (dest) {
      await removeTree(dest, tmpName).catch((err: unknown) => opts.logger.warn('could not remove extraction folder', { err }));
      if (dest !== d.dir) await dest.close();
    }
    await d.close();
  }
}

async function openDest(d: Resolved, owner: Owner | null): Promise<DirRef> {
  if (d.missing.length > 0) return mkdirChain(d.dir, d.missing, owner);
  if (!d.stat?.isDirectory()) throw new AppError(ErrorCode.Conflict, `not a folder: ${d.shown}`);
  return d.name === null ? d.dir : d.dir.openChild(d.name);
}

type Counts = Omit<ExtractResult, 'path'>;

async function unpack(
  jail: Jail,
  destNames: readonly string[],
  tmp: DirRef,
  source: ByteSource,
  limits: ExtractLimits,
  opts: ExtractOptions,
): Promise<Counts> {
  const counts: Counts = { files: 0, dirs: 0, symlinks: 0, bytes: 0 };
  // Headers, padding and pax records on top of the content: generous, but bounded.
  const rawLimit = limits.maxTotalBytes + limits.maxEntries * 2048 + 16 * 1024 * 1024;
  const ex = tarExtract();
  const pump = (async () => {
    let seen = 0;
    try {
      for await (const chunk of maybeGunzip(source)) {
        if (ex.destroying || ex.destroyed) return; // the reader gave up: stop reading the source
        seen += chunk.byteLength;
        if (seen > rawLimit) throw new AppError(ErrorCode.PayloadTooLarge, 'archive is too large');
        if (!ex.write(chunk)) await drained(ex);
      }
      ex.end(undefined);
    } catch (err) {
      ex.destroy(err instanceof Error ? err : new Error(String(err)));
    }
  })();
  const entries = ex[Symbol.asyncIterator]();
  let count = 0;
  let finished = false;
  try {
    for (;;) {
      let next: IteratorResult<unknown>;
      try {
        next = await entries.next();
      } catch (err) {
        throw archiveError(err);
      }
      if (next.done) break;
      const entry = next.value as AsyncIterable<Buffer> & { header: Header };
      if (++count > limits.maxEntries) throw new AppError(ErrorCode.PayloadTooLarge, `archive has more than ${limits.maxEntries} entries`);
      await unpackEntry(jail, destNames, tmp, entry.header, readingArchive(entry), counts, limits, opts);
    }
    finished = true;
  } finally {
    ex.destroy();
    await entries.return?.().catch(() => undefined);
    // After a failure the pump may wait on a source that sends nothing more:
    // a stream source is stopped here, and the pump is left to end on its own.
    if (finished) await pump;
    else if (typeof (source as { destroy?: unknown }).destroy === 'function') (source as { destroy(): void }).destroy();
  }
  return counts;
}

async function unpackEntry(
  jail: Jail,
  destNames: readonly string[],
  tmp: DirRef,
  h: Header,
  body: AsyncIterable<Buffer>,
  counts: Counts,
  limits: ExtractLimits,
  opts: ExtractOptions,
): Promise<void> {
  const names = parseEntryName(h.name);
  const shown = toWorkspacePath([...destNames, ...names]);
  if (h.type === 'link') throw new AppError(ErrorCode.InvalidPath, `hard links are not supported: ${shown}`);
  if (h.type !== 'file' && h.type !== 'contiguous-file' && h.type !== 'directory' && h.type !== 'symlink') {
    throw new AppError(ErrorCode.InvalidPath, `unsupported entry type ${String(h.type)}: ${shown}`);
  }
  if (h.type === 'symlink') checkLinkTarget(h.linkname, [...destNames, ...names.slice(0, -1)], shown);
  if (h.type === 'file' || h.type === 'contiguous-file') {
    if (h.size > opts.maxFileSize) throw new AppError(ErrorCode.PayloadTooLarge, `file is larger than ${opts.maxFileSize} bytes: ${shown}`);
    if (counts.bytes + h.size > limits.maxTotalBytes) throw new AppError(ErrorCode.PayloadTooLarge, 'archive content is too large');
  }
  if (names.length === 0) {
    if (h.type !== 'directory') throw new AppError(ErrorCode.InvalidPath, `entry names the destination itself: ${h.name}`);
    for await (const _ of body); // an entry for `./`: nothing to do
    return;
  }

  const r = await resolveNames(jail, [...tmp.names, ...names], { final: 'nofollow', links: 'refuse' });
  let parent: DirRef = r.dir;
  try {
    const name = r.name as string;
    if (h.type === 'directory') {
      if (r.missing.length === 0 && !r.stat?.isDirectory()) throw clash(shown);
      const made = r.missing.length > 0 ? await mkdirChain(r.dir, r.missing, opts.owner) : await r.dir.openChild(name);
      try {
        await made.fh.chmod((h.mode & 0o1777) | 0o700);
      } finally {
        await made.close();
      }
      counts.dirs++;
      for await (const _ of body);
      return;
    }
    if (r.missing.length > 1) parent = await mkdirChain(r.dir, r.missing.slice(0, -1), opts.owner);
    if (r.stat?.isDirectory()) throw clash(shown);
    if (h.type === 'symlink') {
      if (r.stat) await fs.promises.unlink(parent.child(name)); // a later entry wins, as with tar(1)
      await fs.promises.symlink(h.linkname, parent.child(name));
      if (opts.owner) await fs.promises.lchown(parent.child(name), opts.owner.uid, opts.owner.gid);
      counts.symlinks++;
      for await (const _ of body);
      return;
    }
    await writeInto(jail, parent, name, shown, body, {
      expectedSize: h.size,
      maxFileSize: opts.maxFileSize,
      owner: opts.owner,
      mode: h.mode & 0o1777,
      mtime: h.mtime,
    });
    counts.files++;
    counts.bytes += h.size;
  } finally {
    if (parent !== r.dir) await parent.close();
    await r.close();
  }
}

/** An entry's bytes, with a failure of the archive stream told apart from a failure to write them. */
async function* readingArchive(body: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  const it = body[Symbol.asyncIterator]();
  for (;;) {
    let next: IteratorResult<Buffer>;
    try {
      next = await it.next();
    } catch (err) {
      throw archiveError(err);
    }
    if (next.done) return;
    yield next.value;
  }
}

/** A stream that ended early or is not tar: the client's fault, not ours. */
function archiveError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new AppError(ErrorCode.BadRequest, `archive could not be read: ${message.slice(0, 200)}`);
}

function clash(shown: string): AppError {
  return new AppError(ErrorCode.Conflict, `archive has a file and a folder at ${shown}`);
}

/**
 * Moves everything in `src` into `dst`, merging folders that exist on both
 * sides; files and links replace what is there. A file meeting a folder (or
 * the reverse) is a conflict, found by the dry run before anything moves.
 */
async function merge(src: DirRef, dst: DirRef, dryRun: boolean): Promise<void> {
  for (const name of await fs.promises.readdir(src.self)) {
    const s = await fs.promises.lstat(src.child(name));
    const t = await fs.promises.lstat(dst.child(name)).catch((err: unknown) => {
      if (hasErrno(err, 'ENOENT')) return null;
      throw err;
    });
    const shown = toWorkspacePath([...dst.names, name]);
    if (s.isDirectory() && t?.isDirectory()) {
      const a = await src.openChild(name);
      try {
        const b = await dst.openChild(name);
        try {
          await merge(a, b, dryRun);
        } finally {
          await b.close();
        }
      } finally {
        await a.close();
      }
    } else if (t && (t.isDirectory() || s.isDirectory())) {
      throw new AppError(ErrorCode.Conflict, `${shown} exists as a ${t.isDirectory() ? 'folder' : 'file'}`);
    } else if (!dryRun) {
      await fs.promises.rename(src.child(name), dst.child(name));
    }
  }
}
