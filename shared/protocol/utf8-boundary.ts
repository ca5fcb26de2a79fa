/**
 * Where to end an output chunk so that UTF-8 text is not split inside a
 * character. Clients that decode each chunk on its own then never see a
 * replacement character that the process did not write. Offsets stay raw
 * byte offsets: this only moves a chunk's end back by at most 3 bytes.
 *
 * A sequence is held back only while it is valid so far; invalid bytes (a
 * stray continuation byte, an overlong or out-of-range lead, a lead followed
 * by a non-continuation byte) flow at once, as does everything at the end
 * of a stream that has ended.
 */

export interface ByteSource {
  byteAt(offset: number): number;
}

/** Length of the sequence a lead byte starts (1 for ASCII), or 0 when it cannot start one. */
function sequenceLength(lead: number): number {
  if (lead < 0x80) return 1;
  if (lead < 0xc2) return 0; // continuation byte, or an overlong C0/C1 lead
  if (lead < 0xe0) return 2;
  if (lead < 0xf0) return 3;
  if (lead < 0xf5) return 4;
  return 0;
}

/** Whether `b` may follow `lead` as the second byte (excludes overlongs, surrogates, > U+10FFFF). */
function secondByteOk(lead: number, b: number): boolean {
  if (lead === 0xe0) return b >= 0xa0 && b <= 0xbf;
  if (lead === 0xed) return b >= 0x80 && b <= 0x9f;
  if (lead === 0xf0) return b >= 0x90 && b <= 0xbf;
  if (lead === 0xf4) return b >= 0x80 && b <= 0x8f;
  return (b & 0xc0) === 0x80;
}

/**
 * The end to use for a chunk [from, limit) of a stream whose bytes are known
 * up to `known` (limit ≤ known). `final` means no byte will follow `known`.
 * Returns a value in [from, limit]; `from` means "send nothing yet".
 */
export function utf8ChunkEnd(src: ByteSource, from: number, limit: number, known: number, final: boolean): number {
  if (limit <= from) return limit;
  // Find the lead byte of the sequence the last byte belongs to (at most 3 back).
  let lead = -1;
  for (let p = limit - 1; p >= from && p >= limit - 3; p--) {
    const b = src.byteAt(p);
    if ((b & 0xc0) !== 0x80) {
      lead = p;
      break;
    }
  }
  if (lead < 0) return limit; // continuation bytes without a lead in reach: not a character we can keep whole
  const b0 = src.byteAt(lead);
  const need = sequenceLength(b0);
  if (need <= limit - lead) return limit; // ASCII, complete, or an invalid lead
  // The sequence would be cut at `limit`: hold it back if it is valid as far as we can see.
  const seqEnd = lead + need;
  for (let p = lead + 1; p < seqEnd; p++) {
    if (p >= known) return final ? limit : lead;
    const b = src.byteAt(p);
    const ok = p === lead + 1 ? secondByteOk(b0, b) : (b & 0xc0) === 0x80;
    if (!ok) return limit;
  }
  return lead; // valid and complete past `limit`: end the chunk before it
}
