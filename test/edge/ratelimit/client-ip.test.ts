import { describe, expect, it } from 'vitest';
import { UNKNOWN_CLIENT, clientKey } from '../../../edge/ratelimit/client-ip';

const h = (init: Record<string, string>) => new Headers(init);

describe('clientKey', () => {
  describe('without TRUST_PROXY', () => {
    it('uses CF-Connecting-IP', () => {
      expect(clientKey(h({ 'CF-Connecting-IP': '203.0.113.7' }), false)).toBe('203.0.113.7');
      expect(clientKey(h({ 'CF-Connecting-IP': '2001:DB8::1' }), false)).toBe('2001:db8::1');
    });

    it('ignores forwarding headers, which any client can send', () => {
      const headers = h({ 'CF-Connecting-IP': '203.0.113.7', 'X-Forwarded-For': '198.51.100.1', 'X-Real-IP': '198.51.100.2' });
      expect(clientKey(headers, false)).toBe('203.0.113.7');
      expect(clientKey(h({ 'X-Forwarded-For': '198.51.100.1' }), false)).toBe(UNKNOWN_CLIENT);
    });

    it('falls back to "unknown" for a missing or implausible address', () => {
      expect(clientKey(h({}), false)).toBe('unknown');
      expect(clientKey(h({ 'CF-Connecting-IP': 'a b c' }), false)).toBe('unknown');
      expect(clientKey(h({ 'CF-Connecting-IP': '1'.repeat(100) }), false)).toBe('unknown');
    });
  });

  describe('with TRUST_PROXY', () => {
    it('prefers X-Real-IP', () => {
      expect(clientKey(h({ 'X-Real-IP': '198.51.100.2', 'X-Forwarded-For': '198.51.100.1' }), true)).toBe('198.51.100.2');
    });

    it('else takes the last X-Forwarded-For hop (the one the proxy saw), not the client-claimed first', () => {
      expect(clientKey(h({ 'X-Forwarded-For': '10.9.9.9, 198.51.100.1' }), true)).toBe('198.51.100.1');
    });

    it('else falls back to CF-Connecting-IP, then "unknown"', () => {
      expect(clientKey(h({ 'CF-Connecting-IP': '203.0.113.7' }), true)).toBe('203.0.113.7');
      expect(clientKey(h({}), true)).toBe('unknown');
    });
  });
});
