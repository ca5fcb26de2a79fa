/**
 * Session DO (one per container session, idFromName(sessionId)): wiring only.
 * The record and its lifecycle live in ../session/lifecycle.ts (the one
 * writer of the record), processes, files and previews in ../session/*-relay.ts,
 * the agent's data socket in ../session/agent-channel.ts. `fetch` serves
 * sockets and preview requests, described by the Worker's typed descriptor
 * (../relay/upgrade.ts); everything else is typed RPC. What a socket needs
 * after the DO wakes from hibernation is in its attachment and in storage
 * (../session/attachments.ts, ../session/client-store.ts).
 */
import { DurableObject } from 'cloudflare:workers';
import { AppError, ErrorCode } from '../../shared/errors';
import type { ExecBody, ExecResult, SessionStatus, SessionView } from '../../shared/api/containers';
import { QUOTA_EVENT, type QuotaWarningPayload } from '../../shared/protocol/quota';
import { decodeSessionEvent, type SessionEvent } from '../../shared/protocol/session-channel';
import { CloseCode } from '../../shared/protocol/tunnel';
import type { Env } from '../env';
import { refuse } from '../errors';
import { log, setLogLevel } from '../log';
import { capture, type RpcResult } from '../relay/rpc-result';
import { safeClose, sendJson, trySend } from '../relay/socket';
import { readSessionCall } from '../relay/upgrade';
import { AgentChannel } from '../session/agent-channel';
import { attachmentOf, type Attachment } from '../session/attachments';
import { EdgeByteStreams } from '../session/byte-streams';
import { SqlClientStore } from '../session/client-store';
import { handleClientMessage } from '../session/client-frames';
import { FileRelay, type FileOp } from '../session/file-relay';
import { SessionLifecycle } from '../session/lifecycle';
import { PreviewRelay, type PreviewRequestInfo } from '../session/preview-relay';
import { isPreviewMessagePath, PreviewScripts } from '../preview/scripts';
import { ProcessRelay } from '../session/process-relay';
import { toView, type SessionRecord } from '../session/record';
import { sessionParts } from '../session/session-parts';

