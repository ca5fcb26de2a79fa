/**
 * Session DO (one per container session, idFromName(sessionId)): the record and its state machine, the idle
 * alarm, and the sockets it serves (clients, the agent's data socket, relayed previews). Lifecycle work goes
 * through the Fleet's control socket; processes, files and previews live in ../session/*-relay.ts.
 */
import { DurableObject } from 'cloudflare:workers';
import { AppError, ErrorCode } from '../../shared/errors';
import type { ExecBody, ExecResult, SessionStatus, SessionView, ResourceFigures } from '../../shared/api/containers';
import { ResourceFiguresResult, SessionInfoResult } from '../../shared/protocol/agent-methods';
import { ClientFrame, type OutputFormat, type ServerFrame } from '../../shared/protocol/client';
import { decodeBinaryFrame, FrameDecodeError, FrameKind } from '../../shared/protocol/binary';
import { AgentToEdgeFrame, CloseCode, parseFrame } from '../../shared/protocol/tunnel';
import type { Env } from '../env';
import { log, setLogLevel } from '../log';
import { PendingRequests } from '../relay/pending';
import { socketLink, waitOrTimeout } from '../relay/socket-link';
import { safeClose, sendJson, trySend } from '../relay/socket';
import { capture, unwrap, type RpcResult } from '../relay/rpc-result';
import { JOURNAL_BYTES } from '../session/output-fanout';
import { ProcessRelay, type AgentLink } from '../session/process-relay';
import { ProcessStore } from '../session/process-store';
import { EdgeByteStreams } from '../session/byte-streams';
import { FileRelay } from '../session/file-relay';
import { PreviewRelay, type PreviewRequestInfo } from '../session/preview-relay';
import { previewSettings } from '../preview/settings';
import { idleStep } from '../session/idle';
import { moveTo, toView, type SessionRecord } from '../session/record';
import { sessionSettings } from '../session/settings';
import { OneShotStreamIds } from '../session/stream-ids';

const CREATE_TIMEOUT_MS = 120_000;
const LIFECYCLE_TIMEOUT_MS = 60_000;

type Attachment = { role: 'client'; userId: string; output?: OutputFormat } | { role: 'agent'; agentId: string } | { role: 'preview'; streamBase: number };

/** How long a client request waits for the agent's data socket to (re)appear. */
const AGENT_WAIT_MS = 15_000;

