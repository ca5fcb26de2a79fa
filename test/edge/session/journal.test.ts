import { describe, expect, it } from 'vitest';
import { StreamJournal, type Chunk } from '../../../edge/session/journal';

const chunk = (offset: number, n: number, fill = offset & 0xff): Chunk => ({ offset, bytes: new Uint8Array(n).fill(fill) });
const readAll = (j: StreamJournal, from: number): { offset: number; length: number } => {
  let at = from;
  let first: number | undefined;
  for (let c = j.read(from); c; c = j.read(c.offset + c.bytes.byteLength)) {
    first ??= c.offset;
    at = c.offset + c.bytes.byteLength;
  }
  return { offset: first ?? from, length: at - (first ?? from) };
};

describe('StreamJournal.restore (stored chunks, trimmed lazily)', () => {
  it('keeps contiguous chunks within capacity as they are', () => {
    const j = StreamJournal.restore(100, 0, 60, [chunk(0, 30), chunk(30, 30)]);
    expect([j.start, j.end]).toEqual([0, 60]);
    expect(readAll(j, 0)).toEqual({ offset: 0, length: 60 });
  });

  it('drops the oldest chunks beyond capacity', () => {
    const j = StreamJournal.restore(60, 0, 90, [chunk(0, 30), chunk(30, 30), chunk(60, 30)]);
    expect([j.start, j.end]).toEqual([30, 90]);
    expect(readAll(j, 0)).toEqual({ offset: 30, length: 60 });
  });

  it('keeps only the run after a gap, so no bytes from before it are served as if they joined up', () => {
    // 0..30 stored, then a gap (30..100 never arrived), then 100..140.
    const j = StreamJournal.restore(1000, 0, 140, [chunk(0, 30), chunk(100, 20), chunk(120, 20)]);
    expect([j.start, j.end]).toEqual([100, 140]);
    expect(j.read(0)?.offset).toBe(100);
    expect(readAll(j, 100)).toEqual({ offset: 100, length: 40 });
  });
});