export class SessionDO extends DurableObject<Env> {
  private readonly lifecycle: SessionLifecycle;
  private readonly agent: AgentChannel;
  private readonly relay: ProcessRelay;
  private readonly streams: EdgeByteStreams;
  private readonly files: FileRelay;
  private readonly previews: PreviewRelay;
  private readonly clientStore: SqlClientStore;
  private readonly previewScripts: PreviewScripts;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    setLogLevel(typeof env.LOG_LEVEL === 'string' ? env.LOG_LEVEL : undefined);
    ({ lifecycle: this.lifecycle, agent: this.agent, relay: this.relay, streams: this.streams, files: this.files, previews: this.previews, clientStore: this.clientStore } =
      sessionParts(ctx, env, (f) => this.broadcast(f)));
    this.previewScripts = new PreviewScripts({ storage: ctx.storage, record: () => this.lifecycle.record, broadcast: (f) => this.broadcast(f) });
  }

  /* ---- Typed RPC (the Worker and the Fleet call these) ---- */

  async create(record: SessionRecord): Promise<RpcResult<SessionView>> {
    return capture(() => this.lifecycle.create(record));
  }
  async get(userId: string): Promise<RpcResult<SessionView>> {
    return capture(() => this.lifecycle.view(userId));
  }
  async stop(userId: string): Promise<RpcResult<SessionView>> {
    return capture(async () => {
      const view = await this.lifecycle.stop(userId);
      this.previews.forgetPorts();
      return view;
    });
  }
  async start(userId: string): Promise<RpcResult<SessionView>> {
    return capture(() => this.lifecycle.start(userId));
  }
  async destroy(userId: string): Promise<RpcResult<{ id: string; status: SessionStatus }>> {
    return capture(async () => {
      const result = await this.lifecycle.destroy(userId);
      await this.previewScripts.forget();
      for (const ws of this.ctx.getWebSockets('client')) safeClose(ws, 1000, 'session destroyed');
      return result;
    });
  }
  /** Runs a short command to completion and returns its output (`POST …/exec`). */
  async exec(userId: string, body: ExecBody): Promise<RpcResult<ExecResult>> {
    return capture(async () => {
      const r = this.lifecycle.owned(userId);
      if (r.status !== 'running') throw new AppError(ErrorCode.Conflict, `session is ${r.status}; start it first`);
      await this.lifecycle.touch();
      return this.relay.runToCompletion(body);
    });
  }
  /** From the Fleet: the agent reported this state (reconciliation, or its container ended, with `reason`). */
  async applyStatus(status: SessionStatus, note: string | null, reason?: string): Promise<SessionView | null> {
    const view = await this.lifecycle.applyStatus(status, note, reason);
    if (this.lifecycle.record?.status !== 'running') {
      this.previews.forgetPorts();
      // A container that ended under its processes: they end too (with no data socket, the agent cannot say so).
      // (A session marked while its agent is away keeps its processes: the agent reports them when it returns.)
      if (reason || status === 'stopped') this.relay.containerEnded(reason === 'oom' ? 'oom' : 'lost');
    }
    return view;
  }
  /** Workspace quota news from the agent: a warning for the clients, or the stop it is making (reason `disk_quota`). */
  private onQuota(e: SessionEvent): boolean {
    if (e.event !== QUOTA_EVENT) return false;
    const { action, diskUsed, quota } = e.data;
    if (action === 'warning') this.broadcast({ type: 'quota_warning', payload: { diskUsed, quota } satisfies QuotaWarningPayload });
    else this.ctx.waitUntil(this.applyStatus('stopped', null, 'disk_quota'));
    return true;
  }
  /** The Fleet revoked `agentId`: its data socket to this session closes now, not when the agent's connection drops. */
  async dropAgent(agentId: string): Promise<void> {
    for (const ws of this.ctx.getWebSockets('agent')) {
      const att = attachmentOf(ws);
      if (att?.role !== 'agent' || att.agentId !== agentId) continue;
      safeClose(ws, CloseCode.Unauthorized, 'the agent was revoked');
      this.socketGone(ws, att);
    }
  }
  /** Makes a port public (anyone may open its preview) or private again. */
  async setPortVisibility(userId: string, port: number, visibility: 'public' | 'private'): Promise<RpcResult<SessionView>> {
    return capture(async () => toView(await this.lifecycle.commit(PreviewRelay.withVisibility(this.lifecycle.owned(userId), port, visibility))));
  }
  /** A REST file request (the Worker authenticated the user; ownership is checked here). Refused bodies are drained. */
  async fileRequest(userId: string, op: FileOp, path: string, request: Request): Promise<Response> {
    try {
      const r = this.lifecycle.owned(userId);
      if (r.status !== 'running') throw new AppError(ErrorCode.Conflict, `session is ${r.status}; start it to work on its files`);
      await this.lifecycle.touch();
      return await this.files.http(op, path, request, new URL(request.url));
    } catch (err) {
      return refuse(request, err);
    }
  }

  /* ---- Sockets and previews ---- */

  override async fetch(request: Request): Promise<Response> {
    const call = readSessionCall(request);
    if (!call) return refuse(request, new AppError(ErrorCode.BadRequest, 'not a request this object serves'));
    try {
      if (call.kind === 'agent') return this.acceptAgent(call.agentId);
      if (call.kind === 'preview') return await this.preview(request, call.info);
      const r = this.lifecycle.owned(call.userId);
      const pair = new WebSocketPair();
      this.ctx.acceptWebSocket(pair[1], ['client']);
      pair[1].serializeAttachment({ role: 'client', userId: call.userId, output: call.output, origin: call.origin, sid: crypto.randomUUID() } satisfies Attachment);
      await this.lifecycle.touch();
      pair[1].send(JSON.stringify({ type: 'ready', payload: { session: toView(this.lifecycle.record ?? r) } }));
      return new Response(null, { status: 101, webSocket: pair[0] });
    } catch (err) {
      return refuse(request, err);
    }
  }

  private async preview(request: Request, info: PreviewRequestInfo): Promise<Response> {
    if (this.lifecycle.record?.status === 'running') await this.lifecycle.touch();
    if (request.headers.get('Upgrade')?.toLowerCase() === 'websocket') return this.previews.upgrade(request, info);
    if (isPreviewMessagePath(info.path)) return this.previewScripts.receive(request, info);
    return this.previewScripts.decorate(request, info, await this.previews.http(request, info));
  }

  private acceptAgent(agentId: string): Response {
    const r = this.lifecycle.record;
    if (!r || r.status === 'destroyed' || r.agentId !== agentId) throw new AppError(ErrorCode.Forbidden, 'this session is not placed on that agent');
    for (const old of this.ctx.getWebSockets('agent')) safeClose(old, CloseCode.Replaced, 'replaced by a newer data socket');
    const pair = new WebSocketPair();
    this.ctx.acceptWebSocket(pair[1], ['agent']);
    pair[1].serializeAttachment({ role: 'agent', agentId } satisfies Attachment);
    this.agent.attached();
    log('info', 'agent data socket attached', { sessionId: r.id, agentId });
    this.ctx.waitUntil(
      new Promise((resolve) => setTimeout(resolve, 0)).then(() => this.previews.declarePorts()).catch((err: unknown) => log('warn', 'declaring ports failed', { error: String(err) })),
    );
    return new Response(null, { status: 101, webSocket: pair[0] });
  }

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    const att = attachmentOf(ws);
    if (att?.role === 'agent') {
      return this.agent.onMessage(message, {
        output: (frame) => this.relay.onAgentBinary(frame),
        binary: (frame) => void (this.previews.onBinary(frame) || this.streams.onBinary(frame)),
        event: (event, data) => {
          const e = decodeSessionEvent(event, data);
          if (!e) return log('warn', 'unknown or malformed event from agent', { event });
          if (!(this.streams.onEvent(e) || this.files.onEvent(e) || this.previews.onEvent(e) || this.relay.onEvent(e) || this.onQuota(e))) log('warn', 'event nobody takes', { event });
        },
        activity: () => this.lifecycle.touch(),
      });
    }
    if (att?.role === 'preview') {
      ws.serializeAttachment({ ...att, sent: att.sent + 1 } satisfies Attachment);
      return this.previews.fromBrowser(att.streamBase, att.sent, message);
    }
    if (att?.role !== 'client') return safeClose(ws, 1008, 'socket has no identity');
    await handleClientMessage(ws, message, {
      send: sendJson,
      processes: (s, type, id, payload) => this.relay.handleClient(s, type, id, payload),
      files: (s, type, id, payload) => this.files.client(s, type, id, payload),
      startPreview: (port) => this.previews.start(port),
      setPreviewScript: (payload) => this.previewScripts.set(payload),
      session: () => this.lifecycle.record && toView(this.lifecycle.record),
      activity: () => this.lifecycle.touch(),
    });
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    safeClose(ws, code === 1005 || code === 1006 ? 1000 : code, reason);
    const att = attachmentOf(ws);
    if (att?.role === 'preview') return this.previews.browserClosed(att.streamBase, code, reason);
    this.socketGone(ws, att);
  }

  override async webSocketError(ws: WebSocket): Promise<void> {
    this.socketGone(ws, attachmentOf(ws));
  }

  private socketGone(ws: WebSocket, att: Attachment | undefined): void {
    if (att?.role === 'agent') {
      if (this.agent.gone()) {
        this.streams.failAll();
        this.previews.failAll(new AppError(ErrorCode.AgentUnavailable, "the agent's data socket closed"));
      }
    } else if (att?.role === 'client') {
      this.relay.clientGone(ws);
      this.files.clientGone(ws);
      this.clientStore.forget(att.sid);
    }
  }

  override async alarm(): Promise<void> {
    await this.lifecycle.alarm();
  }

  private broadcast(frame: { type: string; payload: unknown }): void {
    const text = JSON.stringify(frame);
    for (const ws of this.ctx.getWebSockets('client')) trySend(ws, text);
  }
}
