/**
 * In-memory stand-ins for a Session DO's storage and sockets, for unit tests
 * of the edge relays without workerd: the process store (history, stream
 * bases, journal chunks), the per-socket client store, fake hibernatable
 * sockets with attachments, and an agent link that records what it was sent
 * (the edge's counterpart of the agent's DoPeer).
 */
import type { ClientStore, Follow, Watch } from '../../edge/session/client-store';
import type { Chunk } from '../../edge/session/journal';
import type { AgentLink } from '../../edge/session/process-relay';
import type { ProcessRow, ProcessStorePort } from '../../edge/session/process-store';
import type { StreamName } from '../../shared/protocol/session-data';
import { decodeBinaryFrame, type BinaryFrame } from '../../shared/protocol/binary';

export class MemoryProcessStore implements ProcessStorePort {
  readonly rows = new Map<string, ProcessRow>();
  readonly chunks = new Map<string, Chunk[]>();
  private nextBase = 0;

  nextStreamBase(width: number): number {
    const base = this.nextBase;
    this.nextBase += width;
    return base;
  }
  insert(p: ProcessRow): void {
    this.rows.set(p.id, { ...p });
  }
  finish(id: string, exit: { exitCode: number | null; signal?: string; reason: string; endOffsets: Record<StreamName, number> }, at: number): void {
    const r = this.rows.get(id);
    if (!r || r.endedAt !== null) return;
    Object.assign(r, { endedAt: at, exitCode: exit.exitCode, signal: exit.signal ?? null, reason: exit.reason, endOffsets: exit.endOffsets });
  }
  setStdinOffset(id: string, offset: number): void {
    const r = this.rows.get(id);
    if (r) r.stdinOffset = offset;
  }
  get(id: string): ProcessRow | undefined {
    const r = this.rows.get(id);
    return r && { ...r };
  }
  running(): ProcessRow[] {
    return [...this.rows.values()].filter((r) => r.endedAt === null).map((r) => ({ ...r }));
  }
  history(limit: number): ProcessRow[] {
    return [...this.rows.values()].sort((a, b) => b.startedAt - a.startedAt).slice(0, limit).map((r) => ({ ...r }));
  }
  appendChunk(processId: string, stream: StreamName, chunk: Chunk): void {
    const key = `${processId}:${stream}`;
    const list = (this.chunks.get(key) ?? []).filter((c) => c.offset !== chunk.offset);
    list.push({ offset: chunk.offset, bytes: chunk.bytes.slice() });
    list.sort((a, b) => a.offset - b.offset);
    this.chunks.set(key, list);
  }
  trimChunks(processId: string, stream: StreamName, start: number): void {
    const key = `${processId}:${stream}`;
    this.chunks.set(key, (this.chunks.get(key) ?? []).filter((c) => c.offset >= start));
  }
  readChunk(processId: string, stream: StreamName, from: number): Chunk | undefined {
    for (const c of this.chunks.get(`${processId}:${stream}`) ?? []) {
      const end = c.offset + c.bytes.byteLength;
      if (from < c.offset) return { offset: c.offset, bytes: c.bytes.slice() };
      if (from < end) return { offset: from, bytes: c.bytes.slice(from - c.offset) };
    }
    return undefined;
  }
  firstChunkOffset(processId: string, stream: StreamName): number | undefined {
    return this.chunks.get(`${processId}:${stream}`)?.[0]?.offset;
  }
  storedStreams(): Array<{ processId: string; stream: StreamName; end: number }> {
    const out: Array<{ processId: string; stream: StreamName; end: number }> = [];
    for (const [key, list] of this.chunks) {
      const last = list.at(-1);
      const [processId, stream] = key.split(':');
      if (last && processId && (stream === 'stdout' || stream === 'stderr' || stream === 'pty')) out.push({ processId, stream, end: last.offset + last.bytes.byteLength });
    }
    return out;
  }
}

export class MemoryClientStore implements ClientStore {
  readonly followsBySid = new Map<string, Map<string, Follow>>();
  readonly watchesBySid = new Map<string, Watch[]>();

  follows(sid: string): Follow[] {
    return [...(this.followsBySid.get(sid)?.values() ?? [])].map((f) => ({ ...f }));
  }
  setFollow(sid: string, f: Follow): void {
    let m = this.followsBySid.get(sid);
    if (!m) this.followsBySid.set(sid, (m = new Map()));
    m.set(`${f.processId}:${f.stream}`, { ...f });
  }
  dropFollows(sid: string, processId: string): void {
    const m = this.followsBySid.get(sid);
    for (const k of [...(m?.keys() ?? [])]) if (k.startsWith(`${processId}:`)) m!.delete(k);
  }
  watches(sid: string): Watch[] {
    return (this.watchesBySid.get(sid) ?? []).map((w) => ({ ...w }));
  }
  addWatch(sid: string, w: Watch): void {
    const list = this.watchesBySid.get(sid) ?? [];
    if (!list.some((x) => x.path === w.path && x.recursive === w.recursive)) list.push({ ...w });
    this.watchesBySid.set(sid, list);
  }
  forget(sid: string): void {
    this.followsBySid.delete(sid);
    this.watchesBySid.delete(sid);
  }
  keepOnly(live: Set<string>): void {
    for (const sid of [...this.followsBySid.keys(), ...this.watchesBySid.keys()]) if (!live.has(sid)) this.forget(sid);
  }
}

/** A hibernatable socket as the DO sees it: an attachment that outlives the DO's memory, and what was sent on it. */
export class FakeSocket {
  readonly sent: Array<string | Uint8Array> = [];
  private attachment: unknown;
  readyState = 1;

  constructor(attachment?: unknown) {
    this.attachment = structuredClone(attachment);
  }
  send(data: string | ArrayBuffer | Uint8Array): void {
    this.sent.push(typeof data === 'string' ? data : new Uint8Array(data instanceof Uint8Array ? data : new Uint8Array(data)).slice());
  }
  serializeAttachment(value: unknown): void {
    this.attachment = structuredClone(value);
  }
  deserializeAttachment(): unknown {
    return structuredClone(this.attachment);
  }
  close(): void {
    this.readyState = 3;
  }
  /** The JSON frames sent, parsed. */
  frames(): Array<{ type: string; id?: string | number; payload: Record<string, unknown> }> {
    return this.sent.filter((d): d is string => typeof d === 'string').map((d) => JSON.parse(d));
  }
  /** As the Worker types call it (the relays take WebSocket). */
  get ws(): WebSocket {
    return this as unknown as WebSocket;
  }
}

/** An agent link that answers requests from a table and records every request, event and binary frame. */
export class MemoryAgentLink implements AgentLink {
  readonly requests: Array<{ method: string; params: unknown }> = [];
  readonly events: Array<{ event: string; data: unknown }> = [];
  readonly frames: BinaryFrame[] = [];

  constructor(private readonly answers: Record<string, (params: unknown) => unknown> = {}) {}

  async request(method: string, params: unknown): Promise<unknown> {
    this.requests.push({ method, params });
    const answer = this.answers[method];
    return answer ? answer(params) : {};
  }
  sendBinary(bytes: Uint8Array): boolean {
    this.frames.push(decodeBinaryFrame(bytes.slice()));
    return true;
  }
  sendEvent(event: string, data: unknown): boolean {
    this.events.push({ event, data });
    return true;
  }
}
