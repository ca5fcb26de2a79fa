/**
 * Files of a session, at the edge: REST requests (forwarded by the Worker as
 * internal requests carrying `X-File-Op`) and client WebSocket frames become
 * `fs.*` requests to the agent (../../shared/protocol/files.ts); bodies stream
 * through as byte streams, so neither the edge nor the agent holds a whole
 * large file. Watch events fan out to the clients that asked to watch.
 */
import { AppError, ErrorCode } from '../../shared/errors';
import { log } from '../log';
import {
  ChangesSinceRequest,
  DeleteFileRequest,
  FileChanged,
  ListDirRequest,
  MkdirRequest,
  ReadFileRequest,
  RenameRequest,
  WatchRequest,
  WriteFileJsonBody,
  WriteFileRequest,
} from '../../shared/api/files';
import { FrameKind } from '../../shared/protocol/binary';
import type { ServerFrame } from '../../shared/protocol/client';
import { drain, type EdgeByteStreams } from './byte-streams';
import { contentTypeFor } from './content-types';
import type { AgentLink } from './process-relay';

/** Largest file `read_file` returns inside one WebSocket frame (base64 grows it by a third). */
const WS_READ_LIMIT = 512 * 1024;

export interface FileRelayDeps {
  agent(): Promise<AgentLink>;
  streams: EdgeByteStreams;
  nextStreamId(): number;
  maxFileSize: number;
  send(ws: WebSocket, frame: ServerFrame): void;
  clients(): WebSocket[];
}

interface Watch {
  path: string;
  recursive: boolean;
}

export class FileRelay {
  private readonly watches = new Map<WebSocket, Watch[]>();
  private watching = false;

  constructor(private readonly deps: FileRelayDeps) {}

  private async call<T>(method: string, params: unknown, timeoutMs = 120_000): Promise<T> {
    return (await (await this.deps.agent()).request(method, params, timeoutMs)) as T;
  }

  /** Reads a file from the agent as a stream: the head first, then the body. */
  private async download(path: string): Promise<{ head: Record<string, unknown>; body: ReadableStream<Uint8Array> }> {
    const streamId = this.deps.nextStreamId();
    const body = this.deps.streams.receive(streamId);
    try {
      const head = await this.call<Record<string, unknown>>('fs.read', { path, streamId });
      return { head, body };
    } catch (err) {
      await body.cancel().catch(() => undefined);
      throw err;
    }
  }

  /** Writes a body to the agent, sending it while the agent consumes it; the agent's answer ends it. */
  private async upload(method: 'fs.write' | 'fs.tar.extract', params: Record<string, unknown>, body: ReadableStream<Uint8Array> | null): Promise<unknown> {
    // Frames need the data socket: a session created a moment ago may still be attaching it.
    await this.deps.agent();
    const streamId = this.deps.nextStreamId();
    const request = this.call(method, { ...params, streamId }, 600_000);
    const sending = this.deps.streams.send(streamId, FrameKind.File, body, method === 'fs.write' ? this.deps.maxFileSize : Number.MAX_SAFE_INTEGER);
    // Whichever fails first ends both: the agent's refusal stops the sending, a broken body aborts the agent's side.
    request.catch(() => this.deps.streams.abortOutgoing(streamId));
    try {
      await sending;
    } catch (err) {
      log('info', 'upload body failed', { method, streamId, error: String(err) });
      (await this.deps.agent().catch(() => undefined))?.sendEvent('stream.abort', { streamId });
      const agentError: unknown = await request.then(
        () => undefined,
        (e: unknown) => e,
      );
      // Our own limit speaks for itself; otherwise the agent's reason (a bad path, say) is the one to report.
      if (err instanceof AppError && err.code === ErrorCode.PayloadTooLarge) throw err;
      throw agentError ?? err;
    }
    return request;
  }

