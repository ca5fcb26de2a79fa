import { describe, expect, it } from 'vitest';
import {
  DUMMY_PASSWORD_HASH,
  PBKDF2_ITERATIONS,
  hashPassword,
  timingSafeEqual,
  verifyPassword,
} from '../../../edge/auth/password';

describe('password hashing (PBKDF2-SHA256)', () => {
  describe('hashPassword', () => {
    it('stores scheme, 100,000 iterations, a 16-byte salt and a 32-byte hash in one self-describing string', async () => {
      const stored = await hashPassword('correct horse battery staple');
      const [scheme, iterations, salt, hash, ...rest] = stored.split('$');
      expect(scheme).toBe('pbkdf2-sha256');
      expect(Number(iterations)).toBe(PBKDF2_ITERATIONS);
      expect(PBKDF2_ITERATIONS).toBe(100_000);
      expect(Buffer.from(salt!, 'base64url')).toHaveLength(16);
      expect(Buffer.from(hash!, 'base64url')).toHaveLength(32);
      expect(rest).toEqual([]);
      expect(stored).not.toContain('correct horse');
    });

    it('salts every hash at random, so one password hashes differently each time', async () => {
      const a = await hashPassword('same password');
      const b = await hashPassword('same password');
      expect(a).not.toBe(b);
      expect(a.split('$')[2]).not.toBe(b.split('$')[2]);
    });

    it('agrees with Node\'s own PBKDF2 for the same salt and iterations', async () => {
      // Independent computation with Node's own PBKDF2 over the stored salt.
      const { pbkdf2Sync } = await import('node:crypto');
      const stored = await hashPassword('vector-check', 1000);
      const [, , salt, hash] = stored.split('$');
      const expected = pbkdf2Sync('vector-check', Buffer.from(salt!, 'base64url'), 1000, 32, 'sha256');
      expect(Buffer.from(hash!, 'base64url').equals(expected)).toBe(true);
    });
  });

  describe('verifyPassword', () => {
    it('accepts the right password and refuses near misses', async () => {
      const stored = await hashPassword('s3cret-Passw0rd');
      expect(await verifyPassword('s3cret-Passw0rd', stored)).toBe(true);
      for (const wrong of ['s3cret-passw0rd', 's3cret-Passw0rd ', 's3cret-Passw0r', '', 'x'.repeat(128)]) {
        expect(await verifyPassword(wrong, stored)).toBe(false);
      }
    });

    it('reads the iteration count from the stored value', async () => {
      const stored = await hashPassword('fewer-rounds', 2000);
      expect(stored.split('$')[1]).toBe('2000');
      expect(await verifyPassword('fewer-rounds', stored)).toBe(true);
    });

    it('treats Unicode compatibility forms as the same password (NFKC)', async () => {
      const stored = await hashPassword('ﬁnance-pass'); // U+FB01 LATIN SMALL LIGATURE FI
      expect(await verifyPassword('finance-pass', stored)).toBe(true);
    });

    it.each([
      ['empty', ''],
      ['another scheme', 'bcrypt$10$abc$def'],
      ['too few parts', 'pbkdf2-sha256$100000$abc'],
      ['non-numeric iterations', 'pbkdf2-sha256$lots$AAAAAAAAAAAAAAAAAAAAAA$' + 'A'.repeat(43)],
      ['iterations above the Workers ceiling', 'pbkdf2-sha256$100001$AAAAAAAAAAAAAAAAAAAAAA$' + 'A'.repeat(43)],
      ['bad base64', 'pbkdf2-sha256$1000$!!!!$' + 'A'.repeat(43)],
      ['short hash', 'pbkdf2-sha256$1000$AAAAAAAAAAAAAAAAAAAAAA$AAAA'],
    ])('says "no match" for a malformed stored value (%s) instead of throwing', async (_name, stored) => {
      await expect(verifyPassword('whatever-password', stored)).resolves.toBe(false);
    });

    it('runs full PBKDF2 work against the dummy hash, and never matches', async () => {
      const parts = DUMMY_PASSWORD_HASH.split('$');
      expect(parts[0]).toBe('pbkdf2-sha256');
      expect(Number(parts[1])).toBe(PBKDF2_ITERATIONS);
      expect(await verifyPassword('', DUMMY_PASSWORD_HASH)).toBe(false);
      expect(await verifyPassword('password123', DUMMY_PASSWORD_HASH)).toBe(false);
    });

    it('takes about as long for the dummy hash as for a real one (unknown email vs wrong password)', async () => {
      const real = await hashPassword('real-password');
      const time = async (stored: string) => {
        const t = performance.now();
        for (let i = 0; i < 3; i++) await verifyPassword('guess-password', stored);
        return performance.now() - t;
      };
      await time(real); // warm up
      const [a, b] = [await time(real), await time(DUMMY_PASSWORD_HASH)];
      expect(Math.max(a, b) / Math.min(a, b)).toBeLessThan(3);
    });
  });

  describe('timingSafeEqual', () => {
    it('is true only for equal bytes of equal length', () => {
      expect(timingSafeEqual(new Uint8Array([1, 2, 3]), new Uint8Array([1, 2, 3]))).toBe(true);
      expect(timingSafeEqual(new Uint8Array([1, 2, 3]), new Uint8Array([1, 2, 4]))).toBe(false);
      expect(timingSafeEqual(new Uint8Array([1, 2, 3]), new Uint8Array([1, 2]))).toBe(false);
      expect(timingSafeEqual(new Uint8Array([]), new Uint8Array([]))).toBe(true);
    });
  });
});
