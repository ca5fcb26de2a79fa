/**
 * What the Fleet does with the agent's news about containers: a
 * `session.state` event (a container ended without being asked; see
 * shared/protocol/container-state.ts) moves the session at once, and the
 * container states in each heartbeat correct a record that drifted (./drift.ts).
 * Changes go through the Fleet's applyStatus, serialised per agent like hello's.
 * When an agent is cut off, its sessions' data sockets drop with it.
 */
import type { SessionStatus } from '../../shared/api/containers';
import { CONTAINER_STATE_EVENT, ContainerStateEvent } from '../../shared/protocol/container-state';
import { log } from '../log';
import type { SerialByKey } from './availability';
import { disagreements, DriftTracker, type ReportedContainer } from './drift';
import type { IndexedSession } from './sessions';

export interface ContainerWatchDeps {
  byAgent(agentId: string): IndexedSession[];
  serial: SerialByKey;
  applyStatus(agentId: string, sessionId: string, status: SessionStatus, note: string | null, reason?: string): Promise<void>;
  waitUntil(p: Promise<unknown>): void;
  /** The Session DO of a session (its `dropAgent` closes the agent's data socket there). */
  session(sessionId: string): { dropAgent(agentId: string): Promise<void> };
}

export class ContainerWatch {
  private readonly drift = new DriftTracker();

  constructor(private readonly deps: ContainerWatchDeps) {}

  /** An agent's `event` frame; true when it was `session.state` (acted on only for a session placed on that agent). */
  async onEvent(agentId: string, event: string, data: unknown): Promise<boolean> {
    if (event !== CONTAINER_STATE_EVENT) return false;
    await this.onContainerState(agentId, data);
    return true;
  }

  private async onContainerState(agentId: string, data: unknown): Promise<void> {
    const parsed = ContainerStateEvent.safeParse(data);
    if (!parsed.success) return log('warn', 'bad session.state event from agent', { agentId, issues: parsed.error.issues.slice(0, 3).map((i) => i.message) });
    const e = parsed.data;
    if (!this.deps.byAgent(agentId).some((s) => s.id === e.sessionId)) return log('warn', 'session.state for a session not placed on this agent', { agentId, sessionId: e.sessionId });
    const what = e.reason === 'oom' ? 'ran out of memory' : e.reason === 'killed' ? 'was killed' : 'exited';
    const note = `the container ${what}${e.exitCode !== null ? ` (exit code ${e.exitCode})` : ''}${e.state === 'missing' ? ' and was removed' : ''}`;
    await this.deps.serial.run(agentId, () => this.deps.applyStatus(agentId, e.sessionId, e.state === 'missing' ? 'error' : 'stopped', note, e.reason));
  }

  /** A heartbeat's container states: a disagreement with the index seen twice in a row is corrected. */
  onHeartbeat(agentId: string, containers: ReportedContainer[]): void {
    const updates = this.drift.observe(agentId, disagreements(this.deps.byAgent(agentId), containers));
    if (updates.length === 0) return;
    this.deps.waitUntil(
      this.deps.serial.run(agentId, async () => {
        for (const u of updates) {
          log('warn', 'session record drifted from its container; corrected', { agentId, sessionId: u.sessionId, status: u.status });
          await this.deps.applyStatus(agentId, u.sessionId, u.status, u.note);
        }
      }),
    );
  }

  /** A revoked agent: the data socket of each of its sessions closes now, not when the agent's connection drops. */
  dropDataSockets(agentId: string): void {
    for (const { id } of this.deps.byAgent(agentId)) {
      const drop = this.deps.session(id).dropAgent(agentId);
      this.deps.waitUntil(drop.catch((err: unknown) => log('warn', 'could not drop a revoked agent data socket', { agentId, sessionId: id, error: String(err) })));
    }
  }
}
