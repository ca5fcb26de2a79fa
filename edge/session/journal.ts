/**
 * The journal of one output stream: its bytes by offset, the newest in a
 * small in-memory tail, the older ones in the DO's SQLite storage (a
 * `JournalBacking`, ./journal-store.ts). Appends are idempotent by offset, so
 * a resent range never doubles; a jump forward is recorded as a gap. When the
 * tail passes its capacity its oldest bytes are spilled to storage in one row
 * and let go, so a busy stream holds at most `capacity` bytes of memory.
 * Chunks in the tail are the agent's frames as they arrived (each a view of
 * its own message's buffer, 16 bytes larger); rows read back are fresh.
 * Without a backing (unit tests) evicted bytes are simply gone.
 */
export interface Chunk {
  offset: number;
  bytes: Uint8Array;
}

export interface JournalBacking {
  /** Stores the bytes the tail lets go of (those not stored already). */
  spill(chunks: Chunk[]): void;
  /** The stored chunk holding `from` (sliced to start there) or the first one after it; null when none. */
  read(from: number): Chunk | null;
  /** The oldest stored offset; undefined with nothing stored. */
  start(): number | undefined;
}

export class StreamJournal {
  private chunks: Chunk[] = [];
  private bytes = 0;
  /** Offset of the oldest byte in memory (== end when the tail is empty). */
  private memStart = 0;
  /** Offset just past the newest byte received. */
  end = 0;

  constructor(
    private readonly capacity: number,
    private readonly backing?: JournalBacking,
  ) {}

  /** Offset of the oldest byte held, in storage or memory (== end when empty). */
  get start(): number {
    const stored = this.backing?.start();
    return stored === undefined ? this.memStart : Math.min(stored, this.memStart);
  }

  /** Bytes held in memory. */
  get memoryBytes(): number {
    return this.bytes;
  }

  /**
   * Takes bytes at `offset`. Returns what was new (possibly a suffix), or null
   * when all of it was held already. Bytes past `end` mean some were never
   * received: the journal restarts at `offset` and reports the gap (the
   * caller drops the stored bytes before it). The journal keeps `data` itself,
   * not a copy: the caller hands it over.
   */
  append(offset: number, data: Uint8Array): { chunk: Chunk; gapFrom?: number } | null {
    let gapFrom: number | undefined;
    if (offset > this.end) {
      gapFrom = this.end;
      this.chunks = [];
      this.bytes = 0;
      this.memStart = offset;
      this.end = offset;
    }
    const skip = this.end - offset;
    if (skip >= data.byteLength) return null;
    const fresh = skip > 0 ? data.subarray(skip) : data;
    const chunk = { offset: this.end, bytes: fresh };
    this.chunks.push(chunk);
    this.bytes += chunk.bytes.byteLength;
    this.end += chunk.bytes.byteLength;
    if (this.bytes > this.capacity) this.evict(Math.floor((this.capacity * 3) / 4));
    return gapFrom === undefined ? { chunk } : { chunk, gapFrom };
  }

  /** Lets go of the oldest chunks until at most `keep` bytes stay in memory (the newest chunk always stays), spilling them first. */
  private evict(keep: number): void {
    const out: Chunk[] = [];
    while (this.bytes > keep && this.chunks.length > 1) {
      const old = this.chunks.shift()!;
      this.bytes -= old.bytes.byteLength;
      out.push(old);
    }
    this.memStart = this.chunks[0]?.offset ?? this.end;
    if (out.length > 0) this.backing?.spill(out);
  }

  /** Spills the whole tail (a finished process): later reads come from storage. */
  releaseMemory(): void {
    if (!this.backing || this.chunks.length === 0) return;
    const out = this.chunks;
    this.chunks = [];
    this.bytes = 0;
    this.memStart = this.end;
    this.backing.spill(out);
  }

  /** The chunk holding `from` (sliced to start there), or the oldest chunk after it when `from` was evicted; null at the end. */
  read(from: number): Chunk | null {
    if (from >= this.end) return null;
    if (from < this.memStart && this.backing) {
      const stored = this.backing.read(from);
      if (stored && stored.offset < this.end) return stored;
    }
    for (const c of this.chunks) {
      const cEnd = c.offset + c.bytes.byteLength;
      if (from < c.offset) return c;
      if (from < cEnd) return from === c.offset ? c : { offset: from, bytes: c.bytes.subarray(from - c.offset) };
    }
    return null;
  }

  /** A journal of bytes already stored, up to `end`, with an empty tail (after a restart). */
  static stored(capacity: number, end: number, backing: JournalBacking): StreamJournal {
    const j = new StreamJournal(capacity, backing);
    j.end = end;
    j.memStart = end;
    return j;
  }
}