  /** REST: one internal request from the Worker. */
  async http(op: string, path: string, request: Request, url: URL): Promise<Response> {
    switch (op) {
      case 'get': {
        const stat = await this.call<{ type: string }>('fs.stat', { path });
        if (stat.type === 'directory') return Response.json(await this.call('fs.list', { path }));
        const { head, body } = await this.download(path);
        const etag = String(head.etag);
        if (request.headers.get('If-None-Match') === etag) {
          await body.cancel();
          return new Response(null, { status: 304, headers: { ETag: etag } });
        }
        // A fixed-length stream keeps Content-Length on a streamed body (workerd would switch to chunked otherwise).
        const sized = new FixedLengthStream(Number(head.length));
        body.pipeTo(sized.writable).catch(() => undefined);
        return new Response(sized.readable, {
          headers: {
            'Content-Type': contentTypeFor(String(head.path)),
            'Content-Length': String(head.length),
            ETag: etag,
            'Last-Modified': new Date(String(head.mtime)).toUTCString(),
            'Cache-Control': 'no-cache',
          },
        });
      }
      case 'head': {
        const stat = await this.call<{ type: string; size: number; etag: string; mtime: string; path: string; mode: number }>('fs.stat', { path });
        return new Response(null, {
          headers: {
            'Content-Type': stat.type === 'directory' ? 'application/json' : contentTypeFor(stat.path),
            'Content-Length': String(stat.type === 'directory' ? 0 : stat.size),
            ETag: stat.etag,
            'Last-Modified': new Date(stat.mtime).toUTCString(),
            'X-File-Type': stat.type,
            'X-File-Mode': String(stat.mode),
          },
        });
      }
      case 'put': {
        const parents = /^(1|true)$/.test(url.searchParams.get('parents') ?? '');
        const declared = Number(request.headers.get('Content-Length') ?? '0');
        if (declared > this.deps.maxFileSize) {
          if (request.body) await drain(request.body.getReader());
          throw new AppError(ErrorCode.PayloadTooLarge, `file is larger than ${this.deps.maxFileSize} bytes`, { maxBytes: this.deps.maxFileSize });
        }
        const type = (request.headers.get('Content-Type') ?? '').split(';')[0]!.trim().toLowerCase();
        let body: ReadableStream<Uint8Array> | null = request.body;
        if (type === 'application/json') {
          let json: unknown;
          try {
            json = await request.json();
          } catch {
            throw new AppError(ErrorCode.InvalidJson, 'body is not valid JSON');
          }
          const parsed = WriteFileJsonBody.safeParse(json);
          if (!parsed.success) throw new AppError(ErrorCode.ValidationFailed, 'body must be {content, encoding?}');
          body = bytesStream(decodeContent(parsed.data.content, parsed.data.encoding));
        }
        // A raw body's announced length goes along: a body that ends short (a
        // client that gave up, behind a proxy that closed the stream cleanly) fails.
        const size = body === request.body && request.headers.has('Content-Length') && Number.isSafeInteger(declared) ? { size: declared } : {};
        const written = await this.upload('fs.write', { path, parents, ...size }, body);
        return Response.json(written);
      }
      case 'delete':
        return Response.json(await this.call('fs.delete', { path, recursive: /^(1|true)$/.test(url.searchParams.get('recursive') ?? '') }));
      case 'mkdir': {
        const p = parseJson(MkdirRequest, await request.json().catch(() => badJson()));
        return Response.json(await this.call('fs.mkdir', p), { status: 201 });
      }
      case 'rename': {
        const p = parseJson(RenameRequest, await request.json().catch(() => badJson()));
        return Response.json(await this.call('fs.rename', p));
      }
      case 'tar-get': {
        const streamId = this.deps.nextStreamId();
        const body = this.deps.streams.receive(streamId);
        await this.call('fs.tar.pack', { path, streamId }).catch(async (err: unknown) => {
          await body.cancel().catch(() => undefined);
          throw err;
        });
        const name = (path.split('/').filter(Boolean).pop() ?? 'workspace').replace(/[^\w.-]/g, '_');
        return new Response(body, { headers: { 'Content-Type': 'application/x-tar', 'Content-Disposition': `attachment; filename="${name}.tar"` } });
      }
      case 'tar-put':
        return Response.json(await this.upload('fs.tar.extract', { path }, request.body));
      default:
        throw new AppError(ErrorCode.NotFound, 'no such file operation');
    }
  }

