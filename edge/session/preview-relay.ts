/**
 * Previews of one session, at the edge: HTTP requests and WebSocket upgrades
 * for the session's dev server, relayed to the agent over the data socket
 * (../../shared/protocol/preview.ts) with bodies as windowed byte streams.
 * Which port: the one named in the host, else the session's preview port
 * (`start_preview`), else the first declared port found listening. Access:
 * on the host form, public ports to anyone; otherwise, and always on the path
 * forms (they share an origin with other previews), only the owner (401
 * without a preview cookie, 403 for another user). A session that is not
 * running answers 503 `session_stopped` (`agent_unavailable` while its agent
 * is away), and the ports seen listening are forgotten when it stops.
 */
import { z } from 'zod';
import { AppError, ErrorCode } from '../../shared/errors';
import { FrameFlag, FrameKind, type BinaryFrame } from '../../shared/protocol/binary';
import { declaredContentLength, decodeHttpHead, type HttpResponseHead } from '../../shared/protocol/preview';
import { callSession, type SessionEvent } from '../../shared/protocol/session-channel';
import { wireErrorToAppError } from '../../shared/protocol/tunnel';
import type { ServerFrame } from '../../shared/protocol/client';
import type { PortPayload, PreviewReadyPayload, ServerReadyPayload } from '../../shared/protocol/server-frames';
import { downstreamHeaders, upstreamHeaders } from '../preview/headers';
import { safeClose } from '../relay/socket';
import type { EdgeByteStreams } from './byte-streams';
import type { AgentLink } from './process-relay';
import type { SessionRecord } from './record';
import { HeadWaiters, type ArrivedHead } from './head-waiters';
import { AGENT_UNAVAILABLE as AGENT_AWAY } from '../fleet/availability';

/**
 * Longest wait for the agent's answer to http.request. The agent gives up on
 * the container at 60 s and says so; this only covers an agent that never answers.
 */
const HEAD_TIMEOUT_MS = 65_000;

/** The client frames built here, typed by the schemas the SDK checks them with. */
type PortFrame = z.input<typeof PortPayload>;
type ServerReadyFrame = z.input<typeof ServerReadyPayload>;

/** What the Worker learned of a preview request (who, which port and path, under which prefix and origin). */
export const PreviewRequestInfo = z.object({
  userId: z.string().nullable(),
  port: z.number().int().min(1).max(65535).nullable(),
  path: z.string(),
  prefix: z.string(),
  origin: z.string(),
  /** The preview cookie's name (never passed to the dev server, nor is any other preview cookie). */
  cookieName: z.string(),
  /** `host` (an origin of its own) or `path` (owner-only, responses sanitised); absent: host. */
  form: z.enum(['host', 'path']).optional(),
  /** The client's address as the edge's platform saw it (CF-Connecting-IP), for X-Forwarded-For. */
  clientIp: z.string().max(64).nullable().optional(),
});
export type PreviewRequestInfo = z.infer<typeof PreviewRequestInfo>;

export interface PreviewRelayDeps {
  agent(): Promise<AgentLink>;
  streams: EdgeByteStreams;
  nextStreamIds(n: number): number;
  record(): SessionRecord | undefined;
  /** Writes the record (through the lifecycle's commit, so the Fleet's index follows). */
  saveRecord(next: SessionRecord): Promise<void>;
  /** Where browsers reach this edge (from the last client connect), or '' before any did. */
  publicOrigin(): string;
  domain: string;
  /** Where a session's path form starts seen from an edge URL (../preview/settings.ts pathFormBase); absent: `/preview/<id>` on that origin. */
  pathFormBase?: (edge: URL, sessionId: string) => string | null;
  acceptPreviewSocket(server: WebSocket, streamBase: number): void;
  previewSockets(streamBase: number): WebSocket[];
  broadcast(frame: ServerFrame): void;
}

export class PreviewRelay {
  readonly openPorts = new Set<number>();
  /** HTTP requests waiting for the agent's answer (an HttpHead frame or http.error), by streamBase. */
  private readonly heads = new HeadWaiters(HEAD_TIMEOUT_MS);

  constructor(private readonly deps: PreviewRelayDeps) {}

  /** The URL of a port's preview in the subdomain form, from what browsers use to reach this edge. */
  urlFor(port: number): string {
    const record = this.deps.record();
    const origin = this.deps.publicOrigin();
    if (!origin || !record) return `/preview/${record?.id ?? ''}/`;
    const u = new URL(origin);
    return `${u.protocol}//${port}-${record.id}.${this.deps.domain}${u.port ? `:${u.port}` : ''}/`;
  }

  /** Tells the agent which ports this session declared (it relays only to those and to ports it sees listening). */
  async declarePorts(): Promise<void> {
    const r = this.deps.record();
    if (!r) return;
    const ports = [...new Set([...r.ports, ...(r.previewPort ? [r.previewPort] : [])])].slice(0, 10);
    await callSession(await this.deps.agent(), 'ports.declare', { ports }, 10_000);
  }

