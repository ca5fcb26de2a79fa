/**
 * Fleet DO (one instance, named "fleet"): the server of every agent control
 * socket, placement, and the session index. It uses the WebSocket
 * Hibernation API, so an idle fleet costs nothing; agent records live in
 * SQLite (../fleet/registry.ts), the agent registry in D1 (../fleet/agent-store.ts).
 *
 * The Worker has already verified the agent's join token (and that the agent
 * is registered, unrevoked and unexpired) before a request reaches here, and
 * passes the identity in `X-Agent-Id` / `X-Agent-Name`; a DO is reachable
 * only through its Worker, so those headers are trusted.
 *
 * Each socket has a random connection id: requests sent on it are settled
 * only by `res` frames arriving on it. A second socket of the same agent
 * replaces the first only once it has said hello.
 */
import { DurableObject } from 'cloudflare:workers';
import { z } from 'zod';
import { AppError, ErrorCode, fromUnknown } from '../../shared/errors';
import { AgentToEdgeFrame, CloseCode, parseFrame, type EdgeToAgentFrame, type HelloFrame } from '../../shared/protocol/tunnel';
import { PROTOCOL_VERSION, SUPPORTED_PROTOCOL_VERSIONS } from '../../shared/protocol/version';
import type { SessionStatus, SessionView } from '../../shared/api/containers';
import { loadConfig } from '../config';
import type { Env } from '../env';
import { openAgentStore } from '../fleet/agent-store';
import { AGENT_UNAVAILABLE, SerialByKey, sessionsToMark } from '../fleet/availability';
import type { FleetSnapshot } from '../fleet/health-view';
import { effectiveCapacity, noPlaceReason, placementCandidates, type PlacementLimits } from '../fleet/placement';
import { planReconcile } from '../fleet/reconcile';
import { ContainerWatch } from '../fleet/container-watch';
import { AgentRegistry, type AgentView } from '../fleet/registry';
import { chooseAgent, SessionIndex, type IndexedSession } from '../fleet/sessions';
import { log, setLogLevel } from '../log';
import { PendingRequests } from '../relay/pending';
import { capture, type RpcResult } from '../relay/rpc-result';
import { safeClose, sendJson } from '../relay/socket';
import { socketLink } from '../relay/socket-link';

const Attachment = z.object({
  agentId: z.string(),
  name: z.string(),
  /** Random per socket: the owner of the requests sent on it. */
  conn: z.string(),
  openedAt: z.number(),
  hello: z.boolean(),
});
type Attachment = z.infer<typeof Attachment>;

/** A socket that has not said hello within this long is closed. */
const HELLO_TIMEOUT_MS = 10_000;

export type { AgentView };

/** One agent as the operator's admin view shows it: what it says, what the edge allows, and its load. */
export interface AgentLoad {
  id: string;
  name: string;
  mode: AgentView['mode'];
  connected: boolean;
  draining: boolean;
  lastSeen: string | null;
  capacity: { claimed: number; maxSessions: number };
  /** Sessions holding a place (running or being created). */
  running: number;
  /** Live sessions of any state (not destroyed). */
  sessions: number;
  free: number;
}

