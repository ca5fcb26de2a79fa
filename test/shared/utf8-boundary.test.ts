import { describe, expect, it } from 'vitest';
import { utf8ChunkEnd } from '../../shared/protocol/utf8-boundary';

const src = (b: Uint8Array) => ({ byteAt: (o: number) => b[o] as number });
const enc = (s: string) => new TextEncoder().encode(s);

describe('utf8ChunkEnd', () => {
  const emoji = enc('ab😀'); // 61 62 f0 9f 98 80

  it('holds back an incomplete trailing character while more may come', () => {
    for (const known of [3, 4, 5]) expect(utf8ChunkEnd(src(emoji), 0, known, known, false)).toBe(2);
    expect(utf8ChunkEnd(src(emoji), 0, 6, 6, false)).toBe(6);
  });

  it('sends an incomplete trailing character once the stream has ended', () => {
    expect(utf8ChunkEnd(src(emoji), 0, 4, 4, true)).toBe(4);
  });

  it('moves a size-limited cut back to the start of the character it would split', () => {
    expect(utf8ChunkEnd(src(emoji), 0, 3, 6, false)).toBe(2);
    expect(utf8ChunkEnd(src(emoji), 0, 5, 6, true)).toBe(2);
  });

  it('answers "nothing yet" when the chunk is only the start of a character', () => {
    expect(utf8ChunkEnd(src(emoji), 2, 4, 4, false)).toBe(2);
  });

  it('lets invalid bytes through at once', () => {
    const cases: Array<[number[], number]> = [
      [[0x61, 0xff], 2], // never valid
      [[0x61, 0x80], 2], // stray continuation
      [[0x61, 0xc0], 2], // overlong lead
      [[0x61, 0xe0, 0x80], 3], // overlong 3-byte
      [[0x61, 0xed, 0xa0], 3], // surrogate
      [[0x61, 0xf4, 0x90], 3], // above U+10FFFF
      [[0x80, 0x80, 0x80, 0x80], 4],
    ];
    for (const [b, want] of cases) expect(utf8ChunkEnd(src(Uint8Array.from(b)), 0, b.length, b.length, false)).toBe(want);
    // A lead followed by a non-continuation byte beyond the limit is not held either.
    expect(utf8ChunkEnd(src(Uint8Array.from([0x61, 0xe2, 0x41])), 0, 2, 3, false)).toBe(2);
  });

  it('keeps every character of mixed text whole at every possible cut', () => {
    const text = enc('hé €𝄞 x😀ü');
    for (let limit = 1; limit <= text.length; limit++) {
      const end = utf8ChunkEnd(src(text), 0, limit, text.length, false);
      expect(limit - end).toBeLessThanOrEqual(3);
      expect(() => new TextDecoder('utf-8', { fatal: true }).decode(text.subarray(0, end))).not.toThrow();
    }
  });
});
