/**
 * Output from the agent to the clients of one session. Every stream lands in
 * a bounded journal (./journal.ts); each client subscribed to a stream has a
 * read position and a window: the DO never sends more than
 * CLIENT_WINDOW_BYTES past the client's last `ack {processId, stream,
 * offset}`, so a client that stops reading costs a bounded amount of memory.
 * When a window fills the client gets `flow_paused {processId, stream,
 * offset}` once; its next ack resumes the flow. A client that falls behind
 * the journal gets `gap {processId, stream, fromOffset, toOffset}` and then
 * the oldest bytes still held. `command_exit` reaches each client only after
 * all of that process's output has.
 *
 * Output goes as `command_output` JSON text frames (UTF-8 decoded), or, for a
 * client that connected with `output=binary`, as binary frames (the
 * 16-byte-header codec of ../../shared/protocol/binary.ts: kind Output, the
 * stream's id, the offset, the raw bytes), each stream announced once by an
 * `output_stream {processId, stream, streamId}` frame before its first bytes.
 */
import type { ServerFrame } from '../../shared/protocol/client';
import type { ProcExitEvent, StreamName } from '../../shared/protocol/session-data';
import { encodeBinaryFrameFromParts, FrameKind, MAX_BINARY_PAYLOAD } from '../../shared/protocol/binary';
import { utf8ChunkEnd } from '../../shared/protocol/utf8-boundary';
import { StreamJournal, type Chunk, type JournalBacking } from './journal';
import type { ClientStore } from './client-store';

/** Per stream, in storage; larger than the agent's window, so a client keeping up is never overtaken (./output-acks.ts). */
export const JOURNAL_BYTES = 8 * 1024 * 1024;
/** Per stream, in memory: the newest bytes; older ones are read back from storage (./journal.ts). */
export const TAIL_BYTES = 512 * 1024;
/** A client that has not acknowledged for this long no longer holds back its process's output. */
export const CLIENT_STALL_MS = 10_000;
export const CLIENT_WINDOW_BYTES = 4 * 1024 * 1024;
const MAX_TEXT_CHUNK = 256 * 1024;
/** Binary frames need no UTF-8 boundaries and no decoding: larger ones cost less per byte. */
const MAX_BINARY_CHUNK = MAX_BINARY_PAYLOAD;

interface Cursor {
  next: number;
  acked: number;
  pausedNotified: boolean;
  /** When this client last acknowledged (or subscribed). */
  lastAckAt: number;
  /** Binary clients: whether `output_stream` went out for this stream since the subscription. */
  announced: boolean;
}

interface ClientState {
  sid: string;
  cursors: Map<string, Cursor>;
  exitsSent: Set<string>;
  binary: boolean;
}

export interface FanoutDeps {
  send(ws: WebSocket, frame: ServerFrame): void;
  sendBinary(ws: WebSocket, bytes: Uint8Array): void;
  /** The client sockets open now (after a wake too: the runtime keeps them). */
  clients(): WebSocket[];
  /** A client socket's id and whether it asked for binary output (from its attachment); undefined for other sockets. */
  socketInfo(ws: WebSocket): { sid: string; binary: boolean } | undefined;
  /** Where each socket's follows and acked offsets are kept, so a wake rebuilds them. */
  store: ClientStore;
  /** The storage behind a stream's journal (undefined: memory only). */
  backing(processId: string, stream: StreamName): JournalBacking | undefined;
  /** The data-socket stream id of a process's stream (what binary frames carry). */
  streamIdOf(processId: string, stream: StreamName): number;
  /** The agent's bytes resumed at `offset`, past the journal's end: everything before it is gone. */
  onGap(processId: string, stream: StreamName, offset: number): void;
  exitOf(processId: string): ProcExitEvent | undefined;
  streamsOf(processId: string): StreamName[];
}

const decoder = new TextDecoder('utf-8');

/** Text of consecutive pieces that end on a UTF-8 boundary (a sequence may straddle two pieces). */
function decodeParts(parts: readonly Uint8Array[]): string {
  if (parts.length === 1) return decoder.decode(parts[0]);
  let text = '';
  for (let i = 0; i < parts.length; i++) text += decoder.decode(parts[i], { stream: i < parts.length - 1 });
  return text;
}

