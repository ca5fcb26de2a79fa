/**
 * `internal.watchPaths`, the call bolt.new and bolt.diy use to keep their
 * file tree in sync: every change in the workspace (commands' included, as
 * our watcher runs beside the container) that passes the include/exclude
 * globs, delivered in batches; with `includeContent`, added and changed
 * files carry their bytes (read when the batch goes out, so a file changed
 * twice in one batch is read once, at its latest).
 */
import type { SessionConnection } from '../connection';
import type { FileChange } from '../connection-files';
import { PathFilter } from './glob';
import { shownPath, WORKDIR, type WebContainerFs } from './fs';
import type { PathWatcherEvent, WatchPathsOptions } from './types';

/** How long changes gather before a batch goes out (ms). */
const BATCH_MS = 50;

/** Stops the watch; `ready` resolves once the edge watches (changes before that are not reported). */
export type StopWatching = (() => void) & { ready: Promise<void> };

/** `shown` is the workdir the facade reports: event paths and absolute globs are under it. */
export function watchPaths(conn: SessionConnection, fs: WebContainerFs, opts: WatchPathsOptions, callback: (events: PathWatcherEvent[]) => void, shown: string = WORKDIR): StopWatching {
  const filter = new PathFilter(opts.include, opts.exclude, shown);
  let batch: FileChange[] = [];
  let timer: ReturnType<typeof setTimeout> | undefined;
  let closed = false;
  let watch: { close(): void } | undefined;
  let sending = Promise.resolve();

  const flush = () => {
    timer = undefined;
    const changes = batch;
    batch = [];
    sending = sending.then(async () => {
      const events: PathWatcherEvent[] = [];
      const contents = new Map<string, Promise<Uint8Array | undefined>>();
      for (const c of changes) {
        const event: PathWatcherEvent = { type: c.event, path: shownPath(c.path, shown) };
        if (opts.includeContent && (c.event === 'add_file' || c.event === 'change')) {
          let read = contents.get(c.path);
          if (!read) {
            read = fs.readBytes(c.path).catch(() => undefined);
            contents.set(c.path, read);
          }
          const bytes = await read;
          if (bytes) event.buffer = bytes;
        }
        events.push(event);
      }
      if (!closed && events.length) callback(events);
    });
  };

  const ready = conn.files
    .watch(WORKDIR, { recursive: true }, (c) => {
      if (closed || !filter.matches(shownPath(c.path, shown))) return;
      batch.push(c);
      timer ??= setTimeout(flush, BATCH_MS);
    })
    .then((w) => {
      if (closed) w.close();
      else watch = w;
    })
    .catch(() => undefined);

  const stop = () => {
    closed = true;
    if (timer) clearTimeout(timer);
    watch?.close();
  };
  return Object.assign(stop, { ready });
}
