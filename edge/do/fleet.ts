/**
 * Fleet DO (one instance, named "fleet"): the server of every agent control
 * socket. It uses the WebSocket Hibernation API, so an idle fleet costs
 * nothing; the agent records live in SQLite (./fleet/registry.ts).
 *
 * The Worker has already verified the agent's join token before a request
 * reaches here and passes the identity in `X-Agent-Id` / `X-Agent-Name`; a DO
 * is reachable only through its Worker, so those headers are trusted.
 */
import { DurableObject } from 'cloudflare:workers';
import { AppError, ErrorCode, fromUnknown } from '../../shared/errors';
import {
  AgentToEdgeFrame,
  CloseCode,
  type ContainerFigures,
  parseFrame,
  type EdgeToAgentFrame,
  type HelloFrame,
} from '../../shared/protocol/tunnel';
import { PROTOCOL_VERSION, SUPPORTED_PROTOCOL_VERSIONS } from '../../shared/protocol/version';
import { loadConfig } from '../config';
import type { Env } from '../env';
import type { SessionView } from '../../shared/api/containers';
import { AgentRegistry, type AgentRecord } from '../fleet/registry';
import { planReconcile } from '../fleet/reconcile';
import { chooseAgent, SessionIndex, type IndexedSession } from '../fleet/sessions';
import { log, setLogLevel } from '../log';
import { PendingRequests } from '../relay/pending';
import { safeClose, sendJson } from '../relay/socket';
import { socketLink } from '../relay/socket-link';
import { capture, type RpcResult } from '../relay/rpc-result';

interface Attachment {
  agentId: string;
  name: string;
  openedAt: number;
  hello: boolean;
}

/** A socket that has not said hello within this long is closed. */
const HELLO_TIMEOUT_MS = 10_000;

export type AgentView = Omit<AgentRecord, 'sessions' | 'connectedAt' | 'containers'>;