export class OutputFanout {
  readonly journals = new Map<string, StreamJournal>();
  private readonly clients = new Map<WebSocket, ClientState>();

  constructor(private readonly deps: FanoutDeps) {}

  static key(processId: string, stream: StreamName): string {
    return `${processId}:${stream}`;
  }

  journal(processId: string, stream: StreamName): StreamJournal {
    const key = OutputFanout.key(processId, stream);
    let j = this.journals.get(key);
    if (!j) {
      j = new StreamJournal(TAIL_BYTES, this.deps.backing(processId, stream));
      this.journals.set(key, j);
    }
    return j;
  }

  /**
   * A client's cursors: cached in memory, rebuilt from the store when missing
   * (the DO woke with the socket still open). A rebuilt cursor resumes at the
   * last acknowledged offset, so bytes sent but not acknowledged before the
   * wake come again, at the same offsets.
   */
  private state(ws: WebSocket): ClientState | undefined {
    const cached = this.clients.get(ws);
    if (cached) return cached;
    const info = this.deps.socketInfo(ws);
    if (!info) return undefined;
    const s: ClientState = { sid: info.sid, cursors: new Map(), exitsSent: new Set(), binary: info.binary };
    const now = Date.now();
    for (const f of this.deps.store.follows(info.sid)) {
      s.cursors.set(OutputFanout.key(f.processId, f.stream), { next: f.acked, acked: f.acked, pausedNotified: false, lastAckAt: now, announced: false });
    }
    this.clients.set(ws, s);
    return s;
  }

  /** A client left (its stored state is dropped by the DO, for every relay at once). */
  forget(ws: WebSocket): void {
    this.clients.delete(ws);
  }

  /** Subscribes every connected client to a new process, from offset 0. */
  subscribeAll(sockets: WebSocket[], processId: string): void {
    for (const ws of sockets) this.subscribe(ws, processId, {});
  }

  /** Subscribes one client from the given offsets (missing streams from 0) and sends what it missed. */
  subscribe(ws: WebSocket, processId: string, from: Partial<Record<StreamName, number>>): void {
    const s = this.state(ws);
    if (!s) return;
    s.exitsSent.delete(processId);
    for (const stream of this.deps.streamsOf(processId)) {
      const next = from[stream] ?? 0;
      s.cursors.set(OutputFanout.key(processId, stream), { next, acked: next, pausedNotified: false, lastAckAt: Date.now(), announced: false });
      this.deps.store.setFollow(s.sid, { processId, stream, acked: next });
    }
    this.pump(ws, processId);
  }

  /** New bytes from the agent. */
  ingest(processId: string, stream: StreamName, offset: number, data: Uint8Array): void {
    const journal = this.journal(processId, stream);
    const appended = journal.append(offset, data);
    if (!appended) return;
    if (appended.gapFrom !== undefined) this.deps.onGap(processId, stream, appended.chunk.offset);
    for (const ws of this.deps.clients()) this.pump(ws, processId);
  }

  ack(ws: WebSocket, processId: string, stream: StreamName, offset: number): void {
    const s = this.state(ws);
    const c = s?.cursors.get(OutputFanout.key(processId, stream));
    if (!s || !c) return;
    const acked = Math.max(c.acked, Math.min(offset, c.next));
    if (acked !== c.acked) this.deps.store.setFollow(s.sid, { processId, stream, acked });
    c.acked = acked;
    c.pausedNotified = false;
    c.lastAckAt = Date.now();
    this.pump(ws, processId);
  }

  /**
   * The lowest offset an active client of this stream has acknowledged, or
   * undefined when none is active (no client, or all stalled past CLIENT_STALL_MS).
   */
  slowestActive(processId: string, stream: StreamName, now: number): number | undefined {
    const key = OutputFanout.key(processId, stream);
    let floor: number | undefined;
    for (const ws of this.deps.clients()) {
      const c = this.state(ws)?.cursors.get(key);
      if (!c || now - c.lastAckAt > CLIENT_STALL_MS) continue;
      floor = floor === undefined ? c.acked : Math.min(floor, c.acked);
    }
    return floor;
  }

