/**
 * The stored part of each output stream's journal, in the Session DO's
 * SQLite storage: the bytes the in-memory tail let go of (`spill`) and the
 * ranges the ack policy stores before acknowledging them (`write`,
 * ./output-acks.ts). Stored bytes are contiguous from the stream's first
 * stored offset to `storedEnd` (or from the last gap on); rows hold up to
 * 1 MiB (DO SQLite rows are limited to 2 MB). A stream keeps about
 * JOURNAL_BYTES in storage: older rows are deleted in steps of
 * TRIM_STEP_BYTES, not one DELETE per row.
 */
import type { StreamName } from '../../shared/protocol/session-data';
import { joinBytes } from '../../shared/bytes';
import type { Chunk, JournalBacking, StreamJournal } from './journal';
import type { ProcessStorePort } from './process-store';

const ROW_BYTES = 1024 * 1024;
/** Stored rows are trimmed once this much more than the journal's size is stored. */
const TRIM_STEP_BYTES = 2 * 1024 * 1024;

const key = (processId: string, stream: StreamName) => `${processId}:${stream}`;

export class JournalStore {
  /** Per stream: where its stored bytes end. */
  private readonly ends = new Map<string, number>();
  /** Per stream: the offset its rows were last trimmed to. */
  private readonly trimmedTo = new Map<string, number>();
  /** Per stream: the first stored offset (a cache of the store's; null for none). */
  private readonly firsts = new Map<string, number | null>();

  constructor(
    private readonly store: ProcessStorePort,
    /** How much of each stream storage keeps. */
    private readonly journalBytes: number,
  ) {}

  storedEnd(processId: string, stream: StreamName): number {
    return this.ends.get(key(processId, stream)) ?? 0;
  }

  /** The storage side of one stream's journal. */
  backing(processId: string, stream: StreamName): JournalBacking {
    return {
      spill: (chunks) => this.spill(processId, stream, chunks),
      read: (from) => this.store.readChunk(processId, stream, from) ?? null,
      start: () => this.first(processId, stream),
    };
  }

  private first(processId: string, stream: StreamName): number | undefined {
    const k = key(processId, stream);
    let f = this.firsts.get(k);
    if (f === undefined) this.firsts.set(k, (f = this.store.firstChunkOffset(processId, stream) ?? null));
    return f ?? undefined;
  }

  /** The bytes before `offset` are gone (a gap): so are their rows, and stored bytes start again here. */
  restartAt(processId: string, stream: StreamName, offset: number): void {
    const k = key(processId, stream);
    this.store.trimChunks(processId, stream, offset);
    this.trimmedTo.set(k, offset);
    this.ends.set(k, offset);
    this.firsts.delete(k);
  }

  /** A stream found in storage after a restart: everything up to `end` is stored. */
  restored(processId: string, stream: StreamName, end: number): void {
    this.ends.set(key(processId, stream), end);
  }

  /** Stores the journal's bytes [from, to) that are not stored yet. */
  write(processId: string, stream: StreamName, j: StreamJournal, from: number, to: number): void {
    const parts: Chunk[] = [];
    for (let c = j.read(Math.max(from, this.storedEnd(processId, stream))); c && c.offset < to; c = j.read(c.offset + c.bytes.byteLength)) {
      const room = to - c.offset;
      parts.push(c.bytes.byteLength > room ? { offset: c.offset, bytes: c.bytes.subarray(0, room) } : c);
    }
    this.spill(processId, stream, parts);
  }

  /** Writes chunks (in offset order) past what is stored, as rows of up to ROW_BYTES, then trims old rows when they have added up. */
  private spill(processId: string, stream: StreamName, chunks: Chunk[]): void {
    const k = key(processId, stream);
    let end = this.ends.get(k) ?? 0;
    let row: Uint8Array[] = [];
    let rowAt = end;
    let rowBytes = 0;
    const flush = () => {
      if (rowBytes === 0) return;
      // A row of one piece is bound as it is (SQLite copies it): a joined copy would be garbage at once.
      this.store.appendChunk(processId, stream, { offset: rowAt, bytes: row.length === 1 ? row[0]! : joinBytes(row, rowBytes) });
      if (this.firsts.get(k) === null) this.firsts.delete(k);
      row = [];
      rowBytes = 0;
    };
    for (const c of chunks) {
      const cEnd = c.offset + c.bytes.byteLength;
      if (cEnd <= end) continue;
      // A chunk that does not join up (bytes every client had, never stored): stored bytes restart at it.
      if (c.offset > end) {
        flush();
        rowAt = c.offset;
      }
      let piece = c.bytes.subarray(Math.max(0, end - c.offset));
      while (piece.byteLength > 0) {
        if (rowBytes === 0) rowAt = cEnd - piece.byteLength;
        const take = Math.min(piece.byteLength, ROW_BYTES - rowBytes);
        row.push(piece.subarray(0, take));
        rowBytes += take;
        piece = piece.subarray(take);
        if (rowBytes >= ROW_BYTES) flush();
      }
      end = cEnd;
    }
    flush();
    this.ends.set(k, end);
    const keepFrom = end - this.journalBytes;
    if (keepFrom - (this.trimmedTo.get(k) ?? 0) >= TRIM_STEP_BYTES) {
      this.store.trimChunks(processId, stream, keepFrom);
      this.trimmedTo.set(k, keepFrom);
      this.firsts.delete(k);
    }
  }
}