export class FleetDO extends DurableObject<Env> {
  private readonly registry: AgentRegistry;
  private readonly sessions: SessionIndex;
  private readonly pending = new PendingRequests();
  private readonly serial = new SerialByKey();
  private readonly containers = new ContainerWatch({
    byAgent: (id) => this.sessions.byAgent(id), session: (id) => this.env.SESSION.get(this.env.SESSION.idFromName(id)), serial: this.serial,
    applyStatus: (...a) => this.applyStatus(...a), waitUntil: (p) => this.ctx.waitUntil(p) });

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.registry = new AgentRegistry(ctx.storage.sql);
    this.sessions = new SessionIndex(ctx.storage.sql);
    setLogLevel(typeof env.LOG_LEVEL === 'string' ? env.LOG_LEVEL : undefined);
  }

  private get limits(): PlacementLimits {
    const { agentMaxSessions, allowLocalAgents } = loadConfig(this.env);
    return { agentMaxSessions, allowLocalAgents };
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
    // An older socket of this agent stays until this one has said hello (see onHello).
    this.ctx.acceptWebSocket(server, [agentId]);
    const attachment: Attachment = { agentId, name, conn: crypto.randomUUID(), openedAt: Date.now(), hello: false };
    server.serializeAttachment(attachment);
    await this.ensureAlarm();
    log('info', 'agent socket opened', { agentId, name, conn: attachment.conn });
    return new Response(null, { status: 101, webSocket: client });
  }

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    const att = attachmentOf(ws);
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
      if (frame.type === 'hello') return await this.onHello(ws, att, frame);
      if (!att.hello) {
        return send(ws, { type: 'error', error: { code: ErrorCode.ProtocolError, message: 'say hello first' } });
      }
      switch (frame.type) {
        case 'heartbeat':
          this.registry.recordHeartbeat(att.agentId, frame.system, frame.activeSessions, Date.now(), frame.containers ?? [], frame.activePreviews ?? 0);
          send(ws, { type: 'heartbeat_ack', seq: frame.seq });
          return this.containers.onHeartbeat(att.agentId, frame.containers ?? []);
        case 'req':
          return send(ws, {
            type: 'res',
            id: frame.id,
            ok: false,
            error: { code: ErrorCode.NotFound, message: `unknown method "${frame.method}"` },
          });
        case 'res':
          // Only the socket a request went out on can settle it.
          if (!this.pending.settle(frame, att.conn)) log('debug', 'late, unknown or foreign response', { agentId: att.agentId, id: frame.id });
          return;
        case 'event':
          if (!(await this.containers.onEvent(att.agentId, frame.event, frame.data))) log('debug', 'agent frame', { agentId: att.agentId, type: frame.type, event: frame.event });
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

  private async onHello(ws: WebSocket, att: Attachment, frame: HelloFrame): Promise<void> {
    if (!SUPPORTED_PROTOCOL_VERSIONS.includes(frame.protocolVersion)) {
      const error = new AppError(
        ErrorCode.UnsupportedVersion,
        `protocol version ${frame.protocolVersion} is not supported; this edge speaks ${SUPPORTED_PROTOCOL_VERSIONS.join(', ')}`,
      );
      send(ws, { type: 'error', error: error.toBody() });
      return safeClose(ws, CloseCode.UnsupportedVersion, error.message);
    }
    const { agentId } = att;
    // Sessions are brought in line with what the agent reports before it shows as connected.
    let orphans: string[] = [];
    await this.serial.run(agentId, async () => {
      const plan = planReconcile(this.sessions.byAgent(agentId), frame.sessions);
      orphans = plan.orphans;
      for (const u of plan.updates) await this.applyStatus(agentId, u.sessionId, u.status, u.note ?? null);
    });
    if (ws.readyState !== WebSocket.READY_STATE_OPEN) return;
    this.registry.upsertOnHello(agentId, { ...frame.agent }, frame.sessions, Date.now());
    ws.serializeAttachment({ ...att, name: frame.agent.name, hello: true } satisfies Attachment);
    for (const old of this.ctx.getWebSockets(agentId)) {
      const o = attachmentOf(old);
      if (old === ws || !o) continue;
      this.pending.failOwner(o.conn, new AppError(ErrorCode.AgentUnavailable, 'the agent connected again'));
      safeClose(old, CloseCode.Replaced, 'replaced by a newer connection of the same agent');
      log('warn', 'agent socket replaced', { agentId, oldConn: o.conn, oldOpenedAt: new Date(o.openedAt).toISOString(), newConn: att.conn });
    }
    send(ws, { type: 'welcome', protocolVersion: PROTOCOL_VERSION, agentId, heartbeatIntervalMs: loadConfig(this.env).heartbeatIntervalMs });
    log('info', 'agent connected', { agentId, name: frame.agent.name, mode: frame.agent.mode, sessions: frame.sessions.length });
    for (const sessionId of orphans) {
      log('warn', 'removing a container no session owns', { agentId, sessionId });
      this.ctx.waitUntil(this.callAgent(agentId, 'session.remove', { sessionId }, 60_000).then(() => undefined));
    }
  }

  /** Tells a Session DO its status changed under it, and keeps the index in step. */
  private async applyStatus(agentId: string, sessionId: string, status: SessionStatus, note: string | null, reason?: string): Promise<void> {
    try {
      const view = await this.env.SESSION.get(this.env.SESSION.idFromName(sessionId)).applyStatus(status, note, reason);
      if (view) this.sessions.update(view);
      log('info', 'reconciled session', { agentId, sessionId, status, ...(note ? { note } : {}) });
    } catch (err) {
      log('error', 'reconcile failed', { agentId, sessionId, error: String(err) });
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
    const att = attachmentOf(ws);
    if (!att) return;
    this.pending.failOwner(att.conn, new AppError(ErrorCode.AgentUnavailable, 'the agent disconnected'));
    if (!att.hello) return;
    const others = this.ctx.getWebSockets(att.agentId).filter((s) => s !== ws && s.readyState === WebSocket.READY_STATE_OPEN && attachmentOf(s)?.hello);
    if (others.length === 0) this.agentGone(att.agentId, why);
  }

  /** The agent has no socket left: it is disconnected and its sessions are marked unavailable until it returns. */
  private agentGone(agentId: string, why: string): void {
    if (!this.registry.get(agentId)?.connected) return;
    this.registry.markDisconnected(agentId);
    log('info', 'agent disconnected', { agentId, why });
    this.ctx.waitUntil(
      this.serial.run(agentId, async () => {
        for (const sessionId of sessionsToMark(this.sessions.byAgent(agentId))) {
          if (this.registry.get(agentId)?.connected) return;
          await this.applyStatus(agentId, sessionId, 'error', AGENT_UNAVAILABLE);
        }
      }),
    );
  }

  /** Closes every socket of an agent whose token may no longer be used, at once. */
  private cutOff(agentId: string, why: string): void {
    for (const ws of this.ctx.getWebSockets(agentId)) {
      const att = attachmentOf(ws);
      if (att) this.pending.failOwner(att.conn, new AppError(ErrorCode.AgentUnavailable, 'the agent was revoked'));
      safeClose(ws, CloseCode.Unauthorized, why);
    }
    log('warn', 'agent cut off', { agentId, why });
    this.containers.dropDataSockets(agentId);
    this.agentGone(agentId, why);
  }

  override async alarm(): Promise<void> {
    const { heartbeatIntervalMs } = loadConfig(this.env);
    const now = Date.now();
    // Two missed heartbeats (README) and half an interval to arrive; only sockets that said hello lapse.
    for (const id of this.registry.lapsed(now - Math.floor(heartbeatIntervalMs * 2.5))) {
      for (const ws of this.ctx.getWebSockets(id)) if (attachmentOf(ws)?.hello) safeClose(ws, CloseCode.HeartbeatTimeout, 'heartbeat lapsed');
      log('warn', 'agent heartbeat lapsed', { agentId: id });
      this.agentGone(id, 'heartbeat lapsed');
    }
    const withSockets = new Set<string>();
    for (const ws of this.ctx.getWebSockets()) {
      const att = attachmentOf(ws);
      if (!att) continue;
      withSockets.add(att.agentId);
      if (!att.hello && now - att.openedAt > HELLO_TIMEOUT_MS) safeClose(ws, CloseCode.ProtocolError, 'no hello');
    }
    // Revoked (or expired) while connected: closed within one tick (half a heartbeat interval).
    try {
      const store = await openAgentStore(this.env.DB);
      for (const id of await store.refused([...withSockets])) this.cutOff(id, 'agent token revoked or expired');
    } catch (err) {
      log('error', 'could not check the agent registry', { error: String(err) });
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

  /** RPC: everything /health shows, in one round trip. */
  async healthSnapshot(): Promise<FleetSnapshot> {
    const records = this.registry.list();
    const live = this.sessions.countByStatus();
    const total = [...live].reduce((n, [status, count]) => (status === 'destroyed' ? n : n + count), 0);
    return {
      agents: records.map(({ sessions: _s, connectedAt: _c, containers: _k, ...view }) => view),
      sessions: { total, active: live.get('running') ?? 0 },
      containers: records.filter((a) => a.connected).flatMap((a) => a.containers.map((c) => ({ agentId: a.id, ...c }))),
    };
  }

  /** RPC: every agent the fleet has seen, with its load, for `GET /api/admin/agents`. */
  async agentLoads(): Promise<AgentLoad[]> {
    const running = this.sessions.countByAgent();
    const live = this.sessions.liveByAgent();
    return this.registry.list().map((a) => {
      const maxSessions = effectiveCapacity(a.capacity.maxSessions, this.limits);
      const used = running.get(a.id) ?? 0;
      return {
        id: a.id,
        name: a.name,
        mode: a.mode,
        connected: a.connected,
        draining: a.draining,
        lastSeen: a.lastSeen === null ? null : new Date(a.lastSeen).toISOString(),
        capacity: { claimed: a.capacity.maxSessions, maxSessions },
        running: used,
        sessions: live.get(a.id) ?? 0,
        free: Math.max(0, maxSessions - used),
      };
    });
  }

  /** RPC: turns draining on or off (no new placements; running sessions go on). */
  async setDraining(agentId: string, draining: boolean): Promise<RpcResult<AgentLoad>> {
    return capture(async () => {
      if (!this.registry.setDraining(agentId, draining)) throw new AppError(ErrorCode.NotFound, `agent ${agentId} has never connected to this edge`);
      log('info', draining ? 'agent draining' : 'agent no longer draining', { agentId });
      return (await this.agentLoads()).find((a) => a.id === agentId)!;
    });
  }

  /** RPC: the agents were revoked in the registry: close their sockets now. */
  async revokeAgents(agentIds: string[]): Promise<void> {
    for (const id of agentIds) this.cutOff(id, 'agent token revoked');
  }

  /**
   * RPC: picks the agent with the most free places among those that accept
   * new sessions and records the session there as `creating`, or says why it cannot.
   */
  async placeSession(view: SessionView, userId: string, maxPerUser: number): Promise<RpcResult<{ agentId: string }>> {
    return capture(() => {
      if (this.sessions.countForUser(userId) >= maxPerUser) {
        throw new AppError(ErrorCode.Conflict, `session limit reached: at most ${maxPerUser} sessions per user`, { limit: maxPerUser });
      }
      const agents = this.registry.list();
      const agentId = chooseAgent(placementCandidates(agents, this.limits), this.sessions.countByAgent());
      if (!agentId) throw new AppError(ErrorCode.NoCapacity, noPlaceReason(agents, this.limits));
      this.sessions.insert({ id: view.id, userId, agentId, status: 'creating', view: { ...view, agentId } }, Date.now());
      return { agentId };
    });
  }

  /** RPC: sends a request to an agent and waits for its answer. */
  async callAgent(agentId: string, method: string, params: unknown, timeoutMs = 30_000): Promise<RpcResult<unknown>> {
    return capture(async () => {
      const ws = this.ctx.getWebSockets(agentId).find((s) => s.readyState === WebSocket.READY_STATE_OPEN && attachmentOf(s)?.hello);
      const att = ws ? attachmentOf(ws) : undefined;
      if (!ws || !att) {
        // A revoked agent never comes back: deleting its sessions only makes the edge forget them.
        if (method === 'session.remove' && (await (await openAgentStore(this.env.DB)).standing(agentId)) === 'revoked') {
          log('warn', 'forgetting a session of a revoked agent', { agentId, params });
          return { removed: true };
        }
        throw new AppError(ErrorCode.AgentUnavailable, "the session's agent is not connected");
      }
      // A stopped session holds no place: starting it again needs one.
      if (method === 'session.start') this.ensurePlace(agentId);
      return socketLink(ws, this.pending, att.conn).request(method, params, timeoutMs);
    });
  }

  private ensurePlace(agentId: string): void {
    const agent = this.registry.get(agentId);
    const max = effectiveCapacity(agent?.capacity.maxSessions ?? 0, this.limits);
    if ((this.sessions.countByAgent().get(agentId) ?? 0) >= max) {
      throw new AppError(ErrorCode.NoCapacity, "the session's agent is full; stop another session first");
    }
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
  /** RPC: whether a session was placed and not removed; Worker routes ask before they touch its Session DO. */
  async sessionExists(sessionId: string): Promise<boolean> {
    return this.sessions.has(sessionId);
  }
  async listSessions(userId: string): Promise<SessionView[]> {
    return this.sessions.byUser(userId).map((s) => s.view);
  }
}

function attachmentOf(ws: WebSocket): Attachment | undefined {
  const parsed = Attachment.safeParse(ws.deserializeAttachment());
  return parsed.success ? parsed.data : undefined;
}

function send(ws: WebSocket, frame: EdgeToAgentFrame): void {
  sendJson(ws, frame);
}
