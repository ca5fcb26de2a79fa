/** The one watch rule the agent's watcher and the edge's fanout share. */
import { describe, expect, it } from 'vitest';
import { watchCovers } from '../../shared/protocol/watch-filter';

describe('watchCovers', () => {
  it('hears the path itself and its direct children; descendants only when recursive', () => {
    expect(watchCovers('/workspace/src', false, { path: '/workspace/src', event: 'change' })).toBe(true);
    expect(watchCovers('/workspace/src', false, { path: '/workspace/src/a.ts', event: 'add_file' })).toBe(true);
    expect(watchCovers('/workspace/src', false, { path: '/workspace/src/lib/a.ts', event: 'add_file' })).toBe(false);
    expect(watchCovers('/workspace/src', true, { path: '/workspace/src/lib/a.ts', event: 'add_file' })).toBe(true);
    expect(watchCovers('/workspace/src', true, { path: '/workspace/srcx/a.ts', event: 'add_file' })).toBe(false);
  });

  it('hears the removal of a folder above the watched one (the only event that removal reports)', () => {
    expect(watchCovers('/workspace/src/lib', false, { path: '/workspace/src', event: 'remove_dir' })).toBe(true);
    expect(watchCovers('/workspace/src/lib', false, { path: '/workspace/src', event: 'change' })).toBe(false);
    expect(watchCovers('/workspace/src/lib', false, { path: '/workspace/other', event: 'remove_dir' })).toBe(false);
  });

  it('treats the workspace root like any folder', () => {
    expect(watchCovers('/workspace', false, { path: '/workspace/a.txt', event: 'change' })).toBe(true);
    expect(watchCovers('/workspace', false, { path: '/workspace/d/a.txt', event: 'change' })).toBe(false);
    expect(watchCovers('/workspace', true, { path: '/workspace/d/a.txt', event: 'change' })).toBe(true);
  });
});
