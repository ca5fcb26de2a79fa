/**
 * A bounded journal of one output stream: the most recent bytes, kept as the
 * chunks the agent sent (which end on UTF-8 boundaries), each at its byte
 * offset. Appends are idempotent by offset, so a resent range never doubles;
 * a jump forward is recorded as a gap. When full, the oldest chunks go.
 */
export interface Chunk {
  offset: number;
  bytes: Uint8Array;
}

export class StreamJournal {
  private chunks: Chunk[] = [];
  private bytes = 0;
  /** Offset of the oldest byte held (== end when empty). */
  start = 0;
  /** Offset just past the newest byte received. */
  end = 0;

  constructor(private readonly capacity: number) {}

  /**
   * Takes bytes at `offset`. Returns what was new (possibly a suffix), or null
   * when all of it was held already. Bytes past `end` mean some were never
   * received: the journal restarts at `offset` and reports the gap. The
   * journal keeps `data` itself, not a copy: the caller hands it over (the
   * Session DO passes views of each message's own buffer).
   */
  append(offset: number, data: Uint8Array): { chunk: Chunk; gapFrom?: number } | null {
    let gapFrom: number | undefined;
    if (offset > this.end) {
      gapFrom = this.end;
      this.chunks = [];
      this.bytes = 0;
      this.start = offset;
      this.end = offset;
    }
    const skip = this.end - offset;
    if (skip >= data.byteLength) return null;
    const fresh = skip > 0 ? data.subarray(skip) : data;
    const chunk = { offset: this.end, bytes: fresh };
    this.chunks.push(chunk);
    this.bytes += chunk.bytes.byteLength;
    this.end += chunk.bytes.byteLength;
    while (this.bytes > this.capacity && this.chunks.length > 1) {
      const old = this.chunks.shift()!;
      this.bytes -= old.bytes.byteLength;
      this.start = this.chunks[0]!.offset;
    }
    return gapFrom === undefined ? { chunk } : { chunk, gapFrom };
  }

  /** The chunk holding `from` (sliced to start there), or the oldest chunk when `from` was evicted; null at the end. */
  read(from: number): Chunk | null {
    if (from >= this.end) return null;
    for (const c of this.chunks) {
      const cEnd = c.offset + c.bytes.byteLength;
      if (from < c.offset) return c;
      if (from < cEnd) return from === c.offset ? c : { offset: from, bytes: c.bytes.subarray(from - c.offset) };
    }
    return null;
  }

  /** Everything held, for persistence. */
  snapshot(): { start: number; end: number; chunks: Chunk[] } {
    return { start: this.start, end: this.end, chunks: this.chunks };
  }

  /**
   * A journal from stored chunks (in offset order). Storage is trimmed lazily,
   * so it may hold more than `capacity` and, before a gap, bytes that do not
   * join up: only the last contiguous run is kept, then the newest `capacity` bytes.
   */
  static restore(capacity: number, start: number, end: number, chunks: Chunk[]): StreamJournal {
    let first = chunks.length - 1;
    while (first > 0 && chunks[first - 1]!.offset + chunks[first - 1]!.bytes.byteLength === chunks[first]!.offset) first--;
    const kept = first > 0 ? chunks.slice(first) : chunks;
    const j = new StreamJournal(capacity);
    j.start = kept.length > 0 && first > 0 ? kept[0]!.offset : start;
    j.end = end;
    j.chunks = kept;
    j.bytes = kept.reduce((n, c) => n + c.bytes.byteLength, 0);
    while (j.bytes > j.capacity && j.chunks.length > 1) {
      const old = j.chunks.shift()!;
      j.bytes -= old.bytes.byteLength;
      j.start = j.chunks[0]!.offset;
    }
    return j;
  }
}
