/**
 * Atomic writes. The bytes go to a new temporary file created with
 * O_CREAT|O_EXCL|O_NOFOLLOW in the target's checked folder, are fsynced, and
 * the temporary file is renamed over the target within that same folder
 * (both names resolved through the folder's descriptor). So:
 * - readers see the old file or the new one, never a mix;
 * - a failed, cut-off or oversized upload removes the temporary file and
 *   leaves the old file as it was;
 * - a link swapped in at the target's name is replaced, not written through,
 *   and an existing hard link is never written through either.
 * Ownership: an existing file keeps its owner and permission bits (setuid and
 * setgid dropped); a new file gets the workspace root's owner and 0644.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import type { Readable } from 'node:stream';
import { AppError, ErrorCode } from '../../../shared/errors';
import { etagOf, type Owner } from './file-info';
import { toAppError } from './fs-errors';
import { resolvePath, verifyDescriptor, type DirRef, type Jail } from './path-jail';
import { mkdirChain } from './tree-ops';
import { TEMP_FILE_PREFIX } from './workspace-path';

const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = fs.constants;
const NEW_FILE_MODE = 0o644;

export type WriteSource = Uint8Array | string | Readable | AsyncIterable<Uint8Array | string>;

export interface WriteOptions {
  /** Create missing parent folders (like `mkdir -p`). */
  parents?: boolean;
  /** Bytes the caller announced (Content-Length); fewer or more is a cut-off upload and fails. */
  expectedSize?: number;
}

export interface WriteLimits {
  maxFileSize: number;
  /** Owner of new files and folders; null leaves ownership to the agent's user. */
  owner: Owner | null;
  /** Whether to set owners at all (only root can). */
  chown: boolean;
}

export interface WriteResult {
  path: string;
  size: number;
  mtime: string;
  etag: string;
}

export async function writeFileAtomic(
  jail: Jail,
  input: unknown,
  source: WriteSource,
  opts: WriteOptions,
  limits: WriteLimits,
): Promise<WriteResult> {
  if (typeof source === 'string' || source instanceof Uint8Array) {
    const len = typeof source === 'string' ? Buffer.byteLength(source) : source.byteLength;
    if (len > limits.maxFileSize) throw tooLarge(limits.maxFileSize);
  }
  const r = await resolvePath(jail, input, { final: 'follow' });
  let dir: DirRef = r.dir;
  try {
    if (r.name === null) throw new AppError(ErrorCode.Conflict, 'is a folder: /workspace');
    if (r.missing.length > 1) {
      if (!opts.parents) throw new AppError(ErrorCode.NotFound, `parent folder does not exist: ${r.shown}`);
      dir = await mkdirChain(r.dir, r.missing.slice(0, -1), limits.owner);
    }
    const old = r.stat;
    if (old?.isDirectory()) throw new AppError(ErrorCode.Conflict, `is a folder: ${r.shown}`);
    if (old && !old.isFile()) throw new AppError(ErrorCode.Conflict, `not a regular file: ${r.shown}`);
    const owner = !limits.chown ? null : old ? { uid: old.uid, gid: old.gid } : limits.owner;
    const mode = old ? old.mode & 0o1777 : NEW_FILE_MODE;
    return await writeInto(jail, dir, r.name, r.shown, source, { ...opts, maxFileSize: limits.maxFileSize, owner, mode });
  } catch (err) {
    throw toAppError(err, r.shown);
  } finally {
    if (dir !== r.dir) await dir.close();
    await r.close();
  }
}

export interface WriteIntoOptions {
  expectedSize?: number;
  maxFileSize: number;
  owner: Owner | null;
  mode: number;
  mtime?: Date;
}

