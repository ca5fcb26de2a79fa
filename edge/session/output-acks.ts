/**
 * Acknowledging process output to the agent (which then drops it from its
 * ring): what the journal holds, but never more than the journal can keep
 * ahead of the slowest active client, so a client that keeps up never sees a
 * gap. A client that stops acknowledging for CLIENT_STALL_MS stops holding
 * the process back (it gets a gap later).
 *
 * An acknowledged byte must outlive this DO's memory (the agent drops it),
 * unless every active client already has it. So bytes the clients have
 * acknowledged are acknowledged at once, without storage; bytes they have
 * not are written to storage first, once the agent has PERSIST_AT_BYTES
 * waiting or PERSIST_AFTER_MS have passed (`force`). A client keeping up
 * thus costs no storage writes, and one that is slow or absent costs the
 * writes of what it has not read (rows of up to 1 MiB: ./journal-store.ts).
 *
 * `planAcks` is that policy as a pure function; `OutputAcks` runs it on timers.
 */
import { STREAM_WINDOW_BYTES, type StreamName } from '../../shared/protocol/session-data';
import type { JournalStore } from './journal-store';
import { CLIENT_STALL_MS, JOURNAL_BYTES, OutputFanout } from './output-fanout';
import type { AgentLink } from './process-relay';

const ACK_EVERY_BYTES = 256 * 1024;
export const PERSIST_AT_BYTES = 3.5 * 1024 * 1024;
const PERSIST_AFTER_MS = 50;

/** One stream as the policy sees it. */
export interface AckInput {
  streamId: number;
  /** The journal's oldest and next offsets. */
  start: number;
  end: number;
  /** The lowest offset an active client acknowledged; undefined with no active client. */
  floor: number | undefined;
  /** What the agent was last acknowledged. */
  acked: number;
  /** Where this stream's stored bytes end. */
  storedEnd: number;
}

export interface AckPlan {
  /** Journal ranges to write to storage before the acks go out. */
  writes: Array<{ streamId: number; from: number; to: number }>;
  acks: Array<{ streamId: number; offset: number }>;
  /** Some stream is held back by a client (look again once it may count as stalled). */
  heldBack: boolean;
  /** Some stream waits for bytes to be stored (store them after PERSIST_AFTER_MS). */
  waiting: boolean;
}

export function planAcks(streams: AckInput[], force: boolean, journalBytes = JOURNAL_BYTES): AckPlan {
  const plan: AckPlan = { writes: [], acks: [], heldBack: false, waiting: false };
  for (const s of streams) {
    let target = s.floor === undefined ? s.end : Math.min(s.end, s.floor + journalBytes - STREAM_WINDOW_BYTES);
    if (target < s.end) plan.heldBack = true;
    if (target <= s.acked) continue;
    const safe = Math.max(s.storedEnd, s.floor ?? 0);
    if (target > safe) {
      if (force || target - s.acked >= PERSIST_AT_BYTES) {
        // From where storage ends, so stored bytes stay contiguous (../journal-store.ts).
        plan.writes.push({ streamId: s.streamId, from: Math.max(s.storedEnd, s.start), to: target });
      } else {
        plan.waiting = true;
        target = safe;
        if (target <= s.acked) continue;
      }
    }
    plan.acks.push({ streamId: s.streamId, offset: target });
  }
  return plan;
}

export interface OutputAcksDeps {
  agent(): Promise<AgentLink>;
  fanout: OutputFanout;
  stored: JournalStore;
  /** The process streams known now, by data-socket stream id. */
  streams(): Iterable<[number, { processId: string; stream: StreamName }]>;
}

export class OutputAcks {
  private readonly acked = new Map<number, number>();
  private ackTimer: ReturnType<typeof setTimeout> | undefined;
  private persistTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly deps: OutputAcksDeps) {}

  /** Acks restart from what the journals hold (the agent resends anything past them). */
  reset(): void {
    this.acked.clear();
  }

  /** New output or a client ack: acknowledge soon, at once when a stream has much unacknowledged. */
  schedule(): void {
    for (const [streamId, t] of this.deps.streams()) {
      const j = this.deps.fanout.journals.get(OutputFanout.key(t.processId, t.stream));
      if (j && j.end - (this.acked.get(streamId) ?? 0) >= ACK_EVERY_BYTES) return void this.send();
    }
    this.ackTimer ??= setTimeout(() => void this.send(), 10);
  }

  private async send(force = false): Promise<void> {
    if (this.ackTimer) clearTimeout(this.ackTimer);
    this.ackTimer = undefined;
    const agent = await this.deps.agent().catch(() => undefined);
    if (!agent) return;
    const now = Date.now();
    const inputs: AckInput[] = [];
    const byId = new Map<number, { processId: string; stream: StreamName }>();
    for (const [streamId, t] of this.deps.streams()) {
      const j = this.deps.fanout.journals.get(OutputFanout.key(t.processId, t.stream));
      if (!j) continue;
      byId.set(streamId, t);
      const floor = this.deps.fanout.slowestActive(t.processId, t.stream, now);
      inputs.push({ streamId, start: j.start, end: j.end, floor, acked: this.acked.get(streamId) ?? 0, storedEnd: this.deps.stored.storedEnd(t.processId, t.stream) });
    }
    const plan = planAcks(inputs, force);
    for (const w of plan.writes) {
      const t = byId.get(w.streamId)!;
      this.deps.stored.write(t.processId, t.stream, this.deps.fanout.journal(t.processId, t.stream), w.from, w.to);
    }
    for (const a of plan.acks) if (agent.sendEvent('ack', { streamId: a.streamId, offset: a.offset })) this.acked.set(a.streamId, a.offset);
    if (plan.waiting && !force) {
      this.persistTimer ??= setTimeout(() => {
        this.persistTimer = undefined;
        void this.send(true);
      }, PERSIST_AFTER_MS);
    }
    if (plan.heldBack) this.ackTimer = setTimeout(() => void this.send(), CLIENT_STALL_MS + 50);
  }
}