  /** `start_preview`: makes `port` the preview port and resolves once something accepts connections on it. */
  async start(p: number): Promise<z.input<typeof PreviewReadyPayload> & { pathUrl: string }> {
    const record = this.deps.record();
    if (!record) throw new AppError(ErrorCode.NotFound, 'no such session');
    await this.deps.saveRecord({ ...record, previewPort: p });
    await this.declarePorts();
    await callSession(await this.deps.agent(), 'ports.wait', { port: p, timeoutMs: 120_000 }, 125_000);
    const origin = this.deps.publicOrigin();
    const base = origin ? (this.deps.pathFormBase ? this.deps.pathFormBase(new URL(origin), record.id) : `${origin}/preview/${record.id}`) : `/preview/${record.id}`;
    return { port: p, url: this.urlFor(p), pathUrl: base === null ? this.urlFor(p) : `${base}/` };
  }

  /** The record with `port` public or private. */
  static withVisibility(r: SessionRecord, port: number, visibility: 'public' | 'private'): SessionRecord {
    const others = (r.publicPorts ?? []).filter((x) => x !== port);
    return { ...r, publicPorts: visibility === 'public' ? [...others, port].sort((a, b) => a - b) : others };
  }

  /** Chooses the port and checks who may reach it; throws 401/403/404 as the rules say. */
  private authorise(info: PreviewRequestInfo): { record: SessionRecord; port: number } {
    const record = this.deps.record();
    if (!record || record.status === 'destroyed') throw new AppError(ErrorCode.NotFound, 'no such preview');
    const port = info.port ?? record.previewPort ?? record.ports.find((p) => this.openPorts.has(p)) ?? record.ports[0] ?? [...this.openPorts][0];
    if (!port) throw new AppError(ErrorCode.NotFound, 'this session has no preview port yet: declare ports or send start_preview');
    const publicPort = (record.publicPorts ?? []).includes(port);
    if (info.form === 'path' || !publicPort) {
      const why = info.form === 'path' && publicPort ? ' (public ports are served on the preview host only; the path form is for the owner)' : '';
      if (!info.userId) throw new AppError(ErrorCode.Unauthorized, `this preview is private${why}: open it through a preview link from GET /api/containers/:id/preview-url`);
      if (info.userId !== record.userId) throw new AppError(ErrorCode.Forbidden, `this preview belongs to another user${why}`);
    }
    if (record.status === 'stopped' || (record.status === 'error' && record.error !== AGENT_AWAY)) {
      throw new AppError(ErrorCode.SessionStopped, `the session is ${record.status}${record.error ? ` (${record.error})` : ''}; start it to use its preview`);
    }
    if (record.status !== 'running') throw new AppError(ErrorCode.AgentUnavailable, `the session is ${record.status}`);
    return { record, port };
  }

  /** The edge's own X-Forwarded-* for the dev server, set once (the client's were removed). */
  private static forwarded(info: PreviewRequestInfo): Record<string, string> {
    const origin = new URL(info.origin);
    return {
      ...(info.clientIp ? { 'x-forwarded-for': info.clientIp } : {}),
      'x-forwarded-prefix': info.prefix || '/',
      'x-forwarded-proto': origin.protocol.slice(0, -1),
      'x-forwarded-host': origin.host,
    };
  }

  async http(request: Request, info: PreviewRequestInfo): Promise<Response> {
    const { port } = this.authorise(info);
    const agent = await this.deps.agent();
    const streamBase = this.deps.nextStreamIds(2);
    const hasBody = request.body !== null && request.method !== 'GET' && request.method !== 'HEAD';
    const forwarded = PreviewRelay.forwarded(info);
    const answer = this.heads.wait(streamBase);
    const params = { streamBase, port, method: request.method, path: info.path, headers: upstreamHeaders(request.headers, info.cookieName, forwarded), hasBody };
    if (!agent.sendEvent('http.request', params)) {
      this.heads.settle(streamBase, new AppError(ErrorCode.AgentUnavailable, "the session's agent is not connected"));
    } else if (hasBody) {
      void this.deps.streams.send(streamBase, FrameKind.HttpBody, request.body).catch(() => agent.sendEvent('stream.abort', { streamId: streamBase }));
    }
    let arrived: ArrivedHead;
    try {
      arrived = await answer;
    } catch (err) {
      // No response (refused, or the dev server failed): an upload still being sent stops here.
      if (hasBody) this.deps.streams.abortOutgoing(streamBase);
      throw err;
    }
    const { head, body } = arrived;
    const headers = downstreamHeaders(head.headers, info.prefix, info.origin, info.form ?? 'host');
    const noBody = request.method === 'HEAD' || head.status === 204 || head.status === 304 || head.status < 200;
    if (noBody && body instanceof ReadableStream) await body.cancel().catch(() => undefined);
    // A body the dev server compressed is sent as it is: without 'manual', the runtime would compress it again.
    const encoded = head.headers.some(([k, v]) => k === 'content-encoding' && v.trim().toLowerCase() !== 'identity');
    return new Response(noBody ? null : body, { status: head.status, headers, ...(encoded ? { encodeBody: 'manual' as const } : {}) });
  }

