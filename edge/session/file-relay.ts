/**
 * Files of a session, at the edge: REST requests (handed over by the Worker
 * through the Session DO's typed `fileRequest` RPC) and client WebSocket frames become
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
import { callSession, type SessionEvent, type SessionMethod, type SessionParams, type SessionResult } from '../../shared/protocol/session-channel';
import type { ServerFrame } from '../../shared/protocol/client';
import type { EdgeByteStreams } from './byte-streams';
import { discardBody } from '../relay/body';
import { parsePayload } from './payload';
import { watchCovers } from '../../shared/protocol/watch-filter';
import { decodeText, isUtf8, toBase64 } from './encoding';
import { readJson } from '../middleware/validate';
import { contentTypeFor } from './content-types';
import type { AgentLink } from './process-relay';
import { MAX_WATCHES_PER_SOCKET, type ClientStore, type Watch } from './client-store';

/** Bodies of mkdir and rename (a path or two). */
const SMALL_JSON_BYTES = 64 * 1024;
/** The JSON form of a write (`{content, encoding?}`) is for modest files: at most 32 MiB of JSON, or what MAX_FILE_SIZE needs in base64. */
export function jsonWriteLimit(maxFileSize: number): number {
  return Math.min(Math.ceil(maxFileSize / 3) * 4 + 64 * 1024, 32 * 1024 * 1024);
}

/** Largest file `read_file` returns inside one WebSocket frame (base64 grows it by a third). */
const WS_READ_LIMIT = 512 * 1024;

/** The REST file operations (the Worker's routes name one each). */
export type FileOp = 'get' | 'head' | 'put' | 'delete' | 'mkdir' | 'rename' | 'tar-get' | 'tar-put';

export interface FileRelayDeps {
  agent(): Promise<AgentLink>;
  streams: EdgeByteStreams;
  nextStreamId(): number;
  maxFileSize: number;
  send(ws: WebSocket, frame: ServerFrame): void;
  clients(): WebSocket[];
  /** A client socket's id (from its attachment), keying its watches in `store`. */
  socketId(ws: WebSocket): string | undefined;
  /** Where watches are kept, so a DO that wakes from hibernation still sends `file_changed`. */
  store: ClientStore;
}

export class FileRelay {
  /** Watches by socket id: a cache of the store's, filled on first use after a wake. */
  private readonly watches = new Map<string, Watch[]>();

  constructor(private readonly deps: FileRelayDeps) {}

  private async call<M extends SessionMethod>(method: M, params: SessionParams<M>, timeoutMs = 120_000): Promise<SessionResult<M>> {
    return callSession(await this.deps.agent(), method, params, timeoutMs);
  }

  /** Reads a file from the agent as a stream: the head first, then the body. */
  private async download(path: string): Promise<{ head: SessionResult<'fs.read'>; body: ReadableStream<Uint8Array> }> {
    const streamId = this.deps.nextStreamId();
    const body = this.deps.streams.receive(streamId);
    try {
      const head = await this.call('fs.read', { path, streamId });
      return { head, body };
    } catch (err) {
      await body.cancel().catch(() => undefined);
      throw err;
    }
  }

