import { describe, expect, it } from 'vitest';
import {
  bindingDecision,
  consume,
  currentWindow,
  rateLimitHeaders,
  type RateLimitRule,
  type WindowState,
} from '../../../edge/ratelimit/window';

const api: RateLimitRule = { bucket: 'api', max: 3, windowMs: 10_000 };
const auth: RateLimitRule = { bucket: 'auth', max: 2, windowMs: 60_000 };

/** Drives consume() the way RateLimiterDO does: load, decide, save. */
function limiter(rules: RateLimitRule[]) {
  const stored = new Map<string, WindowState>();
  return (now: number, only: RateLimitRule[] = rules) => {
    const r = consume(only, stored, now);
    for (const [k, v] of r.states) stored.set(k, v);
    return r;
  };
}

describe('fixed-window rate limiting', () => {
  describe('one bucket', () => {
    it('lets max requests through in a window and refuses the next', () => {
      const hit = limiter([api]);
      const results = [0, 1, 2, 3].map((i) => hit(1000 + i));
      expect(results.map((r) => r.allowed)).toEqual([true, true, true, false]);
      expect(results.map((r) => r.decisions[0]!.remaining)).toEqual([2, 1, 0, 0]);
    });

    it('keeps the window anchored at its first request, so the reset time does not move', () => {
      const hit = limiter([api]);
      const resets = [1000, 4000, 9000, 9500].map((t) => hit(t).decisions[0]!.resetAt);
      expect(new Set(resets)).toEqual(new Set([11_000]));
    });

    it('opens a fresh window once the old one has closed', () => {
      const hit = limiter([api]);
      for (let i = 0; i < 4; i++) hit(1000);
      expect(hit(10_999).allowed).toBe(false);
      const fresh = hit(11_000);
      expect(fresh.allowed).toBe(true);
      expect(fresh.decisions[0]).toMatchObject({ remaining: 2, resetAt: 21_000 });
    });

    it('does not count refused requests, so hammering a full window does not extend it', () => {
      const hit = limiter([api]);
      for (let i = 0; i < 50; i++) hit(1000 + i);
      expect(hit(11_000).decisions[0]!.remaining).toBe(2);
    });

    it('starts over when the clock went backwards past the window start', () => {
      expect(currentWindow({ start: 5000, count: 3 }, api, 4000)).toEqual({ start: 4000, count: 0 });
    });
  });

  describe('several buckets', () => {
    it('spends from every bucket when all have room', () => {
      const hit = limiter([api, auth]);
      const r = hit(0);
      expect(r.allowed).toBe(true);
      expect(r.decisions.map((d) => d.remaining)).toEqual([2, 1]);
    });

    it('refuses when any bucket is full, and then spends from none', () => {
      const hit = limiter([api, auth]);
      hit(0);
      hit(1);
      const refused = hit(2);
      expect(refused.allowed).toBe(false);
      expect(refused.decisions.find((d) => d.bucket === 'auth')!.allowed).toBe(false);
      // The api bucket still has the one request the refusal did not spend.
      const apiOnly = hit(3, [api]);
      expect(apiOnly.allowed).toBe(true);
      expect(apiOnly.decisions[0]!.remaining).toBe(0);
      expect(hit(4, [api]).allowed).toBe(false);
    });

    it('reports the refusing bucket that reopens last, or else the one with least left', () => {
      const d = (bucket: string, allowed: boolean, remaining: number, resetAt: number) => ({ bucket, allowed, limit: 5, remaining, resetAt });
      expect(bindingDecision([d('api', true, 4, 100), d('auth', true, 1, 50)])!.bucket).toBe('auth');
      expect(bindingDecision([d('api', false, 0, 100), d('auth', false, 0, 500)])!.bucket).toBe('auth');
      expect(bindingDecision([d('api', false, 0, 100), d('auth', true, 0, 500)])!.bucket).toBe('api');
      expect(bindingDecision([])).toBeUndefined();
    });
  });

  describe('rateLimitHeaders', () => {
    it('gives limit, remaining and whole seconds until reset', () => {
      expect(rateLimitHeaders({ bucket: 'api', allowed: true, limit: 100, remaining: 42, resetAt: 10_500 }, 1000)).toEqual({
        'RateLimit-Limit': '100',
        'RateLimit-Remaining': '42',
        'RateLimit-Reset': '10',
      });
    });

    it('adds Retry-After (at least 1 s) on refusal', () => {
      const h = rateLimitHeaders({ bucket: 'api', allowed: false, limit: 5, remaining: 0, resetAt: 1200 }, 1000);
      expect(h['RateLimit-Reset']).toBe('1');
      expect(h['Retry-After']).toBe('1');
      expect(rateLimitHeaders({ bucket: 'api', allowed: false, limit: 5, remaining: 0, resetAt: 1000 }, 1000)['Retry-After']).toBe('1');
    });
  });
});
