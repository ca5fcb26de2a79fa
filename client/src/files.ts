/**
 * A session's files through REST (`/api/containers/:id/files/*`, `/tar/*`,
 * `/mkdir`, `/rename`): any size, bodies streamed both ways. Each call is
 * one HTTP request and spends one from the API's rate-limit budget; small
 * reads and writes also go over a connection's WebSocket (connection.files).
 */
import { DirListing, FileStatResult, FileWritten, TarExtracted, type FileEntry, type FileStatResult as FileStat } from '../../shared/api/files';
import { z } from 'zod';
import type { Body, Http } from './http';

/** `a b/c#d` → `a%20b/c%23d`: each segment encoded, slashes kept. */
export function encodePath(path: string): string {
  return path
    .replace(/^\/+/, '')
    .split('/')
    .map((s) => encodeURIComponent(s))
    .join('/');
}

const WriteAnswer = FileWritten.extend({ mtime: z.string().optional(), etag: z.string().optional() });
const Created = z.object({ path: z.string() });

export class SessionFiles {
  constructor(
    private readonly http: Http,
    readonly sessionId: string,
  ) {}

  private url(kind: 'files' | 'tar', path: string): string {
    return `/api/containers/${encodeURIComponent(this.sessionId)}/${kind}/${encodePath(path)}`;
  }

  /** A file's bytes. */
  async read(path: string): Promise<Uint8Array> {
    return new Uint8Array(await (await this.http.raw(this.url('files', path), { streaming: true })).arrayBuffer());
  }

  async readText(path: string): Promise<string> {
    return new TextDecoder().decode(await this.read(path));
  }

  /** A file's bytes as they arrive (for large downloads). */
  async readStream(path: string, signal?: AbortSignal): Promise<ReadableStream<Uint8Array>> {
    const res = await this.http.raw(this.url('files', path), { streaming: true, ...(signal ? { signal } : {}) });
    return res.body ?? new ReadableStream({ start: (c) => c.close() });
  }

  /** Writes a file atomically; a stream or Blob body is sent as it is read. `parents` creates missing folders. */
  async write(path: string, data: Body, opts: { parents?: boolean; signal?: AbortSignal } = {}): Promise<z.infer<typeof WriteAnswer>> {
    const body = typeof data === 'string' ? new TextEncoder().encode(data) : data;
    return this.http.json(
      `${this.url('files', path)}${opts.parents ? '?parents=1' : ''}`,
      { method: 'PUT', body, streaming: true, ...(opts.signal ? { signal: opts.signal } : {}) },
      WriteAnswer,
    );
  }

  async list(path = ''): Promise<FileEntry[]> {
    return (await this.http.json(this.url('files', path), {}, DirListing)).entries;
  }

  /** Type, size, mode, mtime and ETag, from a HEAD request. */
  async stat(path: string): Promise<Pick<FileStat, 'type' | 'size' | 'mode' | 'mtime' | 'etag'>> {
    const res = await this.http.raw(this.url('files', path), { method: 'HEAD' });
    const h = (n: string) => res.headers.get(n) ?? '';
    return FileStatResult.pick({ type: true, size: true, mode: true, mtime: true, etag: true }).parse({
      type: h('X-File-Type'),
      size: Number(h('Content-Length')),
      mode: Number(h('X-File-Mode')),
      mtime: new Date(h('Last-Modified')).toISOString(),
      etag: h('ETag'),
    });
  }

  async mkdir(path: string, opts: { recursive?: boolean } = {}): Promise<{ path: string }> {
    return this.http.json(`/api/containers/${encodeURIComponent(this.sessionId)}/mkdir`, { json: { path, recursive: opts.recursive ?? false } }, Created);
  }

  async rename(from: string, to: string): Promise<void> {
    await this.http.json(`/api/containers/${encodeURIComponent(this.sessionId)}/rename`, { json: { from, to } });
  }

  async delete(path: string, opts: { recursive?: boolean } = {}): Promise<void> {
    await this.http.json(`${this.url('files', path)}${opts.recursive ? '?recursive=1' : ''}`, { method: 'DELETE' });
  }

  /** A folder as a tar stream. */
  async tarDownload(path = '', signal?: AbortSignal): Promise<ReadableStream<Uint8Array>> {
    const res = await this.http.raw(this.url('tar', path), { streaming: true, ...(signal ? { signal } : {}) });
    return res.body ?? new ReadableStream({ start: (c) => c.close() });
  }

  /** Unpacks a tar (or .tar.gz) into a folder, which is created when missing. */
  async tarUpload(path: string, tar: Body, signal?: AbortSignal): Promise<TarExtracted> {
    return this.http.json(this.url('tar', path), { method: 'PUT', body: tar, streaming: true, headers: { 'Content-Type': 'application/x-tar' }, ...(signal ? { signal } : {}) }, TarExtracted);
  }
}
