/**
 * Which journal bytes of a Session DO's process output are in its storage,
 * and writing more of them. Output is stored behind the flow (see
 * ProcessRelay.sendAcks): a stream's stored chunks end at `storedEnd`, rows
 * hold up to 1 MiB (DO SQLite rows are limited to 2 MB), and rows the journal
 * evicted are deleted in steps of TRIM_STEP_BYTES, not one DELETE per chunk.
 * Stored chunks may skip bytes every client already had: a journal restored
 * from storage keeps only the last contiguous run (StreamJournal.restore).
 */
import type { StreamName } from '../../shared/protocol/session-data';
import { joinBytes } from '../../shared/bytes';
import type { StreamJournal } from './journal';
import type { ProcessStorePort } from './process-store';

const ROW_BYTES = 1024 * 1024;
/** Stored rows are trimmed once the journal's start has moved this far (storage holds at most this much extra). */
const TRIM_STEP_BYTES = 2 * 1024 * 1024;

const key = (processId: string, stream: StreamName) => `${processId}:${stream}`;

export class JournalStore {
  /** Per stream: where its stored chunks end (bytes before it are stored, delivered, or gone). */
  private readonly ends = new Map<string, number>();
  /** Per stream: the journal start its stored rows were last trimmed to. */
  private readonly trimmedTo = new Map<string, number>();

  constructor(private readonly store: ProcessStorePort) {}

  storedEnd(processId: string, stream: StreamName): number {
    return this.ends.get(key(processId, stream)) ?? 0;
  }

  /** The bytes before `offset` are gone (a gap): so are their rows, and stored rows join up again from here. */
  restartAt(processId: string, stream: StreamName, offset: number): void {
    this.store.trimChunks(processId, stream, offset);
    this.trimmedTo.set(key(processId, stream), offset);
    this.ends.set(key(processId, stream), offset);
  }

  /** A journal loaded from storage: everything it holds is stored. */
  restored(processId: string, stream: StreamName, j: StreamJournal): void {
    this.ends.set(key(processId, stream), j.end);
    this.trimmedTo.set(key(processId, stream), j.start);
  }

  /** Writes the journal's bytes [from, to) to storage, then trims evicted rows when they have added up. */
  write(processId: string, stream: StreamName, j: StreamJournal, from: number, to: number): void {
    const k = key(processId, stream);
    let at = Math.max(from, j.start);
    while (at < to) {
      const parts: Uint8Array[] = [];
      let size = 0;
      for (let c = j.read(at); c && c.offset < to && size < ROW_BYTES; c = j.read(c.offset + c.bytes.byteLength)) {
        const room = Math.min(ROW_BYTES - size, to - c.offset);
        const piece = c.bytes.byteLength > room ? c.bytes.subarray(0, room) : c.bytes;
        parts.push(piece);
        size += piece.byteLength;
        if (piece !== c.bytes) break;
      }
      if (size === 0) break;
      this.store.appendChunk(processId, stream, { offset: at, bytes: parts.length === 1 ? parts[0]! : joinBytes(parts, size) });
      at += size;
    }
    this.ends.set(k, Math.max(this.ends.get(k) ?? 0, to));
    if (j.start - (this.trimmedTo.get(k) ?? 0) >= TRIM_STEP_BYTES) {
      this.store.trimChunks(processId, stream, j.start);
      this.trimmedTo.set(k, j.start);
    }
  }
}
