import { describe, expect, it } from 'vitest';
import { ChangeJournal } from '../../../agent/services/files/change-journal';

describe('ChangeJournal', () => {
  it('gives each change the next version', () => {
    const j = new ChangeJournal({ firstVersion: 100 });
    expect(j.version).toBe(100);
    expect(j.append({ event: 'add_file', path: '/workspace/a' })).toEqual({ version: 101, event: 'add_file', path: '/workspace/a' });
    expect(j.append({ event: 'change', path: '/workspace/a' }).version).toBe(102);
    expect(j.version).toBe(102);
  });

  describe('since', () => {
    it('returns exactly the changes after a version, oldest first', () => {
      const j = new ChangeJournal({ firstVersion: 0 });
      for (let i = 0; i < 5; i++) j.append({ event: 'add_file', path: `/workspace/f${i}` });
      expect(j.since(2)).toEqual({
        version: 5,
        resync: false,
        changes: [
          { version: 3, event: 'add_file', path: '/workspace/f2' },
          { version: 4, event: 'add_file', path: '/workspace/f3' },
          { version: 5, event: 'add_file', path: '/workspace/f4' },
        ],
      });
      expect(j.since(5)).toEqual({ version: 5, resync: false, changes: [] });
      expect(j.since(0)).toMatchObject({ resync: false, changes: { length: 5 } });
    });

    it('asks for a resync once the journal no longer reaches back', () => {
      const j = new ChangeJournal({ capacity: 3, firstVersion: 0 });
      for (let i = 0; i < 10; i++) j.append({ event: 'change', path: `/workspace/f${i}` });
      expect(j.since(7)).toMatchObject({ resync: false, changes: [{ version: 8 }, { version: 9 }, { version: 10 }] });
      expect(j.since(6)).toEqual({ version: 10, resync: true });
      expect(j.since(0)).toEqual({ version: 10, resync: true });
    });

    it('asks for a resync for a version from the future (another journal)', () => {
      const j = new ChangeJournal({ firstVersion: 50 });
      expect(j.since(51)).toEqual({ version: 50, resync: true });
      expect(j.since(1.5)).toEqual({ version: 50, resync: true });
    });

    it('asks an empty journal for a resync about anything before it began', () => {
      const j = new ChangeJournal({ firstVersion: 50 });
      expect(j.since(50)).toEqual({ version: 50, resync: false, changes: [] });
      expect(j.since(49)).toEqual({ version: 50, resync: true });
    });

    it('filters without changing the resync rule', () => {
      const j = new ChangeJournal({ firstVersion: 0 });
      j.append({ event: 'add_file', path: '/workspace/src/a' });
      j.append({ event: 'add_file', path: '/workspace/docs/b' });
      expect(j.since(0, (c) => c.path.startsWith('/workspace/src/'))).toMatchObject({ changes: [{ path: '/workspace/src/a' }] });
    });

    it('stays bounded and consistent after many wraps', () => {
      const j = new ChangeJournal({ capacity: 10_000, firstVersion: 0 });
      for (let i = 0; i < 25_123; i++) j.append({ event: 'change', path: '/workspace/x' });
      const r = j.since(25_123 - 10_000);
      expect(r.resync).toBe(false);
      if (!r.resync) {
        expect(r.changes).toHaveLength(10_000);
        expect(r.changes[0]?.version).toBe(25_123 - 9_999);
        expect(r.changes.at(-1)?.version).toBe(25_123);
      }
      expect(j.since(25_123 - 10_001).resync).toBe(true);
    });
  });

  it('starts above any earlier journal by default (time-based)', () => {
    const before = Date.now() * 1000;
    expect(new ChangeJournal().version).toBeGreaterThanOrEqual(before);
  });
});
