/**
 * What the file API says about an entry: type, size, mtime, mode, ETag; and
 * the owner new files get.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import type { FileEntry, FileType } from '../../../shared/api/files';
import type { Jail } from './path-jail';

/** MAX_FILE_SIZE's default: 512 MiB. */
export const DEFAULT_MAX_FILE_SIZE = 512 * 1024 * 1024;

export interface FileStat {
  /** `/workspace/...` */
  path: string;
  type: FileType;
  size: number;
  /** ISO 8601. */
  mtime: string;
  /** Permission bits (`mode & 0o7777`). */
  mode: number;
  /** Weak ETag of size, mtime and inode: changes whenever the content can have. */
  etag: string;
}

/** Sockets, FIFOs and devices show as `file`; reading them is refused. */
export function fileType(st: fs.Stats): FileType {
  if (st.isDirectory()) return 'directory';
  if (st.isSymbolicLink()) return 'symlink';
  return 'file';
}

export function etagOf(st: fs.Stats): string {
  const hash = createHash('sha1').update(`${st.size}:${st.mtimeMs}:${st.ino}`).digest('base64url').slice(0, 20);
  return `W/"${hash}"`;
}

export function entryOf(name: string, st: fs.Stats): FileEntry {
  return { name, type: fileType(st), size: st.size, mtime: st.mtime.toISOString(), mode: st.mode & 0o7777 };
}

export function statOf(shown: string, st: fs.Stats): FileStat {
  return { path: shown, type: fileType(st), size: st.size, mtime: st.mtime.toISOString(), mode: st.mode & 0o7777, etag: etagOf(st) };
}

export interface Owner {
  uid: number;
  gid: number;
}

/**
 * Who new files and folders belong to: the owner of the workspace root, so
 * the container's user owns what the API creates. Only root can give files
 * away; otherwise they simply belong to the agent's user (null here).
 */
export async function rootOwner(jail: Jail, chown: boolean): Promise<Owner | null> {
  if (!chown) return null;
  const st = await fs.promises.stat(jail.rootReal);
  return { uid: st.uid, gid: st.gid };
}

export function runningAsRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}
