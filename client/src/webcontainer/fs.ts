/**
 * WebContainer's `fs` on a session. Paths are relative to the working
 * folder, and `/` means that folder, as in WebContainers; a path that
 * starts with the workdir (`/workspace/...`, or `/home/<workdirName>/...` when boot
 * named one) is taken as the same place.
 * Small reads and writes go over the session WebSocket, large ones through
 * REST. The API's errors become Node-style errors (`code: 'ENOENT'`, ...).
 */
import type { SessionConnection } from '../connection';
import type { SessionFiles } from '../files';
import { MominaiError } from '../errors';
import { fromBase64, toBase64, utf8 } from '../bytes';
import { WS_WRITE_LIMIT } from '../connection-files';
import type { BufferEncoding, DirEnt, FileSystemAPI, FSWatchCallback, FSWatchOptions, IFSWatcher } from './types';

/** Where the workspace is inside the container. */
export const WORKDIR = '/workspace';

/**
 * `/src/a.js`, `src/a.js` and `/workspace/src/a.js` → `src/a.js`; `/` → `` (the workdir).
 * `shown` is the workdir the facade reports (`/home/<workdirName>` when boot named one):
 * paths under it are the same place as under /workspace.
 */
export function relativePath(path: string, shown: string = WORKDIR): string {
  let p = path;
  for (const base of [shown, WORKDIR]) {
    if (p === base || p.startsWith(`${base}/`)) {
      p = p.slice(base.length);
      break;
    }
  }
  return p
    .split('/')
    .filter((s) => s !== '' && s !== '.')
    .join('/');
}

/** The absolute path inside the container. */
export function containerPath(path: string, shown: string = WORKDIR): string {
  const rel = relativePath(path, shown);
  return rel ? `${WORKDIR}/${rel}` : WORKDIR;
}

/** A container path (`/workspace/...`) as the facade shows it (`<shown>/...`). */
export function shownPath(path: string, shown: string = WORKDIR): string {
  if (shown === WORKDIR || !(path === WORKDIR || path.startsWith(`${WORKDIR}/`))) return path;
  return `${shown}${path.slice(WORKDIR.length)}`;
}

/** An error shaped like Node's fs errors. */
export class FsError extends Error {
  constructor(
    readonly code: string,
    readonly syscall: string,
    readonly path: string,
    detail: string,
    override readonly cause?: unknown,
  ) {
    super(`${code}: ${detail}, ${syscall} '${path}'`);
    this.name = 'Error';
  }
  get errno(): number {
    return -({ ENOENT: 2, EEXIST: 17, ENOTDIR: 20, EISDIR: 21, ENOTEMPTY: 39, EACCES: 13, EPERM: 1, EINVAL: 22 } as Record<string, number>)[this.code]! || -1;
  }
}

/**
 * The API's answer as a Node error. The agent's messages say which errno it
 * met (not_found "a parent of … is not a folder" was ENOTDIR, conflict
 * "folder is not empty" ENOTEMPTY, …); codes say the rest.
 */
export function toFsError(err: unknown, syscall: string, path: string): unknown {
  if (!(err instanceof MominaiError)) return err;
  const m = err.message;
  const make = (code: string, detail: string) => new FsError(code, syscall, path, detail, err);
  switch (err.code) {
    case 'not_found':
      return /not a folder/.test(m) ? make('ENOTDIR', 'not a directory') : make('ENOENT', 'no such file or directory');
    case 'conflict':
      if (/not empty/.test(m)) return make('ENOTEMPTY', 'directory not empty');
      if (/not a folder/.test(m)) return make('ENOTDIR', 'not a directory');
      if (/is a folder/.test(m)) return make('EISDIR', 'illegal operation on a directory');
      if (/already exists/.test(m)) return make('EEXIST', 'file already exists');
      return err;
    case 'bad_request':
      return /folder/.test(m) ? make('EISDIR', 'illegal operation on a directory') : err;
    case 'forbidden':
    case 'path_outside_workspace':
      return make('EACCES', 'permission denied');
    case 'invalid_path':
      return make('EINVAL', 'invalid argument');
    default:
      return err;
  }
}

export function decodeBytes(bytes: Uint8Array, encoding: BufferEncoding): string {
  switch (encoding) {
    case 'utf8':
    case 'utf-8':
      return new TextDecoder().decode(bytes);
    case 'base64':
      return toBase64(bytes);
    case 'base64url':
      return toBase64(bytes).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
    case 'hex':
      return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
    case 'latin1':
    case 'binary':
      return Array.from(bytes, (b) => String.fromCharCode(b)).join('');
    case 'ascii':
      return Array.from(bytes, (b) => String.fromCharCode(b & 0x7f)).join('');
    case 'utf16le':
    case 'ucs2':
    case 'ucs-2':
      return new TextDecoder('utf-16le').decode(bytes);
  }
}

export function encodeString(text: string, encoding: string | null | undefined): Uint8Array {
  switch (encoding ?? 'utf8') {
    case 'utf8':
    case 'utf-8':
      return utf8(text);
    case 'base64':
    case 'base64url':
      return fromBase64(text.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(text.length / 4) * 4, '='));
    case 'hex':
      return Uint8Array.from(text.match(/../g) ?? [], (h) => parseInt(h, 16));
    case 'latin1':
    case 'binary':
    case 'ascii':
      return Uint8Array.from(text, (c) => c.charCodeAt(0) & 0xff);
    case 'utf16le':
    case 'ucs2':
    case 'ucs-2': {
      const out = new Uint8Array(text.length * 2);
      for (let i = 0; i < text.length; i++) {
        out[i * 2] = text.charCodeAt(i) & 0xff;
        out[i * 2 + 1] = text.charCodeAt(i) >> 8;
      }
      return out;
    }
    default:
      throw new TypeError(`unknown encoding: ${String(encoding)}`);
  }
}