export class SessionDO extends DurableObject<Env> {
  private record: SessionRecord | undefined;
  private readonly pending = new PendingRequests();
  private readonly relay: ProcessRelay;
  private readonly store: ProcessStore;
  private readonly streams: EdgeByteStreams;
  private readonly files: FileRelay;
  private readonly previews: PreviewRelay;
  private readonly oneShotIds = new OneShotStreamIds(); // file and preview streams (../session/stream-ids.ts)
  /** Where browsers reach this edge (from the last client connect), for preview URLs. */
  private publicOrigin = '';
  private agentWaiters: Array<() => void> = [];

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    setLogLevel(typeof env.LOG_LEVEL === 'string' ? env.LOG_LEVEL : undefined);
    this.store = new ProcessStore(ctx.storage.sql);
    this.streams = new EdgeByteStreams(() => {
      const ws = this.agentSocket();
      return ws && { sendBinary: (b) => trySend(ws, b), sendEvent: (event, data) => trySend(ws, JSON.stringify({ type: 'event', event, data })) };
    });
    this.files = new FileRelay({
      agent: () => this.agentLink(),
      streams: this.streams,
      nextStreamId: () => this.oneShotIds.take(1),
      maxFileSize: sessionSettings(env).maxFileSize,
      send: sendJson,
      clients: () => this.ctx.getWebSockets('client'),
    });
    this.previews = new PreviewRelay({
      agent: () => this.agentLink(),
      streams: this.streams,
      nextStreamIds: (n) => this.oneShotIds.take(n),
      record: () => this.record,
      acceptPreviewSocket: (server, streamBase) => {
        this.ctx.acceptWebSocket(server, ['preview', `preview:${streamBase}`]);
        server.serializeAttachment({ role: 'preview', streamBase } satisfies Attachment);
      },
      previewSockets: (streamBase) => this.ctx.getWebSockets(`preview:${streamBase}`),
      broadcast: (frame) => this.broadcast(frame),
      saveRecord: async (next) => {
        this.record = next;
        await this.ctx.storage.put('record', next);
      },
      publicOrigin: () => this.publicOrigin,
      domain: previewSettings(env).domain,
    });
    this.relay = new ProcessRelay({
      store: this.store,
      agent: () => this.agentLink(),
      clients: () => this.ctx.getWebSockets('client'),
      send: sendJson,
      sendBinary: (ws, bytes) => void trySend(ws, bytes),
      // Only client attachments carry `output` (see fetch).
      wantsBinary: (ws) => (ws.deserializeAttachment() as { output?: OutputFormat } | null)?.output === 'binary',
    });
    ctx.blockConcurrencyWhile(async () => {
      this.record = await ctx.storage.get<SessionRecord>('record');
      this.relay.restore(JOURNAL_BYTES);
    });
  }

  private agentSocket(): WebSocket | undefined {
    return this.ctx.getWebSockets('agent').find((ws) => ws.readyState === WebSocket.READY_STATE_OPEN);
  }

  /** The agent's data socket as a link; waits a while for it when the agent is (re)connecting. */
  private async agentLink(): Promise<AgentLink> {
    let ws = this.agentSocket();
    if (!ws) {
      await waitOrTimeout(this.agentWaiters, AGENT_WAIT_MS);
      ws = this.agentSocket();
    }
    if (!ws) throw new AppError(ErrorCode.AgentUnavailable, 'the session\'s agent is not connected');
    return socketLink(ws, this.pending);
  }

  private get fleet() {
    return this.env.FLEET.get(this.env.FLEET.idFromName('fleet'));
  }

  private async save(next: SessionRecord, reason?: string): Promise<SessionRecord> {
    const changed = this.record?.status !== next.status;
    this.record = next;
    await this.ctx.storage.put('record', next);
    if (changed) {
      this.broadcast({ type: 'container_status', payload: { status: next.status, session: toView(next), ...(reason ? { reason } : {}) } });
      await this.scheduleIdle();
    }
    return next;
  }

  private owned(userId: string): SessionRecord {
    const r = this.record;
    if (!r || r.status === 'destroyed') throw new AppError(ErrorCode.NotFound, 'no such session');
    if (r.userId !== userId) throw new AppError(ErrorCode.Forbidden, 'this session belongs to another user');
    return r;
  }

  private async agentCall(method: string, params: unknown, timeoutMs = LIFECYCLE_TIMEOUT_MS): Promise<unknown> {
    return unwrap(this.fleet.callAgent(this.record!.agentId, method, params, timeoutMs));
  }

  /** RPC: provisions the container for a session the Fleet has just placed. */
  async create(record: SessionRecord): Promise<RpcResult<SessionView>> {
    return capture(async () => {
      if (this.record) throw new AppError(ErrorCode.Conflict, 'session exists already');
      await this.save({ ...record, status: 'creating' });
      try {
        const raw = await this.agentCall(
          'session.create',
          { sessionId: record.id, userId: record.userId, image: record.image, env: record.env, ports: record.ports, limits: {} },
          CREATE_TIMEOUT_MS,
        );
        const info = SessionInfoResult.parse(raw);
        const next = moveTo({ ...this.record!, lastActiveAt: Date.now() }, info.state === 'running' ? 'running' : 'stopped');
        if (info.limits) next.limits = { cpu: info.limits.cpu, memory: info.limits.memoryBytes };
        if (info.containerId) next.containerId = info.containerId;
        if (info.address) next.address = info.address;
        await this.save(next);
        await this.fleet.updateSession(toView(next));
        log('info', 'session created', { sessionId: record.id, agentId: record.agentId, image: record.image });
        return toView(next);
      } catch (err) {
        // Nothing of a failed session may remain: ask the agent to remove whatever it made, then forget it.
        await this.fleet.callAgent(record.agentId, 'session.remove', { sessionId: record.id }, LIFECYCLE_TIMEOUT_MS);
        await this.save(moveTo(this.record!, 'destroyed'));
        await this.fleet.removeSession(record.id);
        throw err;
      }
    });
  }

  /** RPC: the record plus live resource figures. */
  async get(userId: string): Promise<RpcResult<SessionView>> {
    return capture(async () => {
      const r = this.owned(userId);
      await this.touch();
      let resources: ResourceFigures | null = null;
      if (r.status === 'running') {
        try {
          resources = ResourceFiguresResult.parse(await this.agentCall('session.stats', { sessionId: r.id }, 10_000));
        } catch (err) {
          log('warn', 'no resource figures', { sessionId: r.id, error: String(err) });
        }
      }
      return { ...toView(this.record!), resources };
    });
  }

  async stop(userId: string, reason = 'requested'): Promise<RpcResult<SessionView>> {
    return capture(async () => {
      const r = this.owned(userId);
      if (r.status === 'stopped') return toView(r);
      moveTo(r, 'stopped');
      SessionInfoResult.parse(await this.agentCall('session.stop', { sessionId: r.id }));
      const next = await this.save(moveTo(this.record!, 'stopped'), reason);
      await this.fleet.updateSession(toView(next));
      return toView(next);
    });
  }

  async start(userId: string): Promise<RpcResult<SessionView>> {
    return capture(async () => {
      const r = this.owned(userId);
      if (r.status === 'running') return toView(r);
      moveTo(r, 'running');
      const info = SessionInfoResult.parse(await this.agentCall('session.start', { sessionId: r.id }));
      const next = await this.save({ ...moveTo(this.record!, 'running'), lastActiveAt: Date.now(), ...(info.address ? { address: info.address } : {}) });
      await this.fleet.updateSession(toView(next));
      return toView(next);
    });
  }

  async destroy(userId: string): Promise<RpcResult<{ id: string; status: SessionStatus }>> {
    return capture(async () => {
      const r = this.owned(userId);
      await this.agentCall('session.remove', { sessionId: r.id });
      await this.save(moveTo(this.record!, 'destroyed'), 'deleted');
      await this.fleet.removeSession(r.id);
      for (const ws of this.ctx.getWebSockets('client')) safeClose(ws, 1000, 'session destroyed');
      await this.ctx.storage.deleteAlarm();
      log('info', 'session destroyed', { sessionId: r.id });
      return { id: r.id, status: 'destroyed' as const };
    });
  }

  /** RPC: runs a short command to completion and returns its output (`POST …/exec`). */
  async exec(userId: string, body: ExecBody): Promise<RpcResult<ExecResult>> {
    return capture(async () => {
      const r = this.owned(userId);
      if (r.status !== 'running') throw new AppError(ErrorCode.Conflict, `session is ${r.status}; start it first`);
      await this.touch();
      return this.relay.runToCompletion(body);
    });
  }

  /** RPC from the Fleet's reconciliation: the agent reported this state. */
  async applyStatus(status: SessionStatus, note: string | null): Promise<SessionView | null> {
    const r = this.record;
    if (!r || r.status === 'destroyed' || r.status === status) return r ? toView(r) : null;
    try {
      const next = await this.save(moveTo(r, status, note ?? undefined), note ?? 'reconciled');
      return toView(next);
    } catch (err) {
      log('warn', 'ignored a status the state machine refuses', { sessionId: r.id, from: r.status, to: status, error: String(err) });
      return toView(r);
    }
  }

  /** Marks activity (REST calls, client messages, preview requests, process output). */
  async touch(): Promise<void> {
    const r = this.record;
    if (!r || r.status === 'destroyed') return;
    const now = Date.now();
    // Storage writes are cheap but not free: record activity at most once a second.
    if (now - r.lastActiveAt < 1000) return;
    this.record = { ...r, lastActiveAt: now };
    delete this.record.idleWarnedAt;
    await this.ctx.storage.put('record', this.record);
  }

  override async fetch(request: Request): Promise<Response> {
    const agentId = request.headers.get('X-Agent-Id');
    if (agentId) return this.acceptAgent(agentId);
    const fileOp = request.headers.get('X-File-Op');
    if (fileOp) return this.fileRequest(fileOp, request);
    const preview = request.headers.get('X-Preview-Info');
    if (preview) return this.previewRequest(request, preview);
    const userId = request.headers.get('X-User-Id') ?? '';
    this.publicOrigin = request.headers.get('X-Public-Origin') ?? this.publicOrigin;
    let r: SessionRecord;
    try {
      r = this.owned(userId);
    } catch (err) {
      const e = err instanceof AppError ? err : new AppError(ErrorCode.NotFound, 'no such session');
      return Response.json({ error: e.toBody() }, { status: e.status });
    }
    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    this.ctx.acceptWebSocket(server, ['client']);
    const output: OutputFormat = request.headers.get('X-Output-Format') === 'binary' ? 'binary' : 'text';
    server.serializeAttachment({ role: 'client', userId, output } satisfies Attachment);
    await this.touch();
    server.send(JSON.stringify({ type: 'ready', payload: { session: toView(this.record ?? r) } } satisfies ServerFrame));
    return new Response(null, { status: 101, webSocket: client });
  }

  /** A REST file request the Worker forwarded (it authenticated the user; ownership is checked here). */
  private async fileRequest(op: string, request: Request): Promise<Response> {
    try {
      const r = this.owned(request.headers.get('X-User-Id') ?? '');
      if (r.status !== 'running') throw new AppError(ErrorCode.Conflict, `session is ${r.status}; start it to work on its files`);
      await this.touch();
      const url = new URL(request.url);
      return await this.files.http(op, decodeURIComponent(request.headers.get('X-File-Path') ?? '%2Fworkspace'), request, url);
    } catch (err) {
      return errorJson(err, 'file request failed');
    }
  }

  private async previewRequest(request: Request, raw: string): Promise<Response> {
    try {
      const info = JSON.parse(decodeURIComponent(raw)) as PreviewRequestInfo;
      if (this.record?.status === 'running') await this.touch();
      if (request.headers.get('Upgrade')?.toLowerCase() === 'websocket') return await this.previews.upgrade(request, info);
      return await this.previews.http(request, info);
    } catch (err) {
      return errorJson(err, 'preview request failed');
    }
  }

  /** RPC: makes a port public (anyone may open its preview) or private again. */
  async setPortVisibility(userId: string, port: number, visibility: 'public' | 'private'): Promise<RpcResult<SessionView>> {
    return capture(async () => {
      const next = PreviewRelay.withVisibility(this.owned(userId), port, visibility);
      this.record = next;
      await this.ctx.storage.put('record', next);
      return toView(next);
    });
  }

  private acceptAgent(agentId: string): Response {
    const r = this.record;
    if (!r || r.status === 'destroyed' || r.agentId !== agentId) {
      return Response.json({ error: { code: ErrorCode.Forbidden, message: 'this session is not placed on that agent' } }, { status: 403 });
    }
    for (const old of this.ctx.getWebSockets('agent')) safeClose(old, CloseCode.Replaced, 'replaced by a newer data socket');
    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    this.ctx.acceptWebSocket(server, ['agent']);
    server.serializeAttachment({ role: 'agent', agentId } satisfies Attachment);
    const waiters = this.agentWaiters;
    this.agentWaiters = [];
    // Let the socket finish opening before waiters send on it.
    setTimeout(() => waiters.forEach((w) => w()), 0);
    log('info', 'agent data socket attached', { sessionId: r.id, agentId });
    this.ctx.waitUntil(
      new Promise((resolve) => setTimeout(resolve, 0)).then(() => this.previews.declarePorts()).catch((err: unknown) => log('warn', 'declaring ports failed', { error: String(err) })),
    );
    return new Response(null, { status: 101, webSocket: client });
  }

  private async onAgentMessage(message: string | ArrayBuffer): Promise<void> {
    if (typeof message !== 'string') {
      try {
        const frame = decodeBinaryFrame(message);
        if (frame.kind === FrameKind.Output) this.relay.onAgentBinary(frame);
        else if (!this.previews.onBinary(frame)) this.streams.onBinary(frame);
        await this.touch();
      } catch (err) {
        if (!(err instanceof FrameDecodeError)) throw err;
        log('warn', 'bad binary frame from agent', { error: err.message });
      }
      return;
    }
    const parsed = parseFrame(AgentToEdgeFrame, message);
    if (!parsed.ok) return log('warn', 'bad frame from agent', { code: parsed.error.code, message: parsed.error.message });
    const f = parsed.frame;
    if (f.type === 'res') this.pending.settle(f);
    else if (f.type === 'event') this.onAgentEvent(f.event, f.data);
    else if (f.type === 'error') log('warn', 'agent reported an error', { error: f.error });
  }

  private onAgentEvent(event: string, data: unknown): void {
    if (this.streams.onEvent(event, data)) {
      return;
    } else if (event === 'fs.change') {
      this.files.onChange(data);
    } else if (this.previews.onEvent(event, data)) {
      return;
    } else {
      this.relay.onAgentEvent(event, data);
    }
  }

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    const att = ws.deserializeAttachment() as Attachment | null;
    if (att?.role === 'agent') return this.onAgentMessage(message);
    if (att?.role === 'preview') return this.previews.fromBrowser(att.streamBase, message);
    await this.touch();
    if (typeof message !== 'string') {
      return sendJson(ws, { type: 'error', payload: { code: ErrorCode.ProtocolError, message: 'binary frames are not accepted here' } });
    }
    const parsed = parseFrame(ClientFrame, message);
    if (!parsed.ok) {
      return sendJson(ws, { type: 'error', ...(parsed.id ? { id: parsed.id } : {}), payload: { code: parsed.error.code, message: parsed.error.message } });
    }
    const frame = parsed.frame;
    const id = frame.id;
    try {
      if (await this.relay.handleClient(ws, frame.type, id, frame.payload)) return;
      if (await this.files.client(ws, frame.type, id, frame.payload)) return;
    } catch (err) {
      const e = err instanceof AppError ? err : new AppError(ErrorCode.Internal, 'Internal server error');
      if (!(err instanceof AppError)) log('error', 'client request failed', { type: frame.type, error: String(err) });
      return sendJson(ws, { type: 'error', ...(id !== undefined ? { id } : {}), payload: { code: e.code, message: e.message, ...(e.details ? { details: e.details } : {}) } });
    }
    switch (frame.type) {
      case 'ping':
        return sendJson(ws, { type: 'pong', ...(id !== undefined ? { id } : {}), payload: { time: Date.now() } });
      case 'start_preview':
        try {
          return sendJson(ws, { type: 'preview_ready', ...(id !== undefined ? { id } : {}), payload: await this.previews.start((frame.payload as { port?: unknown } | undefined)?.port) });
        } catch (err) {
          const e = err instanceof AppError ? err : new AppError(ErrorCode.Internal, 'Internal server error');
          return sendJson(ws, { type: 'error', ...(id !== undefined ? { id } : {}), payload: { code: e.code, message: e.message } });
        }
      case 'get_session':
        return sendJson(ws, { type: 'session', ...(id !== undefined ? { id } : {}), payload: { session: toView(this.record!) } });
      default:
        return sendJson(ws, {
          type: 'error',
          ...(id !== undefined ? { id } : {}),
          payload: { code: ErrorCode.ProtocolError, message: `unknown message type "${frame.type}"` },
        });
    }
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    safeClose(ws, code === 1005 || code === 1006 ? 1000 : code, reason);
    const att = ws.deserializeAttachment() as Attachment | null;
    if (att?.role === 'preview') return this.previews.browserClosed(att.streamBase, code, reason);
    this.socketGone(ws);
  }

  override async webSocketError(ws: WebSocket): Promise<void> {
    this.socketGone(ws);
  }

  private socketGone(ws: WebSocket): void {
    const att = ws.deserializeAttachment() as Attachment | null;
    if (att?.role === 'agent') {
      if (!this.agentSocket()) {
        this.pending.failOwner('agent', new AppError(ErrorCode.AgentUnavailable, 'the agent\'s data socket closed'));
        this.streams.failAll();
        this.previews.failAll(new AppError(ErrorCode.AgentUnavailable, 'the agent\'s data socket closed'));
      }
    } else {
      this.relay.clientGone(ws);
      this.files.clientGone(ws);
    }
  }

  override async alarm(): Promise<void> {
    const r = this.record;
    if (!r) return;
    const { idleTimeoutMs, idleWarningMs } = sessionSettings(this.env);
    const step = idleStep(r, Date.now(), idleTimeoutMs, idleWarningMs);
    switch (step.kind) {
      case 'none':
        return;
      case 'wait':
        return this.ctx.storage.setAlarm(step.until);
      case 'warn':
        this.broadcast({ type: 'idle_warning', payload: { stopAt: new Date(step.stopAt).toISOString(), inMs: step.stopAt - Date.now() } });
        this.record = { ...r, idleWarnedAt: Date.now() };
        await this.ctx.storage.put('record', this.record);
        return this.ctx.storage.setAlarm(step.stopAt);
      case 'stop': {
        log('info', 'stopping an idle session', { sessionId: r.id, idleMs: Date.now() - r.lastActiveAt });
        const result = await this.stop(r.userId, 'idle');
        if (!result.ok) {
          log('warn', 'idle stop failed; will retry', { sessionId: r.id, error: result.error });
          await this.ctx.storage.setAlarm(Date.now() + 30_000);
        }
        return;
      }
    }
  }

  private async scheduleIdle(): Promise<void> {
    const r = this.record;
    if (!r || r.status !== 'running') {
      await this.ctx.storage.deleteAlarm();
      return;
    }
    const { idleTimeoutMs, idleWarningMs } = sessionSettings(this.env);
    const step = idleStep(r, Date.now(), idleTimeoutMs, idleWarningMs);
    await this.ctx.storage.setAlarm(step.kind === 'wait' ? step.until : Date.now());
  }

  private broadcast(frame: ServerFrame): void {
    const text = JSON.stringify(frame);
    for (const ws of this.ctx.getWebSockets('client')) {
      try {
        ws.send(text);
      } catch {
        // Closing already.
      }
    }
  }
}

/** An internal request's failure as the one error shape; unexpected errors are logged, not shown. */
function errorJson(err: unknown, what: string): Response {
  const e = err instanceof AppError ? err : new AppError(ErrorCode.Internal, 'Internal server error');
  if (!(err instanceof AppError)) log('error', what, { error: String(err) });
  return Response.json({ error: e.toBody() }, { status: e.status });
}

