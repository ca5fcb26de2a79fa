/**
 * The recent bytes of one output stream, addressed by absolute stream offset.
 *
 * A circular buffer that holds [start, end). Bytes leave only when both are
 * true: the edge has acknowledged them (`release`) and at least `keepBytes`
 * newer bytes exist. So the ring always holds every unacknowledged byte (the
 * producer is paused before that grows past the window) plus the most recent
 * `keepBytes` for replay. The buffer grows by doubling, up to `capacityHint`
 * unless the content needs more, and never shrinks except through `compact`.
 */
const INITIAL_CAPACITY = 16 * 1024;

export class OutputRing {
  private buf: Uint8Array;
  private head = 0;
  private startOffset = 0;
  private endOffset = 0;
  private releasedOffset = 0;

  constructor(
    readonly keepBytes: number,
    private readonly capacityHint = 0,
  ) {
    if (!Number.isInteger(keepBytes) || keepBytes < 0) throw new RangeError('keepBytes must be a non-negative integer');
    this.buf = new Uint8Array(Math.min(INITIAL_CAPACITY, Math.max(1, keepBytes)));
  }

  /** Offset of the oldest byte held. */
  get start(): number {
    return this.startOffset;
  }
  /** Offset one past the newest byte: how much the stream has produced. */
  get end(): number {
    return this.endOffset;
  }
  get size(): number {
    return this.endOffset - this.startOffset;
  }
  get capacity(): number {
    return this.buf.byteLength;
  }

  /** Makes a fresh ring begin at `offset`: a stream resumed mid-way (after an agent restart). */
  startAt(offset: number): void {
    if (this.endOffset !== 0 || !Number.isSafeInteger(offset) || offset < 0) throw new RangeError('startAt needs a fresh ring and a valid offset');
    this.startOffset = this.endOffset = this.releasedOffset = offset;
  }

  append(bytes: Uint8Array): void {
    const n = bytes.byteLength;
    if (n === 0) return;
    this.evict(this.endOffset + n);
    const need = this.size + n;
    if (need > this.buf.byteLength) this.grow(need);
    const cap = this.buf.byteLength;
    const tail = (this.head + this.size) % cap;
    const first = Math.min(n, cap - tail);
    this.buf.set(bytes.subarray(0, first), tail);
    if (first < n) this.buf.set(bytes.subarray(first), 0);
    this.endOffset += n;
  }

  /** Every byte below `offset` is safe elsewhere and may be evicted once `keepBytes` newer ones exist. */
  release(offset: number): void {
    const clamped = Math.min(offset, this.endOffset);
    if (clamped <= this.releasedOffset) return;
    this.releasedOffset = clamped;
    this.evict(this.endOffset);
  }

  byteAt(offset: number): number {
    if (offset < this.startOffset || offset >= this.endOffset) throw new RangeError(`offset ${offset} is not held`);
    return this.buf[(this.head + offset - this.startOffset) % this.buf.byteLength] as number;
  }

  /**
   * Bytes [from, to). A view into the ring when they are contiguous (valid
   * until the next `append`), else a copy.
   */
  read(from: number, to: number): Uint8Array {
    if (from < this.startOffset || to > this.endOffset || from > to) {
      throw new RangeError(`range [${from}, ${to}) is outside [${this.startOffset}, ${this.endOffset})`);
    }
    const cap = this.buf.byteLength;
    const pos = (this.head + from - this.startOffset) % cap;
    const n = to - from;
    if (pos + n <= cap) return this.buf.subarray(pos, pos + n);
    const out = new Uint8Array(n);
    out.set(this.buf.subarray(pos, cap), 0);
    out.set(this.buf.subarray(0, n - (cap - pos)), cap - pos);
    return out;
  }

  /** Shrinks the buffer to its content, for a stream that will not grow again. */
  compact(): void {
    if (this.buf.byteLength === this.size) return;
    this.buf = this.copyOut(Math.max(1, this.size));
    this.head = 0;
  }

  private evict(futureEnd: number): void {
    const floor = Math.min(this.releasedOffset, futureEnd - this.keepBytes);
    if (floor <= this.startOffset) return;
    const drop = Math.min(floor, this.endOffset) - this.startOffset;
    this.head = (this.head + drop) % this.buf.byteLength;
    this.startOffset += drop;
  }

  private grow(need: number): void {
    let cap = Math.max(1, this.buf.byteLength) * 2;
    while (cap < need) cap *= 2;
    // Past the hint, grow by a quarter so a stream draining beyond it does not reallocate on every append.
    if (this.capacityHint > 0 && cap > this.capacityHint) cap = need <= this.capacityHint ? this.capacityHint : need + (need >> 2);
    this.buf = this.copyOut(cap);
    this.head = 0;
  }

  private copyOut(capacity: number): Uint8Array {
    const out = new Uint8Array(capacity);
    if (this.size > 0) out.set(this.read(this.startOffset, this.endOffset), 0);
    return out;
  }
}
