import { describe, expect, it } from 'vitest';
import { Backoff } from '../../shared/backoff';

describe('Backoff', () => {
  it('grows exponentially within [ceiling/2, ceiling] and stops at the cap', () => {
    const lo = new Backoff({ baseMs: 100, capMs: 1000, random: () => 0 });
    expect([1, 2, 3, 4, 5, 6].map(() => lo.next())).toEqual([50, 100, 200, 400, 500, 500]);
    const hi = new Backoff({ baseMs: 100, capMs: 1000, random: () => 1 });
    expect([1, 2, 3, 4, 5].map(() => hi.next())).toEqual([100, 200, 400, 800, 1000]);
  });
  it('starts over after reset', () => {
    const b = new Backoff({ baseMs: 100, capMs: 1000, random: () => 1 });
    b.next();
    b.next();
    b.reset();
    expect(b.next()).toBe(100);
  });
  it('refuses nonsense settings', () => {
    expect(() => new Backoff({ baseMs: 0 })).toThrow(RangeError);
    expect(() => new Backoff({ baseMs: 100, capMs: 50 })).toThrow(RangeError);
  });
});