export class FleetDO extends DurableObject<Env> {
  private readonly registry: AgentRegistry;
  private readonly sessions: SessionIndex;
  private readonly pending = new PendingRequests();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.registry = new AgentRegistry(ctx.storage.sql);
    this.sessions = new SessionIndex(ctx.storage.sql);
    setLogLevel(typeof env.LOG_LEVEL === 'string' ? env.LOG_LEVEL : undefined);
  }

  override async fetch(request: Request): Promise<Response> {
    if (request.headers.get('Upgrade')?.toLowerCase() !== 'websocket') {
      return Response.json({ error: { code: ErrorCode.BadRequest, message: 'expected a WebSocket upgrade' } }, { status: 426 });
    }
    const agentId = request.headers.get('X-Agent-Id');
    const name = request.headers.get('X-Agent-Name') ?? 'agent';
    if (!agentId) return Response.json({ error: { code: ErrorCode.Unauthorized, message: 'no agent identity' } }, { status: 401 });

    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    for (const old of this.ctx.getWebSockets(agentId)) {
      safeClose(old, CloseCode.Replaced, 'replaced by a newer connection of the same agent');
    }
    this.ctx.acceptWebSocket(server, [agentId]);
    const attachment: Attachment = { agentId, name, openedAt: Date.now(), hello: false };
    server.serializeAttachment(attachment);
    await this.ensureAlarm();
    log('info', 'agent socket opened', { agentId, name });
    return new Response(null, { status: 101, webSocket: client });
  }

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    const att = ws.deserializeAttachment() as Attachment | null;
    if (!att) return safeClose(ws, CloseCode.ProtocolError, 'socket has no identity');
    if (typeof message !== 'string') {
      return send(ws, { type: 'error', error: { code: ErrorCode.ProtocolError, message: 'the control socket takes no binary frames' } });
    }
    const parsed = parseFrame(AgentToEdgeFrame, message);
    if (!parsed.ok) {
      log('warn', 'bad frame from agent', { agentId: att.agentId, code: parsed.error.code, message: parsed.error.message });
      return send(ws, { type: 'error', ...(parsed.id ? { id: parsed.id } : {}), error: parsed.error.toBody() });
    }
    const frame = parsed.frame;
    try {
      if (frame.type === 'hello') return this.onHello(ws, att, frame);
      if (!att.hello) {
        return send(ws, { type: 'error', error: { code: ErrorCode.ProtocolError, message: 'say hello first' } });
      }
      switch (frame.type) {
        case 'heartbeat':
          this.registry.recordHeartbeat(att.agentId, frame.system, frame.activeSessions, Date.now(), frame.containers ?? [], frame.activePreviews ?? 0);
          return send(ws, { type: 'heartbeat_ack', seq: frame.seq });
        case 'req':
          return send(ws, {
            type: 'res',
            id: frame.id,
            ok: false,
            error: { code: ErrorCode.NotFound, message: `unknown method "${frame.method}"` },
          });
        case 'res':
          if (!this.pending.settle(frame)) log('debug', 'late or unknown response', { agentId: att.agentId, id: frame.id });
          return;
        case 'event':
          log('debug', 'agent frame', { agentId: att.agentId, type: frame.type });
          return;
        case 'error':
          log('warn', 'agent reported an error', { agentId: att.agentId, error: frame.error });
          return;
      }
    } catch (err) {
      const e = fromUnknown(err);
      log('error', 'failed to handle agent frame', { agentId: att.agentId, error: String(err) });
      send(ws, { type: 'error', error: e.toBody() });
    }
  }

  private onHello(ws: WebSocket, att: Attachment, frame: HelloFrame): void {
    if (!SUPPORTED_PROTOCOL_VERSIONS.includes(frame.protocolVersion)) {
      const error = new AppError(
        ErrorCode.UnsupportedVersion,
        `protocol version ${frame.protocolVersion} is not supported; this edge speaks ${SUPPORTED_PROTOCOL_VERSIONS.join(', ')}`,
      );
      send(ws, { type: 'error', error: error.toBody() });
      return safeClose(ws, CloseCode.UnsupportedVersion, error.message);
    }
    const config = loadConfig(this.env);
    this.registry.upsertOnHello(att.agentId, { ...frame.agent }, frame.sessions, Date.now());
    ws.serializeAttachment({ ...att, name: frame.agent.name, hello: true } satisfies Attachment);
    send(ws, {
      type: 'welcome',
      protocolVersion: PROTOCOL_VERSION,
      agentId: att.agentId,
      heartbeatIntervalMs: config.heartbeatIntervalMs,
    });
    log('info', 'agent connected', { agentId: att.agentId, name: frame.agent.name, mode: frame.agent.mode, sessions: frame.sessions.length });
    this.ctx.waitUntil(this.reconcile(att.agentId, frame));
  }

  /** Brings the index in line with what a (re)connected agent reports; removes containers nobody owns. */
  private async reconcile(agentId: string, frame: HelloFrame): Promise<void> {
    const plan = planReconcile(this.sessions.byAgent(agentId), frame.sessions);
    for (const u of plan.updates) {
      try {
        const stub = this.env.SESSION.get(this.env.SESSION.idFromName(u.sessionId));
        const view = await stub.applyStatus(u.status, u.note ?? null);
        if (view) this.sessions.update(view);
        log('info', 'reconciled session', { agentId, sessionId: u.sessionId, status: u.status });
      } catch (err) {
        log('error', 'reconcile failed', { agentId, sessionId: u.sessionId, error: String(err) });
      }
    }
    for (const sessionId of plan.orphans) {
      log('warn', 'removing a container no session owns', { agentId, sessionId });
      await this.callAgent(agentId, 'session.remove', { sessionId }, 60_000);
    }
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    safeClose(ws, code === 1005 || code === 1006 ? CloseCode.Normal : code, reason);
    this.onSocketGone(ws, `closed (${code}${reason ? `: ${reason}` : ''})`);
  }

  override async webSocketError(ws: WebSocket, error: unknown): Promise<void> {
    this.onSocketGone(ws, `error: ${String(error)}`);
  }

  private onSocketGone(ws: WebSocket, why: string): void {
    const att = ws.deserializeAttachment() as Attachment | null;
    if (!att) return;
    const others = this.ctx.getWebSockets(att.agentId).filter((s) => s !== ws && s.readyState === WebSocket.READY_STATE_OPEN);
    if (others.length === 0) {
      this.registry.markDisconnected(att.agentId);
      this.pending.failOwner(att.agentId, new AppError(ErrorCode.AgentUnavailable, 'the agent disconnected'));
      log('info', 'agent disconnected', { agentId: att.agentId, why });
    }
  }

  override async alarm(): Promise<void> {
    const { heartbeatIntervalMs } = loadConfig(this.env);
    const now = Date.now();
    for (const id of this.registry.lapsed(now - Math.floor(heartbeatIntervalMs * 1.5))) {
      this.registry.markDisconnected(id);
      for (const ws of this.ctx.getWebSockets(id)) safeClose(ws, CloseCode.HeartbeatTimeout, 'heartbeat lapsed');
      log('warn', 'agent heartbeat lapsed', { agentId: id });
    }
    for (const ws of this.ctx.getWebSockets()) {
      const att = ws.deserializeAttachment() as Attachment | null;
      if (att && !att.hello && now - att.openedAt > HELLO_TIMEOUT_MS) safeClose(ws, CloseCode.ProtocolError, 'no hello');
    }
    if (this.registry.anyConnected() || this.ctx.getWebSockets().length > 0) {
      await this.ctx.storage.setAlarm(now + Math.max(100, Math.floor(heartbeatIntervalMs / 2)));
    }
  }

  private async ensureAlarm(): Promise<void> {
    if ((await this.ctx.storage.getAlarm()) === null) {
      const { heartbeatIntervalMs } = loadConfig(this.env);
      await this.ctx.storage.setAlarm(Date.now() + Math.max(100, Math.floor(heartbeatIntervalMs / 2)));
    }
  }

  /** RPC: the agents as /health shows them. */
  async listAgents(): Promise<AgentView[]> {
    return this.registry.list().map(({ sessions: _s, connectedAt: _c, containers: _k, ...view }) => view);
  }

  /**
   * RPC: picks the connected agent with the most free places and records the
   * session there as `creating`, or says why it cannot.
   */
  async placeSession(view: SessionView, userId: string, maxPerUser: number): Promise<RpcResult<{ agentId: string }>> {
    return capture(() => {
      if (this.sessions.countForUser(userId) >= maxPerUser) {
        throw new AppError(ErrorCode.Conflict, `session limit reached: at most ${maxPerUser} sessions per user`, { limit: maxPerUser });
      }
      const agents = this.registry.list().map((a) => ({ id: a.id, connected: a.connected, maxSessions: a.capacity.maxSessions }));
      const agentId = chooseAgent(agents, this.sessions.countByAgent());
      if (!agentId) {
        const anyConnected = agents.some((a) => a.connected);
        throw new AppError(ErrorCode.NoCapacity, anyConnected ? 'every agent is full' : 'no agent is connected');
      }
      this.sessions.insert({ id: view.id, userId, agentId, status: 'creating', view: { ...view, agentId } }, Date.now());
      return { agentId };
    });
  }

  /** RPC: sends a request to an agent and waits for its answer. */
  async callAgent(agentId: string, method: string, params: unknown, timeoutMs = 30_000): Promise<RpcResult<unknown>> {
    return capture(async () => {
      const ws = this.ctx
        .getWebSockets(agentId)
        .find((s) => s.readyState === WebSocket.READY_STATE_OPEN && (s.deserializeAttachment() as Attachment | null)?.hello);
      if (!ws) throw new AppError(ErrorCode.AgentUnavailable, 'the session\'s agent is not connected');
      return socketLink(ws, this.pending, agentId).request(method, params, timeoutMs);
    });
  }

  /** RPC: index upkeep, called by Session DOs when their record changes. */
  async updateSession(view: SessionView): Promise<void> {
    this.sessions.update(view);
  }
  async removeSession(sessionId: string): Promise<void> {
    this.sessions.remove(sessionId);
  }
  async getSession(sessionId: string): Promise<IndexedSession | null> {
    return this.sessions.get(sessionId) ?? null;
  }
  async listSessions(userId: string): Promise<SessionView[]> {
    return this.sessions.byUser(userId).map((s) => s.view);
  }
  /** RPC: live sessions (not destroyed) and the running ones among them, for /health. */
  async sessionCounts(): Promise<{ total: number; active: number }> {
    const all = this.sessions.all().filter((s) => s.status !== 'destroyed');
    return { total: all.length, active: all.filter((s) => s.status === 'running').length };
  }

  /** RPC: per-container figures the agents last reported, for /health. */
  async containerDetails(): Promise<Array<ContainerFigures & { agentId: string }>> {
    const out: Array<ContainerFigures & { agentId: string }> = [];
    for (const a of this.registry.list()) {
      if (!a.connected) continue;
      for (const c of a.containers) out.push({ agentId: a.id, ...c });
    }
    return out;
  }
}

function send(ws: WebSocket, frame: EdgeToAgentFrame): void {
  sendJson(ws, frame);
}
