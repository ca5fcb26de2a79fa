/**
 * Reading: stat, file contents as a stream, folder listings. A file is opened
 * with O_NOFOLLOW through its checked folder and the descriptor is checked
 * again before the first byte is read, so a link swapped in at the last
 * moment yields an error, never outside bytes.
 */
import fs from 'node:fs';
import { Readable } from 'node:stream';
import type { DirListing, FileEntry } from '../../../shared/api/files';
import { AppError, ErrorCode } from '../../../shared/errors';
import { entryOf, etagOf, statOf, type FileStat } from './file-info';
import { hasErrno, toAppError } from './fs-errors';
import { resolvePath, verifyDescriptor, type DirRef, type Jail, type Resolved } from './path-jail';
import { isTempName } from './workspace-path';

const { O_RDONLY, O_NOFOLLOW, O_NONBLOCK } = fs.constants;
const LSTAT_BATCH = 64;

export async function statEntry(jail: Jail, input: unknown, follow: boolean): Promise<FileStat> {
  const r = await resolvePath(jail, input, { final: follow ? 'follow' : 'nofollow' });
  try {
    return statOf(r.shown, existing(r));
  } finally {
    await r.close();
  }
}

/** An inclusive byte range, as in HTTP `Range: bytes=start-end`. */
export interface ByteRange {
  start?: number;
  end?: number;
}

export interface FileRead {
  /** The path as requested, `/workspace/...` (a followed link keeps its own name here). */
  path: string;
  /** The requested bytes; ends after exactly `length` bytes even if the file grows. */
  stream: Readable;
  /** Bytes in `stream`. */
  length: number;
  /** The whole file's size when opened. */
  size: number;
  /** First and last byte offsets sent (end = start - 1 for an empty body). */
  start: number;
  end: number;
  mtime: string;
  mode: number;
  etag: string;
}

/**
 * Opens a file for reading. `range` asks for part of it; a range that starts
 * past the end is `bad_request` with `details.reason = "range_not_satisfiable"`
 * and `details.size`, which HTTP callers answer with 416.
 */
export async function openRead(jail: Jail, input: unknown, range?: ByteRange): Promise<FileRead> {
  const r = await resolvePath(jail, input, { final: 'follow' });
  let fh: fs.promises.FileHandle | undefined;
  try {
    const st0 = existing(r);
    if (r.name === null || st0.isDirectory()) throw new AppError(ErrorCode.Conflict, `is a folder: ${r.shown}`);
    if (!st0.isFile()) throw new AppError(ErrorCode.InvalidPath, `not a regular file: ${r.shown}`);
    // O_NONBLOCK: should a FIFO be swapped in, opening it must not hang; it is refused below.
    fh = await fs.promises.open(r.dir.child(r.name), O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
    await verifyDescriptor(jail, fh, r.shown);
    const st = await fh.stat();
    if (!st.isFile()) throw new AppError(ErrorCode.InvalidPath, `not a regular file: ${r.shown}`);
    const { start, end } = checkRange(range, st.size);
    const length = end - start + 1;
    let stream: Readable;
    if (length === 0) {
      await fh.close();
      stream = Readable.from([]);
    } else {
      // 256 KiB reads match the tunnel's frame size: a quarter of the frames (and syscalls) of the 64 KiB default.
      stream = fh.createReadStream({ start, end, autoClose: true, highWaterMark: 256 * 1024 });
    }
    fh = undefined; // the stream owns it now
    return { path: r.shown, stream, length, size: st.size, start, end, mtime: st.mtime.toISOString(), mode: st.mode & 0o7777, etag: etagOf(st) };
  } catch (err) {
    throw toAppError(err, r.shown);
  } finally {
    await fh?.close().catch(() => undefined);
    await r.close();
  }
}

function checkRange(range: ByteRange | undefined, size: number): { start: number; end: number } {
  if (!range || (range.start === undefined && range.end === undefined)) return { start: 0, end: size - 1 };
  const start = range.start ?? 0;
  const end = Math.min(range.end ?? size - 1, size - 1);
  const whole = (n: number) => Number.isSafeInteger(n) && n >= 0;
  if (!whole(start) || (range.end !== undefined && !whole(range.end)) || (range.end !== undefined && range.end < start)) {
    throw new AppError(ErrorCode.BadRequest, 'invalid byte range');
  }
  if (start >= size && !(start === 0 && size === 0)) {
    throw new AppError(ErrorCode.BadRequest, 'range not satisfiable', { reason: 'range_not_satisfiable', size });
  }
  return { start, end };
}

/** Entries of a folder sorted by name (UTF-16 code units); our own temporary files are left out. */
export async function listDir(jail: Jail, input: unknown): Promise<DirListing> {
  const r = await resolvePath(jail, input, { final: 'follow' });
  let dir: DirRef | undefined;
  try {
    const st = existing(r);
    if (!st.isDirectory()) throw new AppError(ErrorCode.Conflict, `not a folder: ${r.shown}`);
    dir = r.name === null ? r.dir : await r.dir.openChild(r.name);
    await dir.verify();
    const names = (await fs.promises.readdir(dir.self)).filter((n) => !isTempName(n));
    const entries: FileEntry[] = [];
    for (let i = 0; i < names.length; i += LSTAT_BATCH) {
      const batch = names.slice(i, i + LSTAT_BATCH);
      const stats = await Promise.all(batch.map((n) => lstatOrNull((dir as DirRef).child(n))));
      stats.forEach((s, j) => {
        if (s) entries.push(entryOf(batch[j] as string, s));
      });
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return { path: r.shown, entries };
  } catch (err) {
    throw toAppError(err, r.shown);
  } finally {
    if (dir && dir !== r.dir) await dir.close();
    await r.close();
  }
}

async function lstatOrNull(p: string): Promise<fs.Stats | null> {
  try {
    return await fs.promises.lstat(p);
  } catch (err) {
    if (hasErrno(err, 'ENOENT')) return null; // deleted between readdir and lstat
    throw err;
  }
}

export function existing(r: Resolved): fs.Stats {
  if (r.missing.length > 0 || r.stat === null) throw new AppError(ErrorCode.NotFound, `no such file or folder: ${r.shown}`);
  return r.stat;
}
