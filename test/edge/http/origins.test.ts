import { describe, expect, it } from 'vitest';
import { originAllowed } from '../../../edge/http/origins';

describe('originAllowed', () => {
  const dev = ['http://localhost:*', 'http://127.0.0.1:*'];

  it('allows any port on a host:* pattern', () => {
    expect(originAllowed('http://localhost:5173', dev)).toBe(true);
    expect(originAllowed('http://localhost', dev)).toBe(true);
    expect(originAllowed('http://127.0.0.1:3000', dev)).toBe(true);
  });

  it('does not let a look-alike host or scheme through a port wildcard', () => {
    expect(originAllowed('http://localhost.evil.com', dev)).toBe(false);
    expect(originAllowed('http://localhost:5173.evil.com', dev)).toBe(false);
    expect(originAllowed('https://localhost:5173', dev)).toBe(false);
    expect(originAllowed('http://evil.com', dev)).toBe(false);
  });

  it('matches exact origins exactly', () => {
    expect(originAllowed('https://ide.example.com', ['https://ide.example.com'])).toBe(true);
    expect(originAllowed('https://ide.example.com.evil.com', ['https://ide.example.com'])).toBe(false);
  });

  it('allows everything only with an explicit *, and never the opaque "null" origin', () => {
    expect(originAllowed('https://anything.example', ['*'])).toBe(true);
    expect(originAllowed('null', ['*'])).toBe(false);
    expect(originAllowed('https://anything.example', [])).toBe(false);
  });
});