  /** Sends a client whatever it may have of a process now, then the exit if it has everything. */
  pump(ws: WebSocket, processId: string): void {
    const s = this.state(ws);
    if (!s) return;
    let subscribed = false;
    let caughtUp = true;
    for (const stream of this.deps.streamsOf(processId)) {
      const c = s.cursors.get(OutputFanout.key(processId, stream));
      if (!c) continue;
      subscribed = true;
      const j = this.journals.get(OutputFanout.key(processId, stream));
      if (j) this.sendStream(ws, s.binary, c, j, processId, stream);
      const end = this.deps.exitOf(processId)?.endOffsets[stream] ?? j?.end ?? 0;
      if (c.next < end) caughtUp = false;
    }
    const exit = this.deps.exitOf(processId);
    if (subscribed && exit && caughtUp && !s.exitsSent.has(processId)) {
      s.exitsSent.add(processId);
      // Everything of this process has reached the client: a wake need not rebuild it.
      this.deps.store.dropFollows(s.sid, processId);
      this.deps.send(ws, {
        type: 'command_exit',
        payload: { processId, exitCode: exit.exitCode, ...(exit.signal ? { signal: exit.signal } : {}), reason: exit.reason },
      });
    }
  }

  private sendStream(ws: WebSocket, binary: boolean, c: Cursor, j: StreamJournal, processId: string, stream: StreamName): void {
    const maxChunk = binary ? MAX_BINARY_CHUNK : MAX_TEXT_CHUNK;
    for (;;) {
      if (c.next - c.acked >= CLIENT_WINDOW_BYTES) {
        if (!c.pausedNotified && j.end > c.next) {
          c.pausedNotified = true;
          this.deps.send(ws, { type: 'flow_paused', payload: { processId, stream, offset: c.next } });
        }
        return;
      }
      if (c.next < j.start) {
        // Evicted before this client got them: say so once, and count the skipped bytes as settled.
        this.deps.send(ws, { type: 'gap', payload: { processId, stream, fromOffset: c.next, toOffset: j.start } });
        c.acked = Math.max(c.acked, j.start);
        c.next = j.start;
      }
      const first = j.read(c.next);
      if (!first) return;
      if (first.offset > c.next) {
        // Bytes missing from storage (every active client had them when they were left out): a gap for this one.
        this.deps.send(ws, { type: 'gap', payload: { processId, stream, fromOffset: c.next, toOffset: first.offset } });
        c.acked = Math.max(c.acked, first.offset);
        c.next = first.offset;
      }
      // Consecutive chunks go out as one frame, up to maxChunk and never past the window;
      // text frames end on a UTF-8 boundary.
      const limit = Math.min(maxChunk, CLIENT_WINDOW_BYTES - (first.offset - c.acked));
      const parts: Uint8Array[] = [];
      let size = 0;
      for (let chunk: Chunk | null = first; chunk && size < limit; chunk = j.read(chunk.offset + chunk.bytes.byteLength)) {
        const room = limit - size;
        const cut = binary ? Math.min(room, chunk.bytes.byteLength) : textCut(chunk.bytes, room);
        const piece = chunk.bytes.byteLength > cut ? chunk.bytes.subarray(0, cut) : chunk.bytes;
        if (piece.byteLength === 0) break;
        parts.push(piece);
        size += piece.byteLength;
        if (piece !== chunk.bytes) break;
      }
      if (size === 0) return;
      // The pieces go into the frame as they are (no joined copy first): every copy of output is
      // an ArrayBuffer that lives until the isolate's next full GC.
      if (binary) {
        const streamId = this.deps.streamIdOf(processId, stream);
        if (!c.announced) {
          c.announced = true;
          this.deps.send(ws, { type: 'output_stream', payload: { processId, stream, streamId } });
        }
        this.deps.sendBinary(ws, encodeBinaryFrameFromParts({ kind: FrameKind.Output, flags: 0, streamId, offset: first.offset }, parts));
      } else {
        this.deps.send(ws, {
          type: 'command_output',
          payload: { processId, stream, data: decodeParts(parts), offset: first.offset, length: size },
        });
      }
      c.next = first.offset + size;
    }
  }
}

/** Where to cut a chunk for a text frame: at most `max` bytes, never inside a UTF-8 sequence (../../shared/protocol/utf8-boundary.ts). */
function textCut(bytes: Uint8Array, max: number): number {
  if (max >= bytes.byteLength) return bytes.byteLength;
  return utf8ChunkEnd({ byteAt: (i) => bytes[i]! }, 0, max, bytes.byteLength, true);
}