/** Writes `name` in the checked folder `dir` atomically; see the file comment. */
export async function writeInto(
  jail: Jail,
  dir: DirRef,
  name: string,
  shown: string,
  source: WriteSource,
  opts: WriteIntoOptions,
): Promise<WriteResult> {
  const tmpName = `${TEMP_FILE_PREFIX}${randomBytes(8).toString('hex')}`;
  const fh = await fs.promises.open(dir.child(tmpName), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
  let renamed = false;
  try {
    await verifyDescriptor(jail, fh, shown);
    const size = await copyInto(fh, source, opts.maxFileSize);
    if (opts.expectedSize !== undefined && size !== opts.expectedSize) {
      throw new AppError(ErrorCode.BadRequest, `upload cut off: got ${size} of ${opts.expectedSize} bytes`);
    }
    if (opts.owner) await fh.chown(opts.owner.uid, opts.owner.gid);
    await fh.chmod(opts.mode);
    if (opts.mtime) await fh.utimes(opts.mtime, opts.mtime);
    await fh.sync();
    const st = await fh.stat();
    await dir.verify();
    await fs.promises.rename(dir.child(tmpName), dir.child(name));
    renamed = true;
    await dir.fh.sync().catch(() => undefined); // make the rename itself durable
    return { path: shown, size, mtime: st.mtime.toISOString(), etag: etagOf(st) };
  } finally {
    await fh.close().catch(() => undefined);
    if (!renamed) await fs.promises.unlink(dir.child(tmpName)).catch(() => undefined);
  }
}

/** Copies the source into `fh`, refusing to go past `max` bytes; returns the byte count. */
async function copyInto(fh: fs.promises.FileHandle, source: WriteSource, max: number): Promise<number> {
  if (typeof source === 'string') source = Buffer.from(source, 'utf8');
  if (source instanceof Uint8Array) {
    await writeAll(fh, source, 0);
    return source.byteLength;
  }
  let total = 0;
  const it = source[Symbol.asyncIterator]();
  try {
    for (;;) {
      let next: IteratorResult<Uint8Array | string>;
      try {
        next = await it.next();
      } catch (err) {
        throw sourceError(err);
      }
      if (next.done) return total;
      const buf = typeof next.value === 'string' ? Buffer.from(next.value, 'utf8') : next.value;
      if (total + buf.byteLength > max) throw tooLarge(max);
      await writeAll(fh, buf, total);
      total += buf.byteLength;
    }
  } finally {
    await it.return?.(undefined); // stops (and for a Readable, destroys) the source when we leave early
  }
}

/**
 * A failing source is an interrupted upload (the client or the tunnel went
 * away), not a fault of ours: `bad_request`, unless it already is an AppError.
 */
function sourceError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new AppError(ErrorCode.BadRequest, `upload interrupted: ${message.slice(0, 200)}`);
}

/**
 * A Node stream that fails before we start reading it would raise an
 * uncaught 'error' event; this listener keeps it for the read loop, which
 * sees the stored error when it starts. Call as soon as a source arrives.
 */
export function holdErrors(source: unknown): void {
  const s = source as { on?: unknown; listenerCount?: (ev: string) => number };
  if (typeof s.on === 'function' && typeof s.listenerCount === 'function') {
    (source as NodeJS.EventEmitter).on('error', () => undefined);
  }
}

async function writeAll(fh: fs.promises.FileHandle, buf: Uint8Array, position: number): Promise<void> {
  let off = 0;
  while (off < buf.byteLength) {
    const { bytesWritten } = await fh.write(buf, off, buf.byteLength - off, position + off);
    off += bytesWritten;
  }
}

function tooLarge(max: number): AppError {
  return new AppError(ErrorCode.PayloadTooLarge, `file is larger than ${max} bytes`, { maxFileSize: max });
}

/** The bytes of a JSON `content` field; base64 is checked strictly, not skipped over. */
export function decodeContent(content: string, encoding: 'utf8' | 'base64' = 'utf8'): Buffer {
  if (encoding === 'utf8') return Buffer.from(content, 'utf8');
  const clean = content.replace(/\s+/g, '');
  if (clean.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(clean)) {
    throw new AppError(ErrorCode.BadRequest, 'content is not valid base64');
  }
  return Buffer.from(clean, 'base64');
}
