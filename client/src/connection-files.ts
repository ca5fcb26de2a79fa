/**
 * File work over the session WebSocket (no HTTP request, no rate-limit
 * budget spent): small reads (the edge answers files up to 512 KiB here) and
 * writes (a frame holds at most 1 MiB), listings, folders, renames, and
 * watches that survive reconnects. Larger bodies go through REST
 * (./files.ts). Paths are relative to /workspace or absolute under it; the
 * edge reports them as `/workspace/...`.
 */
import { DirListing, FileContent, FileWritten, ChangesSinceResult, type ChangeKind, type FileEntry } from '../../shared/api/files';
import { fromBase64, toBase64 } from './bytes';
import { ClientErrorCode, MominaiError } from './errors';
import { Watching } from './protocol';

export interface FileChange {
  version: number;
  event: ChangeKind;
  /** `/workspace/...` */
  path: string;
}

interface Requester {
  request(type: string, payload?: unknown, timeoutMs?: number): Promise<{ type: string; payload: unknown }>;
}

/** Largest file the edge reads over the WebSocket. */
export const WS_READ_LIMIT = 512 * 1024;
/** Largest write sent over the WebSocket (base64 grows it by a third; frames stop at 1 MiB). */
export const WS_WRITE_LIMIT = 512 * 1024;

function decode<T>(schema: { safeParse(v: unknown): { success: true; data: T } | { success: false } }, reply: { type: string; payload: unknown }): T {
  const r = schema.safeParse(reply.payload);
  if (!r.success) throw new MominaiError(ClientErrorCode.BadResponse, `unexpected ${reply.type} payload`);
  return r.data;
}

export function workspacePath(path: string): string {
  const rel = path.replace(/^\/workspace(?=\/|$)/, '').replace(/^\/+|\/+$/g, '');
  return rel ? `/workspace/${rel}` : '/workspace';
}

export class ConnectionFiles {
  constructor(
    private readonly conn: Requester,
    private readonly watches: WatchSet,
  ) {}

  /** A file's bytes (up to 512 KiB). */
  async read(path: string): Promise<Uint8Array> {
    const c = decode(FileContent, await this.conn.request('read_file', { path, encoding: 'base64' }));
    return fromBase64(c.content);
  }

  async write(path: string, content: string | Uint8Array, opts: { parents?: boolean } = {}): Promise<{ path: string; size: number }> {
    const payload = typeof content === 'string' ? { path, content } : { path, content: toBase64(content), encoding: 'base64' };
    return decode(FileWritten, await this.conn.request('write_file', { ...payload, parents: opts.parents ?? false }, 120_000));
  }

  async list(path: string): Promise<FileEntry[]> {
    return decode(DirListing, await this.conn.request('list_dir', { path })).entries;
  }

  async mkdir(path: string, opts: { recursive?: boolean } = {}): Promise<void> {
    await this.conn.request('mkdir', { path, recursive: opts.recursive ?? false });
  }

  async delete(path: string, opts: { recursive?: boolean } = {}): Promise<void> {
    await this.conn.request('delete_file', { path, recursive: opts.recursive ?? false });
  }

  async rename(from: string, to: string): Promise<void> {
    await this.conn.request('rename', { from, to });
  }

  /** Calls `listener` for every change under `path` (commands in the container included) until `close()`. */
  async watch(path: string, opts: { recursive?: boolean }, listener: (c: FileChange) => void): Promise<{ close(): void }> {
    return this.watches.add(this.conn, workspacePath(path), opts.recursive ?? true, listener);
  }
}

interface WatchEntry {
  path: string;
  recursive: boolean;
  listener: (c: FileChange) => void;
}

/** The watches of one connection, and the last change version it delivered. */
export class WatchSet {
  private readonly entries = new Set<WatchEntry>();
  private version: number | undefined;
  /** Set once the edge refused another watch: the socket then watches all of /workspace. */
  private wholeWorkspace = false;
  /** Live changes that came while a `changes_since` after a reconnect was unanswered. */
  private held: FileChange[] | undefined;

  constructor(
    private readonly onAny: (c: FileChange) => void,
    private readonly onResync: () => void,
  ) {}

  async add(conn: Requester, path: string, recursive: boolean, listener: (c: FileChange) => void): Promise<{ close(): void }> {
    const entry: WatchEntry = { path, recursive, listener };
    const known = [...this.entries].some((e) => e.path === path && e.recursive === recursive);
    this.entries.add(entry);
    if (!known && !this.wholeWorkspace) {
      try {
        const w = decode(Watching, await conn.request('watch', { path, recursive }));
        this.version ??= w.version;
      } catch (err) {
        // The edge keeps a bounded number of watches per socket: past it, one watch of the whole workspace serves all (filtered here).
        if (!(err instanceof MominaiError && err.code === 'conflict' && /watches per socket/.test(err.message))) {
          this.entries.delete(entry);
          throw err;
        }
        const w = decode(Watching, await conn.request('watch', { path: '/workspace', recursive: true }));
        this.wholeWorkspace = true;
        this.version ??= w.version;
      }
    }
    // The edge keeps a socket's watches until it closes; closing one here stops its deliveries.
    return { close: () => void this.entries.delete(entry) };
  }

  get size(): number {
    return this.entries.size;
  }

  onChange(c: FileChange): void {
    if (this.held) return void this.held.push(c);
    this.deliver(c);
  }

  private deliver(c: FileChange): void {
    if (this.version !== undefined && c.version <= this.version) return;
    this.version = c.version;
    this.onAny(c);
    for (const e of this.entries) if (covers(e, c.path)) e.listener(c);
  }

  /** After a reconnect: watch again, then fetch what changed while the socket was down. */
  resubscribe(conn: Requester): void {
    if (this.entries.size === 0) return;
    const seen = new Set<string>();
    const sent: Array<Promise<unknown>> = [];
    const watches = this.wholeWorkspace ? [{ path: '/workspace', recursive: true }] : [...this.entries];
    for (const e of watches) {
      const key = `${e.recursive ? 'r' : 'n'}${e.path}`;
      if (seen.has(key)) continue;
      seen.add(key);
      sent.push(conn.request('watch', { path: e.path, recursive: e.recursive }));
    }
    const since = this.version;
    if (since === undefined) return;
    this.held = [];
    void Promise.allSettled(sent)
      .then(() => conn.request('changes_since', { version: since }))
      .then((reply) => {
        const r = decode(ChangesSinceResult, reply);
        if (r.resync) {
          this.version = r.version;
          this.onResync();
        } else {
          for (const c of r.changes) this.deliver(c);
        }
      })
      .catch(() => undefined)
      .finally(() => {
        const live = (this.held ?? []).sort((a, b) => a.version - b.version);
        this.held = undefined;
        for (const c of live) this.deliver(c);
      });
  }
}

function covers(w: { path: string; recursive: boolean }, path: string): boolean {
  if (path === w.path) return true;
  const prefix = w.path === '/workspace' ? '/workspace/' : `${w.path}/`;
  if (!path.startsWith(prefix)) return false;
  return w.recursive || !path.slice(prefix.length).includes('/');
}
