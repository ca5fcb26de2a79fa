/**
 * What a Worker isolate reuses from the Fleet DO: the /health snapshot for
 * about a second, and whether a session exists (yes for a minute, no for a
 * second). A fake FLEET namespace counts the calls that reach the DO.
 */
import { describe, expect, it } from 'vitest';
import { cachedSnapshot, requireSession, sessionExists, SNAPSHOT_TTL_MS, type FleetEnv } from '../../../edge/fleet/cached';

function fakeEnv(known: Set<string>) {
  const calls = { snapshot: 0, exists: 0 };
  const stub = {
    healthSnapshot: async () => {
      calls.snapshot += 1;
      return { agents: [], sessions: { total: calls.snapshot, active: 0 }, containers: [] };
    },
    sessionExists: async (id: string) => {
      calls.exists += 1;
      return known.has(id);
    },
  };
  const FLEET = { idFromName: (n: string) => n, get: () => stub };
  const env: FleetEnv = { FLEET };
  return { env, calls };
}

describe('cachedSnapshot', () => {
  it('asks the Fleet once for a flood within a second, then again', async () => {
    const { env, calls } = fakeEnv(new Set());
    const t0 = 1_000_000;
    const answers = await Promise.all(Array.from({ length: 500 }, (_, i) => cachedSnapshot(env, t0 + i)));
    expect(calls.snapshot).toBe(1);
    expect(new Set(answers.map((a) => a.sessions.total))).toEqual(new Set([1]));
    expect((await cachedSnapshot(env, t0 + SNAPSHOT_TTL_MS)).sessions.total).toBe(2);
    expect(calls.snapshot).toBe(2);
  });
});

describe('sessionExists', () => {
  it('remembers a session that exists for a minute and one that does not for a second', async () => {
    const known = new Set(['ses_aaaaaaaa']);
    const { env, calls } = fakeEnv(known);
    const t0 = 5_000_000;
    expect(await sessionExists(env, 'ses_aaaaaaaa', t0)).toBe(true);
    expect(await sessionExists(env, 'ses_aaaaaaaa', t0 + 59_000)).toBe(true);
    expect(calls.exists).toBe(1);
    expect(await sessionExists(env, 'ses_bbbbbbbb', t0)).toBe(false);
    expect(await sessionExists(env, 'ses_bbbbbbbb', t0 + 500)).toBe(false);
    expect(calls.exists).toBe(2);
    known.add('ses_bbbbbbbb');
    expect(await sessionExists(env, 'ses_bbbbbbbb', t0 + 1_000)).toBe(true);
    expect(calls.exists).toBe(3);
  });

  it('answers 404 not_found for a session the Fleet does not know', async () => {
    const { env } = fakeEnv(new Set());
    await expect(requireSession(env, 'ses_cccccccc')).rejects.toMatchObject({ code: 'not_found', status: 404, message: 'no such session' });
  });
});
