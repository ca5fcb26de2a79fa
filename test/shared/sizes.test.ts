import { describe, expect, it } from 'vitest';
import { parseSize } from '../../shared/sizes';

describe('parseSize', () => {
  it('reads bytes and k, m, g in powers of 1024, in any case, with an optional b', () => {
    expect(['4096', '1k', '512m', '2g', '1.5G', '64MB', ' 8kb '].map(parseSize)).toEqual([4096, 1024, 512 * 1024 ** 2, 2 * 1024 ** 3, 1.5 * 1024 ** 3, 64 * 1024 ** 2, 8192]);
  });

  it('rounds a fraction of a byte down', () => {
    expect(parseSize('1.5')).toBe(1);
  });

  it('answers undefined for what is not a size', () => {
    expect(['', 'm', '-1m', '1t', '1 m b', 'ten'].map(parseSize)).toEqual([undefined, undefined, undefined, undefined, undefined, undefined]);
  });
});