  async upgrade(request: Request, info: PreviewRequestInfo): Promise<Response> {
    const { port } = this.authorise(info);
    const agent = await this.deps.agent();
    const streamBase = this.deps.nextStreamIds(2);
    const protocols = (request.headers.get('Sec-WebSocket-Protocol') ?? '').split(',').map((p) => p.trim()).filter(Boolean);
    const result = await callSession(
      agent,
      'ws.open',
      { streamBase, port, path: info.path, headers: upstreamHeaders(request.headers, info.cookieName, PreviewRelay.forwarded(info)), protocols },
      30_000,
    );
    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    this.deps.acceptPreviewSocket(server, streamBase);
    const headers = new Headers();
    if (result.protocol) headers.set('Sec-WebSocket-Protocol', result.protocol);
    return new Response(null, { status: 101, webSocket: client, headers });
  }

  /**
   * A message from the browser on a relayed socket; `offset` counts the
   * socket's earlier messages (kept in its attachment, so it survives hibernation).
   */
  fromBrowser(streamBase: number, offset: number, message: string | ArrayBuffer): void {
    const text = typeof message === 'string';
    const payload = text ? new TextEncoder().encode(message) : new Uint8Array(message);
    try {
      this.deps.streams.frame(streamBase, FrameKind.WsMessage, offset, payload, text ? FrameFlag.Text : 0);
    } catch {
      for (const ws of this.deps.previewSockets(streamBase)) safeClose(ws, 1011, 'the session\'s agent is not connected');
    }
  }

  browserClosed(streamBase: number, code: number, reason: string): void {
    void this.deps.agent().then(
      (a) => a.sendEvent('ws.close', { streamBase, code: code >= 1000 && code < 5000 && code !== 1005 && code !== 1006 ? code : 1000, reason: reason.slice(0, 120) }),
      () => undefined,
    );
  }

  /** An HttpHead frame (the answer to http.request) or a WsMessage frame (container → browser) from the agent. */
  onBinary(frame: BinaryFrame): boolean {
    if (frame.kind === FrameKind.HttpHead) {
      this.onHead(frame);
      return true;
    }
    if (frame.kind !== FrameKind.WsMessage) return false;
    const sockets = this.deps.previewSockets(frame.streamId - 1);
    for (const ws of sockets) {
      try {
        ws.send(frame.flags & FrameFlag.Text ? new TextDecoder().decode(frame.payload) : frame.payload);
      } catch {
        // closing
      }
    }
    return true;
  }

  /**
   * The response head for streamBase = streamId - 1. The body is inline (End
   * flag) or follows on the same stream id; its stream is claimed here, before
   * this message's handler returns, so no body frame can arrive unclaimed.
   */
  private onHead(frame: BinaryFrame): void {
    const streamBase = frame.streamId - 1;
    // A body nobody will read (the head came after the deadline, or made no sense): the agent stops sending it.
    const abandon = () => {
      if (!(frame.flags & FrameFlag.End)) void this.deps.agent().then((a) => a.sendEvent('stream.abort', { streamId: frame.streamId }), () => undefined);
    };
    if (!this.heads.has(streamBase)) return abandon();
    let decoded: { head: HttpResponseHead; body: Uint8Array };
    try {
      decoded = decodeHttpHead(frame.payload);
    } catch {
      this.heads.settle(streamBase, new AppError(ErrorCode.Internal, 'the agent answered the preview request oddly'));
      return abandon();
    }
    const length = declaredContentLength(decoded.head.headers);
    const body =
      frame.flags & FrameFlag.End
        ? decoded.body
        : length !== undefined
          ? this.deps.streams.receiveSized(frame.streamId, length)
          : this.deps.streams.receive(frame.streamId);
    this.heads.settle(streamBase, { head: decoded.head, body });
  }

  /** The container stopped: the ports seen listening in it are forgotten (they are reported afresh when it runs again). */
  forgetPorts(): void {
    this.openPorts.clear();
  }

  /** Every request waiting for its head fails: the agent's data socket is gone. */
  failAll(err: AppError): void {
    this.heads.failAll(err);
  }

  /** Agent events about previews; true when handled. */
  onEvent(e: SessionEvent): boolean {
    if (e.event === 'http.error') {
      this.heads.settle(e.data.streamBase, wireErrorToAppError(e.data.error));
      return true;
    }
    if (e.event === 'ws.close') {
      for (const ws of this.deps.previewSockets(e.data.streamBase)) safeClose(ws, e.data.code, e.data.reason);
      return true;
    }
    if (e.event === 'port') {
      const { port, state } = e.data;
      if (state === 'open') this.openPorts.add(port);
      else this.openPorts.delete(port);
      const url = this.urlFor(port);
      this.deps.broadcast({ type: 'port', payload: { port, state, url } satisfies PortFrame });
      if (state === 'open') this.deps.broadcast({ type: 'server-ready', payload: { port, url } satisfies ServerReadyFrame });
      return true;
    }
    return false;
  }
}
