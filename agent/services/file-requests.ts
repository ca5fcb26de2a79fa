/**
 * Serves a session's `fs.*` requests (../../shared/protocol/files.ts) with the
 * workspace's FileService and watcher, moving bodies as byte streams.
 */
import { FrameKind } from '../../shared/protocol/binary';
import type { Dispatcher } from '../connection/dispatcher';
import type { Logger } from '../logger';
import { FileService } from './files/file-service';
import { WorkspaceWatcher } from './files/watcher';
import type { ByteStreams } from './streams/byte-streams';

export interface FileRequestsOptions {
  root: string;
  logger: Logger;
  streams: ByteStreams;
  events: { send(event: string, data: unknown): boolean };
  maxFileSize: number;
  /** WORKSPACE_QUOTA: writes that add bytes are refused (507) once the workspace is past it. */
  quota?: { check(): void };
  /** MAX_WATCHES_PER_SESSION: folders the watcher holds an inotify watch on. */
  maxWatches?: number;
}

export class FileRequests {
  private service: Promise<FileService> | undefined;
  private watcher: Promise<WorkspaceWatcher> | undefined;

  constructor(private readonly opts: FileRequestsOptions) {}

  private files(): Promise<FileService> {
    this.service ??= FileService.open({ root: this.opts.root, logger: this.opts.logger, maxFileSize: this.opts.maxFileSize }).catch((err: unknown) => {
      this.service = undefined;
      throw err;
    });
    return this.service;
  }

  register(d: Dispatcher): void {
    const { streams, logger } = this.opts;
    d.method('fs.stat', async (p) => (await this.files()).stat(p.path, { follow: true }))
      .method('fs.list', async (p) => (await this.files()).listDir(p.path))
      .method('fs.read', async (p) => {
        const read = await (await this.files()).readFile(p.path, p.range ? { range: p.range } : {});
        // The answer goes out before the body: the dispatcher sends it as this handler resolves.
        setImmediate(() => {
          streams.send(p.streamId, FrameKind.File, read.stream).catch((err: unknown) => {
            read.stream.destroy();
            logger.warn('file download failed', { path: p.path, error: err });
          });
        });
        const { stream: _s, ...head } = read;
        return head;
      })
      .method('fs.write', async (p) => {
        // Registered before the first await, so body frames that follow the request find their stream.
        const body = streams.receive(p.streamId);
        try {
          this.opts.quota?.check();
          return await (await this.files()).writeFile(p.path, body, { parents: p.parents, ...(p.size === undefined ? {} : { expectedSize: p.size }) });
        } finally {
          body.destroy();
        }
      })
      .method('fs.mkdir', async (p) => {
        this.opts.quota?.check();
        return (await this.files()).mkdir(p.path, { recursive: p.recursive });
      })
      .method('fs.delete', async (p) => (await this.files()).remove(p.path, { recursive: p.recursive }))
      .method('fs.rename', async (p) => (await this.files()).rename(p.from, p.to))
      .method('fs.tar.pack', async (p) => {
        const tar = await (await this.files()).packTar(p.path);
        setImmediate(() => {
          streams.send(p.streamId, FrameKind.File, tar).catch((err: unknown) => {
            tar.destroy();
            logger.warn('tar download failed', { path: p.path, error: err });
          });
        });
        return { path: p.path };
      })
      .method('fs.tar.extract', async (p) => {
        const body = streams.receive(p.streamId);
        try {
          this.opts.quota?.check();
          return await (await this.files()).extractTar(p.path, body);
        } finally {
          body.destroy();
        }
      })
      .method('fs.watch', async () => ({ version: (await this.watch()).journal.version }))
      .method('fs.changes_since', async (p) => (await this.watch()).changesSince(p.version));
  }

  /** Starts the workspace watcher once; every change goes to the edge, which filters per client. */
  private watch(): Promise<WorkspaceWatcher> {
    this.watcher ??= WorkspaceWatcher.start({
      root: this.opts.root,
      logger: this.opts.logger,
      ...(this.opts.maxWatches === undefined ? {} : { maxWatches: this.opts.maxWatches }),
    }).then(
      (w) => {
        w.subscribe({ path: '/workspace', recursive: true }, (change) => this.opts.events.send('fs.change', change));
        return w;
      },
      (err: unknown) => {
        this.watcher = undefined;
        throw err;
      },
    );
    return this.watcher;
  }

  async close(): Promise<void> {
    const w = await this.watcher?.catch(() => undefined);
    w?.close();
  }
}