  /** Writes a body to the agent, sending it while the agent consumes it; the agent's answer ends it. */
  private async upload<T>(method: 'fs.write' | 'fs.tar.extract', body: ReadableStream<Uint8Array> | null, start: (streamId: number) => Promise<T>): Promise<T> {
    // Frames need the data socket: a session created a moment ago may still be attaching it.
    await this.deps.agent();
    const streamId = this.deps.nextStreamId();
    const request = start(streamId);
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
  async http(op: FileOp, path: string, request: Request, url: URL): Promise<Response> {
    switch (op) {
      case 'get': {
        const stat = await this.call('fs.stat', { path });
        if (stat.type === 'directory') return Response.json(await this.call('fs.list', { path }));
        const { head, body } = await this.download(path);
        const etag = head.etag;
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
        const stat = await this.call('fs.stat', { path });
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
        const type = (request.headers.get('Content-Type') ?? '').split(';')[0]!.trim().toLowerCase();
        let body: ReadableStream<Uint8Array> | null = request.body;
        if (type === 'application/json') {
          const parsed = parsePayload(WriteFileJsonBody, await readJson(request, jsonWriteLimit(this.deps.maxFileSize)));
          body = bytesStream(decodeText(parsed.content, parsed.encoding, 'content'));
        } else if (declared > this.deps.maxFileSize) {
          await discardBody(request);
          throw new AppError(ErrorCode.PayloadTooLarge, `file is larger than ${this.deps.maxFileSize} bytes`, { maxBytes: this.deps.maxFileSize });
        }
        // A raw body's announced length goes along: a body that ends short (a
        // client that gave up, behind a proxy that closed the stream cleanly) fails.
        const size = body === request.body && request.headers.has('Content-Length') && Number.isSafeInteger(declared) ? { size: declared } : {};
        const written = await this.upload('fs.write', body, (streamId) => this.call('fs.write', { path, parents, streamId, ...size }, 600_000));
        return Response.json(written);
      }
      case 'delete':
        return Response.json(await this.call('fs.delete', { path, recursive: /^(1|true)$/.test(url.searchParams.get('recursive') ?? '') }));
      case 'mkdir': {
        const p = parsePayload(MkdirRequest, await readJson(request, SMALL_JSON_BYTES));
        return Response.json(await this.call('fs.mkdir', p), { status: 201 });
      }
      case 'rename': {
        const p = parsePayload(RenameRequest, await readJson(request, SMALL_JSON_BYTES));
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
        return Response.json(await this.upload('fs.tar.extract', request.body, (streamId) => this.call('fs.tar.extract', { path, streamId }, 600_000)));
      default:
        throw new AppError(ErrorCode.NotFound, 'no such file operation');
    }
  }

  /** Client WebSocket file frames; false for frames that are not about files. */
  async client(ws: WebSocket, type: string, id: string | number | undefined, payload: unknown): Promise<boolean> {
    const reply = (t: string, p: unknown) => this.deps.send(ws, { type: t, ...(id !== undefined ? { id } : {}), payload: p });
    switch (type) {
      case 'read_file': {
        const p = parsePayload(ReadFileRequest, payload);
        const stat = await this.call('fs.stat', { path: p.path });
        if (stat.type === 'directory') throw new AppError(ErrorCode.BadRequest, 'that path is a folder; use list_dir');
        if (stat.size > WS_READ_LIMIT) {
          throw new AppError(ErrorCode.PayloadTooLarge, `files over ${WS_READ_LIMIT} bytes are read with GET /api/containers/:id/files/<path>`);
        }
        const { head, body } = await this.download(p.path);
        const bytes = new Uint8Array(await new Response(body).arrayBuffer());
        const encoding = p.encoding ?? (isUtf8(bytes) ? 'utf8' : 'base64');
        reply('file_content', {
          path: head.path,
          content: encoding === 'utf8' ? new TextDecoder().decode(bytes) : toBase64(bytes),
          encoding,
          size: bytes.byteLength,
          mtime: head.mtime,
          etag: head.etag,
        });
        return true;
      }
      case 'write_file': {
        const p = parsePayload(WriteFileRequest, payload);
        const written = await this.upload('fs.write', bytesStream(decodeText(p.content, p.encoding, 'content')), (streamId) =>
          this.call('fs.write', { path: p.path, parents: p.parents ?? false, streamId }, 600_000),
        );
        reply('file_written', written);
        return true;
      }
      case 'list_dir':
        reply('dir_listing', await this.call('fs.list', parsePayload(ListDirRequest, payload)));
        return true;
      case 'mkdir':
        reply('dir_created', await this.call('fs.mkdir', parsePayload(MkdirRequest, payload)));
        return true;
      case 'delete_file': {
        const p = parsePayload(DeleteFileRequest, payload);
        reply('file_deleted', await this.call('fs.delete', { path: p.path, recursive: p.recursive ?? false }));
        return true;
      }
      case 'rename':
        reply('file_renamed', await this.call('fs.rename', parsePayload(RenameRequest, payload)));
        return true;
      case 'watch': {
        const p = parsePayload(WatchRequest, payload);
        const sid = this.deps.socketId(ws);
        if (!sid) throw new AppError(ErrorCode.Internal, 'this socket has no id');
        const { version } = await this.call('fs.watch', {});
        const list = this.watchesOf(sid);
        const watch = { path: normalise(p.path), recursive: p.recursive };
        if (!list.some((w) => w.path === watch.path && w.recursive === watch.recursive)) {
          if (list.length >= MAX_WATCHES_PER_SOCKET) throw new AppError(ErrorCode.Conflict, `at most ${MAX_WATCHES_PER_SOCKET} watches per socket`);
          list.push(watch);
          this.deps.store.addWatch(sid, watch);
        }
        reply('watching', { path: watch.path, version });
        return true;
      }
      case 'changes_since':
        reply('changes', await this.call('fs.changes_since', parsePayload(ChangesSinceRequest, payload)));
        return true;
      default:
        return false;
    }
  }

  /** Agent events about files (`fs.change`: a change from the agent's watcher, to every client watching a path that covers it); true when handled. */
  onEvent(e: SessionEvent): boolean {
    if (e.event !== 'fs.change') return false;
    const change = e.data;
    for (const ws of this.deps.clients()) {
      const sid = this.deps.socketId(ws);
      if (sid && this.watchesOf(sid).some((w) => watchCovers(w.path, w.recursive, change))) this.deps.send(ws, { type: 'file_changed', payload: change });
    }
    return true;
  }

  private watchesOf(sid: string): Watch[] {
    let list = this.watches.get(sid);
    if (!list) this.watches.set(sid, (list = this.deps.store.watches(sid)));
    return list;
  }

  /** A client left (the DO drops its stored state). */
  clientGone(ws: WebSocket): void {
    const sid = this.deps.socketId(ws);
    if (sid) this.watches.delete(sid);
  }
}

function normalise(path: string): string {
  const rel = path.replace(/^\/workspace\/?/, '').replace(/^\/+|\/+$/g, '');
  return rel ? `/workspace/${rel}` : '/workspace';
}


function bytesStream(bytes: Uint8Array): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(c) {
      if (bytes.byteLength > 0) c.enqueue(bytes);
      c.close();
    },
  });
}
