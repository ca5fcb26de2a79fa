/**
 * One workspace's files, as the tunnel dispatcher sees them. Each method takes
 * client paths (relative to /workspace or absolute under it), sends them
 * through the path jail (./path-jail.ts), and answers with `/workspace/...`
 * paths or throws an AppError (`invalid_path` 400, `path_outside_workspace`
 * 403, `not_found` 404, `conflict` 409, `payload_too_large` 413, ...).
 * Unexpected errors are logged here with their errno and surface as
 * `internal_error` without host details.
 *
 * Create one per workspace with `FileService.open`; it holds no descriptors
 * between calls, so there is nothing to close.
 */
import type { Readable } from 'node:stream';
import type { DirListing } from '../../../shared/api/files';
import { AppError, ErrorCode } from '../../../shared/errors';
import type { Logger } from '../../logger';
import { DEFAULT_MAX_FILE_SIZE, rootOwner, runningAsRoot, type FileStat } from './file-info';
import { errnoOf, toAppError } from './fs-errors';
import { createJail, jailPath, type Jail } from './path-jail';
import { listDir, openRead, statEntry, type ByteRange, type FileRead } from './read-ops';
import type { ByteSource, ExtractLimits } from './tar';
import { extractTar, type ExtractResult } from './tar-extract';
import { packTar } from './tar-pack';
import { makeDir, removeEntry, renameEntry } from './tree-ops';
import { holdErrors, writeFileAtomic, type WriteOptions, type WriteResult, type WriteSource } from './write-ops';

export interface FileServiceOptions {
  /** The workspace's host folder, bind-mounted at /workspace. */
  root: string;
  logger: Logger;
  /** MAX_FILE_SIZE: largest file a write or an archive entry may produce (512 MiB). */
  maxFileSize?: number;
  /** Give new files the root folder's owner; default: when the agent runs as root (only root can). */
  chown?: boolean;
  /** Force /proc/self/fd addressing on or off; default: detected. */
  procFd?: boolean;
  /** Archive limits for `extractTar`. */
  extractLimits?: Partial<ExtractLimits>;
}

export class FileService {
  private constructor(
    readonly jail: Jail,
    private readonly logger: Logger,
    readonly maxFileSize: number,
    private readonly chown: boolean,
    private readonly extractLimits: Partial<ExtractLimits>,
  ) {}

  static async open(opts: FileServiceOptions): Promise<FileService> {
    const maxFileSize = opts.maxFileSize ?? DEFAULT_MAX_FILE_SIZE;
    if (!Number.isSafeInteger(maxFileSize) || maxFileSize < 0) throw new Error('maxFileSize must be a whole number of bytes');
    const jail = await createJail(opts.root, opts.procFd === undefined ? {} : { procFd: opts.procFd });
    const logger = opts.logger.child({ component: 'files' });
    if (!jail.procFd) logger.warn('no /proc/self/fd: file operations cannot be made safe against symlink swaps on this host');
    return new FileService(jail, logger, maxFileSize, opts.chown ?? runningAsRoot(), opts.extractLimits ?? {});
  }

  /** The checked host path of a client path, for callers that need a string (see `jailPath`). */
  hostPath(path: unknown, follow = true): Promise<string> {
    return this.run('hostPath', path, () => jailPath(this.jail, path, { final: follow ? 'follow' : 'nofollow' }));
  }

  /** lstat by default (a link reports `symlink`); `follow` describes what a link points to. */
  stat(path: unknown, opts: { follow?: boolean } = {}): Promise<FileStat> {
    return this.run('stat', path, () => statEntry(this.jail, path, opts.follow ?? false));
  }

  /** A file's bytes as a stream (optionally a byte range), with size, mtime and a weak ETag. */
  readFile(path: unknown, opts: { range?: ByteRange } = {}): Promise<FileRead> {
    return this.run('readFile', path, () => openRead(this.jail, path, opts.range));
  }

  /** A whole small file in memory; `payload_too_large` past `maxBytes` (for WebSocket replies). */
  async readBuffer(path: unknown, maxBytes: number): Promise<{ path: string; content: Buffer; size: number; mtime: string; etag: string }> {
    const read = await this.readFile(path);
    if (read.size > maxBytes) {
      read.stream.destroy();
      throw new AppError(ErrorCode.PayloadTooLarge, `file is larger than ${maxBytes} bytes; download it instead`, { size: read.size });
    }
    const chunks: Buffer[] = [];
    for await (const chunk of read.stream) chunks.push(chunk as Buffer);
    return { path: read.path, content: Buffer.concat(chunks), size: read.length, mtime: read.mtime, etag: read.etag };
  }

  /** Atomic write from bytes, a string (UTF-8) or a stream; see ./write-ops.ts. */
  writeFile(path: unknown, source: WriteSource, opts: WriteOptions = {}): Promise<WriteResult> {
    holdErrors(source);
    return this.run('writeFile', path, async () =>
      writeFileAtomic(this.jail, path, source, opts, {
        maxFileSize: this.maxFileSize,
        owner: await rootOwner(this.jail, this.chown),
        chown: this.chown,
      }),
    );
  }

  listDir(path: unknown): Promise<DirListing> {
    return this.run('listDir', path, () => listDir(this.jail, path));
  }

  mkdir(path: unknown, opts: { recursive?: boolean } = {}): Promise<{ path: string }> {
    return this.run('mkdir', path, async () => makeDir(this.jail, path, opts.recursive ?? false, await rootOwner(this.jail, this.chown)));
  }

  /** Deletes a file, a link (not its target) or a folder; a non-empty folder needs `recursive`. */
  remove(path: unknown, opts: { recursive?: boolean } = {}): Promise<{ path: string }> {
    return this.run('remove', path, () => removeEntry(this.jail, path, opts.recursive ?? false));
  }

  /** Renames within the workspace; the destination's folder must exist; folders are never replaced. */
  rename(from: unknown, to: unknown): Promise<{ from: string; to: string }> {
    return this.run('rename', from, () => renameEntry(this.jail, from, to));
  }

  /** The folder as a tar stream, produced as it is read. */
  packTar(path: unknown): Promise<Readable> {
    return this.run('packTar', path, () => packTar(this.jail, path, this.logger));
  }

  /** Unpacks a tar or tar.gz stream into the folder (created when missing); see ./tar-extract.ts. */
  extractTar(path: unknown, source: ByteSource): Promise<ExtractResult> {
    holdErrors(source);
    return this.run('extractTar', path, async () =>
      extractTar(this.jail, path, source, {
        limits: this.extractLimits,
        maxFileSize: this.maxFileSize,
        owner: await rootOwner(this.jail, this.chown),
        logger: this.logger,
      }),
    );
  }

  private async run<T>(op: string, path: unknown, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      const shown = typeof path === 'string' ? path : '';
      const appErr = toAppError(err, shown);
      if (appErr.code === ErrorCode.Internal) {
        this.logger.error('file operation failed', { op, path: shown.slice(0, 200), errno: errnoOf(err), err });
      } else {
        this.logger.debug('file operation refused', { op, path: shown.slice(0, 200), code: appErr.code });
      }
      throw appErr;
    }
  }
}
