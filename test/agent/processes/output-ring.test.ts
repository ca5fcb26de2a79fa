import { describe, expect, it } from 'vitest';
import { OutputRing } from '../../../agent/services/processes/output-ring';

const bytes = (from: number, n: number) => Uint8Array.from({ length: n }, (_, i) => (from + i) % 251);
const all = (ring: OutputRing) => Array.from(ring.read(ring.start, ring.end));

describe('OutputRing', () => {
  it('addresses bytes by absolute offset across wrap-around and growth', () => {
    const ring = new OutputRing(100);
    let off = 0;
    for (const n of [7, 50, 1, 300, 13, 64]) {
      ring.append(bytes(off, n));
      off += n;
      ring.release(off);
      expect(ring.end).toBe(off);
      expect(all(ring)).toEqual(Array.from(bytes(ring.start, ring.size)));
    }
    for (let o = ring.start; o < ring.end; o++) expect(ring.byteAt(o)).toBe(o % 251);
  });

  it('keeps at least keepBytes of the most recent bytes once they are released', () => {
    const ring = new OutputRing(1000);
    for (let off = 0; off < 10_000; off += 333) {
      ring.append(bytes(off, 333));
      ring.release(off + 333);
      expect(ring.size).toBeGreaterThanOrEqual(Math.min(1000, ring.end));
      expect(ring.size).toBeLessThan(1000 + 333);
    }
    expect(ring.end).toBe(10_323);
    expect(ring.start).toBe(ring.end - ring.size);
  });

  it('never evicts a byte that was not released, growing instead', () => {
    const ring = new OutputRing(10);
    for (let i = 0; i < 100; i++) ring.append(bytes(i * 100, 100));
    expect(ring.start).toBe(0);
    expect(ring.size).toBe(10_000);
    expect(all(ring)).toEqual(Array.from(bytes(0, 10_000)));
    ring.release(4_000);
    ring.append(bytes(10_000, 1));
    expect(ring.start).toBe(4_000);
    expect(ring.byteAt(4_000)).toBe(4_000 % 251);
  });

  it('reads any range still held and refuses ranges it no longer holds', () => {
    const ring = new OutputRing(8);
    ring.append(bytes(0, 20));
    ring.release(20);
    ring.append(bytes(20, 4));
    expect(ring.start).toBe(16);
    expect(Array.from(ring.read(17, 22))).toEqual(Array.from(bytes(17, 5)));
    expect(() => ring.read(15, 18)).toThrow(RangeError);
    expect(() => ring.read(20, 25)).toThrow(RangeError);
    expect(() => ring.byteAt(24)).toThrow(RangeError);
  });

  it('caps growth at the capacity hint unless the content needs more', () => {
    const ring = new OutputRing(0, 50_000);
    ring.append(bytes(0, 40_000));
    expect(ring.capacity).toBe(50_000);
    ring.append(bytes(40_000, 20_000));
    expect(ring.capacity).toBe(75_000);
    ring.append(bytes(60_000, 10_000));
    expect(ring.capacity).toBe(75_000);
    expect(all(ring)).toEqual(Array.from(bytes(0, 70_000)));
  });

  it('compact shrinks the buffer to its content and keeps the bytes', () => {
    const ring = new OutputRing(4);
    ring.append(bytes(0, 100_000));
    ring.release(100_000);
    ring.compact();
    expect(ring.capacity).toBe(4);
    expect(all(ring)).toEqual(Array.from(bytes(99_996, 4)));
    ring.append(bytes(100_000, 3));
    expect(all(ring)).toEqual(Array.from(bytes(99_999, 4)));
  });
});