/** A watcher; `ready` (ours, not Node's) resolves once the edge watches: changes before that are not reported. */
export interface FsWatcher extends IFSWatcher {
  ready: Promise<void>;
}

function dirent<T>(name: T, type: string): DirEnt<T> {
  return { name, isFile: () => type === 'file', isDirectory: () => type === 'directory' };
}

export class WebContainerFs implements FileSystemAPI {
  constructor(
    private readonly conn: SessionConnection,
    private readonly rest: SessionFiles,
    /** The workdir as shown (`/home/<workdirName>`, or /workspace). */
    private readonly shown: string = WORKDIR,
  ) {}

  readdir(path: string, options: 'buffer' | { encoding: 'buffer'; withFileTypes?: false }): Promise<Uint8Array[]>;
  readdir(path: string, options?: { encoding?: BufferEncoding | null; withFileTypes?: false } | BufferEncoding | null): Promise<string[]>;
  readdir(path: string, options: { encoding: 'buffer'; withFileTypes: true }): Promise<DirEnt<Uint8Array>[]>;
  readdir(path: string, options: { encoding?: BufferEncoding | null; withFileTypes: true }): Promise<DirEnt<string>[]>;
  async readdir(path: string, options?: unknown): Promise<Array<string | Uint8Array | DirEnt<string | Uint8Array>>> {
    const o = typeof options === 'string' ? { encoding: options } : ((options ?? {}) as { encoding?: string | null; withFileTypes?: boolean });
    let entries;
    try {
      entries = await this.conn.files.list(containerPath(path, this.shown));
    } catch (err) {
      throw toFsError(err, 'scandir', path);
    }
    const buffer = o.encoding === 'buffer';
    return entries.map((e) => {
      const name = buffer ? utf8(e.name) : e.name;
      return o.withFileTypes ? dirent(name, e.type) : name;
    });
  }

  readFile(path: string, encoding?: null): Promise<Uint8Array>;
  readFile(path: string, encoding: BufferEncoding): Promise<string>;
  async readFile(path: string, encoding?: BufferEncoding | null): Promise<Uint8Array | string> {
    const bytes = await this.readBytes(path);
    return encoding ? decodeBytes(bytes, encoding) : bytes;
  }

  /** Over the WebSocket up to 512 KiB, through REST above. */
  async readBytes(path: string): Promise<Uint8Array> {
    const p = containerPath(path, this.shown);
    try {
      return await this.conn.files.read(p);
    } catch (err) {
      if (err instanceof MominaiError && err.code === 'payload_too_large') {
        try {
          return await this.rest.read(p);
        } catch (e) {
          throw toFsError(e, 'open', path);
        }
      }
      throw toFsError(err, 'open', path);
    }
  }

  async writeFile(path: string, data: string | Uint8Array, options?: string | { encoding?: string | null } | null): Promise<void> {
    const encoding = typeof options === 'string' ? options : options?.encoding;
    const bytes = typeof data === 'string' ? encodeString(data, encoding) : data;
    const p = containerPath(path, this.shown);
    try {
      if (bytes.byteLength <= WS_WRITE_LIMIT) await this.conn.files.write(p, bytes);
      else await this.rest.write(p, bytes);
    } catch (err) {
      throw toFsError(err, 'open', path);
    }
  }

  mkdir(path: string, options?: { recursive?: false }): Promise<void>;
  mkdir(path: string, options: { recursive: true }): Promise<string>;
  async mkdir(path: string, options?: { recursive?: boolean }): Promise<string | void> {
    try {
      await this.conn.files.mkdir(containerPath(path, this.shown), { recursive: options?.recursive ?? false });
    } catch (err) {
      throw toFsError(err, 'mkdir', path);
    }
    if (options?.recursive) return path;
  }

  async rm(path: string, options: { force?: boolean; recursive?: boolean } = {}): Promise<void> {
    try {
      await this.conn.files.delete(containerPath(path, this.shown), { recursive: options.recursive ?? false });
    } catch (err) {
      const e = toFsError(err, 'rm', path);
      if (options.force && e instanceof FsError && e.code === 'ENOENT') return;
      throw e;
    }
  }

  async rename(oldPath: string, newPath: string): Promise<void> {
    try {
      await this.conn.files.rename(containerPath(oldPath, this.shown), containerPath(newPath, this.shown));
    } catch (err) {
      throw toFsError(err, 'rename', oldPath);
    }
  }

  watch(filename: string, options?: FSWatchOptions, listener?: FSWatchCallback): FsWatcher;
  watch(filename: string, listener?: FSWatchCallback): FsWatcher;
  watch(filename: string, a?: FSWatchOptions | FSWatchCallback, b?: FSWatchCallback): FsWatcher {
    const listener = typeof a === 'function' ? a : b;
    const opts = typeof a === 'object' && a !== null ? a : {};
    const buffer = (typeof a === 'string' ? a : opts.encoding) === 'buffer';
    const root = containerPath(filename, this.shown);
    let closed = false;
    let watch: { close(): void } | undefined;
    const ready = this.conn.files
      .watch(root, { recursive: opts.recursive ?? false }, (c) => {
        if (closed || !listener) return;
        // Node reports `rename` for entries that appear or go, `change` for new contents.
        const name = c.path === root ? (root.split('/').pop() ?? '') : c.path.slice(root.length + 1);
        listener(c.event === 'change' ? 'change' : 'rename', buffer ? utf8(name) : name);
      })
      .then((w) => {
        if (closed) w.close();
        else watch = w;
      })
      .catch(() => undefined);
    const watcher: FsWatcher = {
      ready,
      close: () => {
        closed = true;
        watch?.close();
      },
    };
    return watcher;
  }
}
