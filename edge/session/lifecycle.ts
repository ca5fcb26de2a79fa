/**
 * The one owner of a session's record. Every change goes through `commit`,
 * which persists the record, tells the clients when the status moved
 * (`container_status`), keeps the idle alarm in step and updates the Fleet's
 * index, so `GET /api/containers` never shows a stale copy. Lifecycle calls
 * (create, stop, start, destroy) go to the agent over the Fleet's control socket.
 */
import { AppError, ErrorCode } from '../../shared/errors';
import type { SessionStatus, SessionView } from '../../shared/api/containers';
import { ResourceFiguresResult, SessionInfoResult } from '../../shared/protocol/agent-methods';
import type { ServerFrame } from '../../shared/protocol/client';
import { log } from '../log';
import { unwrap, type RpcResult } from '../relay/rpc-result';
import { idleStep } from './idle';
import { moveTo, SessionRecordSchema, toView, type SessionRecord } from './record';

const CREATE_TIMEOUT_MS = 120_000;
const LIFECYCLE_TIMEOUT_MS = 60_000;
/** Activity is recorded at most once per this long (each record is a storage write and a Fleet update). */
export const ACTIVITY_GRANULARITY_MS = 1000;

export interface LifecycleStorage {
  get(key: 'record'): Promise<unknown>;
  put(key: 'record', value: SessionRecord): Promise<void>;
  setAlarm(at: number): Promise<void>;
  deleteAlarm(): Promise<void>;
}

/** The Fleet DO's methods the record needs (its index, and the agent's control socket). */
export interface LifecycleFleet {
  updateSession(view: SessionView): Promise<void>;
  removeSession(sessionId: string): Promise<void>;
  callAgent(agentId: string, method: string, params: unknown, timeoutMs?: number): Promise<RpcResult<unknown>>;
}

export interface LifecycleDeps {
  storage: LifecycleStorage;
  fleet(): LifecycleFleet;
  broadcast(frame: ServerFrame): void;
  idle(): { idleTimeoutMs: number; idleWarningMs: number };
  now?: () => number;
}

export class SessionLifecycle {
  private current: SessionRecord | undefined;
  /** The view the Fleet's index holds (JSON), once this object knows it; after a wake it does not. */
  private indexed: string | undefined;
  private readonly now: () => number;

  constructor(private readonly deps: LifecycleDeps) {
    this.now = deps.now ?? Date.now;
  }

  /** Loads the stored record (once, when the DO starts); a record that does not decode is treated as none. */
  async load(): Promise<void> {
    const raw = await this.deps.storage.get('record');
    if (raw === undefined) return;
    const parsed = SessionRecordSchema.safeParse(raw);
    if (parsed.success) this.current = parsed.data;
    else log('error', 'stored session record does not decode', { issues: parsed.error.issues.slice(0, 3).map((i) => i.message) });
  }

  get record(): SessionRecord | undefined {
    return this.current;
  }

  /** The record if `userId` owns it; 404 for no (or a destroyed) session, 403 for another user's. */
  owned(userId: string): SessionRecord {
    const r = this.current;
    if (!r || r.status === 'destroyed') throw new AppError(ErrorCode.NotFound, 'no such session');
    if (r.userId !== userId) throw new AppError(ErrorCode.Forbidden, 'this session belongs to another user');
    return r;
  }

  /** The only writer of the record: persist, tell clients of a status change, keep the alarm in step, update the Fleet's index. */
  async commit(next: SessionRecord, reason?: string): Promise<SessionRecord> {
    const before = this.current;
    this.current = next;
    await this.deps.storage.put('record', next);
    const statusChanged = before?.status !== next.status;
    if (statusChanged) {
      this.deps.broadcast({ type: 'container_status', payload: { status: next.status, session: toView(next), ...(reason ? { reason } : {}) } });
      await this.scheduleIdle();
    }
    if (next.status === 'destroyed') {
      if (before?.status !== 'destroyed') await this.deps.fleet().removeSession(next.id);
      this.indexed = undefined;
      return next;
    }
    const view = JSON.stringify(toView(next));
    // What the index holds, when known; else (a woken object) what this object last wrote.
    if (view !== (this.indexed ?? (before && JSON.stringify(toView(before))))) await this.deps.fleet().updateSession(toView(next));
    this.indexed = view;
    return next;
  }

  /** Marks activity (REST calls, client messages, preview requests, process output), at most once per ACTIVITY_GRANULARITY_MS. */
  async touch(): Promise<void> {
    const r = this.current;
    if (!r || r.status === 'destroyed') return;
    const now = this.now();
    if (now - r.lastActiveAt < ACTIVITY_GRANULARITY_MS) return;
    const { idleWarnedAt: _warned, ...rest } = r;
    await this.commit({ ...rest, lastActiveAt: now });
  }

  private async agentCall(method: string, params: unknown, timeoutMs = LIFECYCLE_TIMEOUT_MS): Promise<unknown> {
    const r = this.current;
    if (!r) throw new AppError(ErrorCode.NotFound, 'no such session');
    return unwrap(this.deps.fleet().callAgent(r.agentId, method, params, timeoutMs));
  }

