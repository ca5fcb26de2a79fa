import { describe, expect, it } from 'vitest';
import { checkProcessStreamBase, OneShotStreamIds, ONE_SHOT_BASE } from '../../../edge/session/stream-ids';

describe('one-shot stream ids', () => {
  it('hands out consecutive ranges inside the upper half of the u32 space', () => {
    const ids = new OneShotStreamIds(() => 0);
    expect(ids.take(2)).toBe(ONE_SHOT_BASE);
    expect(ids.take(1)).toBe(ONE_SHOT_BASE + 2);
    expect(ids.take(2)).toBe(ONE_SHOT_BASE + 3);
  });

  it('starts at a random point, so a restarted DO does not reuse a live stream id', () => {
    const a = new OneShotStreamIds(() => 0.25).take(1);
    const b = new OneShotStreamIds(() => 0.75).take(1);
    expect(a).not.toBe(b);
    for (const id of [a, b]) {
      expect(id).toBeGreaterThanOrEqual(ONE_SHOT_BASE);
      expect(id).toBeLessThan(2 ** 32);
    }
  });

  it('wraps back to the start of its range instead of leaving the u32 space', () => {
    const ids = new OneShotStreamIds(() => 0.999999999);
    let last = 0;
    for (let i = 0; i < 2_000_000 && last >= 0; i++) {
      const base = ids.take(2);
      expect(base + 1).toBeLessThanOrEqual(0xffffffff);
      if (base < last) {
        expect(base).toBe(ONE_SHOT_BASE);
        return;
      }
      last = base;
    }
    // 0.999999999 of 2^31 leaves a step or two before the end: the loop must have wrapped.
    throw new Error('never wrapped');
  });

  it('keeps process stream ranges below the one-shot range', () => {
    expect(checkProcessStreamBase(0, 4)).toBe(0);
    expect(checkProcessStreamBase(ONE_SHOT_BASE - 4, 4)).toBe(ONE_SHOT_BASE - 4);
    expect(() => checkProcessStreamBase(ONE_SHOT_BASE - 3, 4)).toThrow(RangeError);
  });
});