  /** Client WebSocket file frames; false for frames that are not about files. */
  async client(ws: WebSocket, type: string, id: string | number | undefined, payload: unknown): Promise<boolean> {
    const reply = (t: string, p: unknown) => this.deps.send(ws, { type: t, ...(id !== undefined ? { id } : {}), payload: p });
    switch (type) {
      case 'read_file': {
        const p = parseJson(ReadFileRequest, payload);
        const stat = await this.call<{ size: number; type: string }>('fs.stat', { path: p.path });
        if (stat.type === 'directory') throw new AppError(ErrorCode.BadRequest, 'that path is a folder; use list_dir');
        if (stat.size > WS_READ_LIMIT) {
          throw new AppError(ErrorCode.PayloadTooLarge, `files over ${WS_READ_LIMIT} bytes are read with GET /api/containers/:id/files/<path>`);
        }
        const { head, body } = await this.download(p.path);
        const bytes = new Uint8Array(await new Response(body).arrayBuffer());
        const encoding = p.encoding ?? (isUtf8(bytes) ? 'utf8' : 'base64');
        reply('file_content', {
          path: head.path,
          content: encoding === 'utf8' ? new TextDecoder().decode(bytes) : base64(bytes),
          encoding,
          size: bytes.byteLength,
          mtime: head.mtime,
          etag: head.etag,
        });
        return true;
      }
      case 'write_file': {
        const p = parseJson(WriteFileRequest, payload);
        const written = await this.upload('fs.write', { path: p.path, parents: p.parents ?? false }, bytesStream(decodeContent(p.content, p.encoding)));
        reply('file_written', written);
        return true;
      }
      case 'list_dir':
        reply('dir_listing', await this.call('fs.list', parseJson(ListDirRequest, payload)));
        return true;
      case 'mkdir':
        reply('dir_created', await this.call('fs.mkdir', parseJson(MkdirRequest, payload)));
        return true;
      case 'delete_file': {
        const p = parseJson(DeleteFileRequest, payload);
        reply('file_deleted', await this.call('fs.delete', { path: p.path, recursive: p.recursive ?? false }));
        return true;
      }
      case 'rename':
        reply('file_renamed', await this.call('fs.rename', parseJson(RenameRequest, payload)));
        return true;
      case 'watch': {
        const p = parseJson(WatchRequest, payload);
        const { version } = await this.call<{ version: number }>('fs.watch', {});
        this.watching = true;
        const list = this.watches.get(ws) ?? [];
        list.push({ path: normalise(p.path), recursive: p.recursive });
        this.watches.set(ws, list);
        reply('watching', { path: normalise(p.path), version });
        return true;
      }
      case 'changes_since':
        reply('changes', await this.call('fs.changes_since', parseJson(ChangesSinceRequest, payload)));
        return true;
      default:
        return false;
    }
  }

  /** A change from the agent's watcher: to every client watching a path that covers it. */
  onChange(data: unknown): void {
    const parsed = FileChanged.safeParse(data);
    if (!parsed.success) return;
    const change = parsed.data;
    for (const ws of this.deps.clients()) {
      const list = this.watches.get(ws);
      if (list?.some((w) => covers(w, change.path))) this.deps.send(ws, { type: 'file_changed', payload: change });
    }
  }

  clientGone(ws: WebSocket): void {
    this.watches.delete(ws);
  }

  get anyWatching(): boolean {
    return this.watching;
  }
}

function normalise(path: string): string {
  const rel = path.replace(/^\/workspace\/?/, '').replace(/^\/+|\/+$/g, '');
  return rel ? `/workspace/${rel}` : '/workspace';
}

function covers(w: Watch, path: string): boolean {
  if (w.path === '/workspace') return w.recursive || !path.slice('/workspace/'.length).includes('/');
  if (path === w.path) return true;
  if (!path.startsWith(`${w.path}/`)) return false;
  return w.recursive || !path.slice(w.path.length + 1).includes('/');
}

function parseJson<T>(schema: { safeParse(v: unknown): { success: true; data: T } | { success: false } }, value: unknown): T {
  const r = schema.safeParse(value);
  if (!r.success) throw new AppError(ErrorCode.ValidationFailed, 'invalid request');
  return r.data;
}

function badJson(): never {
  throw new AppError(ErrorCode.InvalidJson, 'body is not valid JSON');
}

function decodeContent(content: string, encoding: 'utf8' | 'base64' | undefined): Uint8Array {
  if (encoding !== 'base64') return new TextEncoder().encode(content);
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(content) || content.length % 4 !== 0) {
    throw new AppError(ErrorCode.ValidationFailed, 'content is not valid base64');
  }
  const bin = atob(content);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function bytesStream(bytes: Uint8Array): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(c) {
      if (bytes.byteLength > 0) c.enqueue(bytes);
      c.close();
    },
  });
}

function isUtf8(bytes: Uint8Array): boolean {
  try {
    new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes);
    return true;
  } catch {
    return false;
  }
}

function base64(bytes: Uint8Array): string {
  let bin = '';
  for (let i = 0; i < bytes.byteLength; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(bin);
}