  /** Provisions the container for a session the Fleet has just placed; on failure nothing of it remains. */
  async create(record: SessionRecord): Promise<SessionView> {
    if (this.current) throw new AppError(ErrorCode.Conflict, 'session exists already');
    // The Fleet indexed this very view when it placed the session: the first commit need not send it again
    // (one round trip to the Fleet's object fewer per create).
    const placed: SessionRecord = { ...record, status: 'creating' };
    this.indexed = JSON.stringify(toView(placed));
    await this.commit(placed);
    try {
      const info = SessionInfoResult.parse(
        await this.agentCall(
          'session.create',
          { sessionId: record.id, userId: record.userId, image: record.image, env: record.env, ports: record.ports, ...(record.network ? { network: record.network } : {}), limits: {} },
          CREATE_TIMEOUT_MS,
        ),
      );
      const next = moveTo({ ...this.current!, lastActiveAt: this.now() }, info.state === 'running' ? 'running' : 'stopped');
      if (info.limits) next.limits = { cpu: info.limits.cpu, memory: info.limits.memoryBytes };
      if (info.containerId) next.containerId = info.containerId;
      if (info.address) next.address = info.address;
      await this.commit(next);
      log('info', 'session created', { sessionId: record.id, agentId: record.agentId, image: record.image });
      return toView(next);
    } catch (err) {
      await this.deps.fleet().callAgent(record.agentId, 'session.remove', { sessionId: record.id }, LIFECYCLE_TIMEOUT_MS);
      await this.commit(moveTo(this.current!, 'destroyed'));
      throw err;
    }
  }

  /** The record plus live resource figures (null when the agent has none to give). */
  async view(userId: string): Promise<SessionView> {
    const r = this.owned(userId);
    await this.touch();
    let resources = null;
    if (r.status === 'running') {
      try {
        resources = ResourceFiguresResult.parse(await this.agentCall('session.stats', { sessionId: r.id }, 10_000));
      } catch (err) {
        log('warn', 'no resource figures', { sessionId: r.id, error: String(err) });
      }
    }
    return { ...toView(this.current!), resources };
  }

  async stop(userId: string, reason = 'requested'): Promise<SessionView> {
    const r = this.owned(userId);
    if (r.status === 'stopped') return toView(r);
    moveTo(r, 'stopped'); // refuses a move the state machine does not allow before asking the agent
    SessionInfoResult.parse(await this.agentCall('session.stop', { sessionId: r.id }));
    return toView(await this.commit(moveTo(this.current!, 'stopped'), reason));
  }

  async start(userId: string): Promise<SessionView> {
    const r = this.owned(userId);
    if (r.status === 'running') return toView(r);
    moveTo(r, 'running');
    const info = SessionInfoResult.parse(await this.agentCall('session.start', { sessionId: r.id }));
    const next = { ...moveTo(this.current!, 'running'), lastActiveAt: this.now(), ...(info.address ? { address: info.address } : {}) };
    return toView(await this.commit(next));
  }

  async destroy(userId: string): Promise<{ id: string; status: SessionStatus }> {
    const r = this.owned(userId);
    await this.agentCall('session.remove', { sessionId: r.id });
    await this.commit(moveTo(this.current!, 'destroyed'), 'deleted');
    log('info', 'session destroyed', { sessionId: r.id });
    return { id: r.id, status: 'destroyed' };
  }

  /**
   * The agent reported this state (Fleet reconciliation, or its container
   * ended: then `reason` is exited, oom or killed, and clients get it in
   * `container_status`); a move the state machine refuses is ignored.
   */
  async applyStatus(status: SessionStatus, note: string | null, reason?: string): Promise<SessionView | null> {
    const r = this.current;
    if (!r || r.status === 'destroyed' || r.status === status) return r ? toView(r) : null;
    try {
      return toView(await this.commit(moveTo(r, status, note ?? undefined), reason ?? note ?? 'reconciled'));
    } catch (err) {
      log('warn', 'ignored a status the state machine refuses', { sessionId: r.id, from: r.status, to: status, error: String(err) });
      return toView(r);
    }
  }

  /** The idle alarm fired: wait longer, warn the clients, or stop the session. */
  async alarm(): Promise<void> {
    const r = this.current;
    if (!r) return;
    const { idleTimeoutMs, idleWarningMs } = this.deps.idle();
    const now = this.now();
    const step = idleStep(r, now, idleTimeoutMs, idleWarningMs);
    switch (step.kind) {
      case 'none':
        return;
      case 'wait':
        return this.deps.storage.setAlarm(step.until);
      case 'warn':
        this.deps.broadcast({ type: 'idle_warning', payload: { stopAt: new Date(step.stopAt).toISOString(), inMs: step.stopAt - now } });
        await this.commit({ ...r, idleWarnedAt: now });
        return this.deps.storage.setAlarm(step.stopAt);
      case 'stop':
        log('info', 'stopping an idle session', { sessionId: r.id, idleMs: now - r.lastActiveAt });
        try {
          await this.stop(r.userId, 'idle');
        } catch (err) {
          log('warn', 'idle stop failed; will retry', { sessionId: r.id, error: String(err) });
          await this.deps.storage.setAlarm(now + 30_000);
        }
        return;
    }
  }

  private async scheduleIdle(): Promise<void> {
    const r = this.current;
    if (!r || r.status !== 'running') return this.deps.storage.deleteAlarm();
    const { idleTimeoutMs, idleWarningMs } = this.deps.idle();
    const step = idleStep(r, this.now(), idleTimeoutMs, idleWarningMs);
    await this.deps.storage.setAlarm(step.kind === 'wait' ? step.until : this.now());
  }
}
