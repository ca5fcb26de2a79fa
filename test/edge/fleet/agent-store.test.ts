/**
 * The agent registry (D1), run against a real local D1 from Miniflare.
 */
import { Miniflare } from 'miniflare';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppError } from '../../../shared/errors';
import { openAgentStore, type AgentStore } from '../../../edge/fleet/agent-store';

let mf: Miniflare;
let store: AgentStore;
const T0 = new Date('2026-01-01T00:00:00.000Z');
const later = (s: number) => new Date(T0.getTime() + s * 1000);

async function refusal(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await p;
  } catch (err) {
    if (err instanceof AppError) return { code: err.code, message: err.message };
    throw err;
  }
  throw new Error('no refusal');
}

beforeAll(async () => {
  mf = new Miniflare({ modules: true, script: 'export default { fetch() { return new Response("") } }', d1Databases: ['DB'] });
  store = await openAgentStore((await mf.getD1Database('DB')) as unknown as D1Database);
});
afterAll(async () => {
  await mf.dispose();
});

describe('AgentStore', () => {
  it('registers an agent with an id, name, creation and expiry, and it stands active until it expires', async () => {
    const a = await store.register({ name: 'box-1', ttlSeconds: 90 * 86_400 }, T0);
    expect(a).toEqual({ id: expect.stringMatching(/^agt_[0-9a-f]{24}$/), name: 'box-1', createdAt: T0.toISOString(), expiresAt: later(90 * 86_400).toISOString(), revokedAt: null });
    expect(await store.standing(a.id, later(60))).toBe('active');
    expect(await store.standing(a.id, later(90 * 86_400))).toBe('expired');
    expect(await store.standing('agt_00000000', T0)).toBe('unknown');
  });

  it('renews an existing id (new expiry, same creation)', async () => {
    const a = await store.register({ name: 'renew', ttlSeconds: 60 }, T0);
    const b = await store.register({ id: a.id, name: 'renew', ttlSeconds: 3600 }, later(30));
    expect(b).toEqual({ ...a, expiresAt: later(30 + 3600).toISOString() });
  });

  it('revokes by id: it stands revoked, and cannot be registered again', async () => {
    const a = await store.register({ name: 'leaky', ttlSeconds: 3600 }, T0);
    const revoked = await store.revoke(a.id, later(5));
    expect(revoked).toEqual([{ ...a, revokedAt: later(5).toISOString() }]);
    expect(await store.standing(a.id, later(6))).toBe('revoked');
    expect(await refusal(store.register({ id: a.id, name: 'leaky', ttlSeconds: 3600 }, later(7)))).toEqual({
      code: 'conflict',
      message: `agent ${a.id} was revoked; register a new agent instead`,
    });
    // Revoking twice is not an error: it answers with the revoked record.
    expect(await store.revoke(a.id, later(8))).toEqual([{ ...a, revokedAt: later(5).toISOString() }]);
  });

  it('revokes every unrevoked agent with a name', async () => {
    const a = await store.register({ name: 'twin', ttlSeconds: 3600 }, T0);
    const b = await store.register({ name: 'twin', ttlSeconds: 3600 }, T0);
    const other = await store.register({ name: 'not-twin', ttlSeconds: 3600 }, T0);
    const revoked = await store.revoke('twin', later(1));
    expect(revoked.map((r) => r.id).sort()).toEqual([a.id, b.id].sort());
    expect(await store.refused([a.id, b.id, other.id, 'agt_11111111'], later(2))).toEqual([a.id, b.id, 'agt_11111111']);
  });

  it('answers 404 for a name or id it does not know', async () => {
    expect(await refusal(store.revoke('nobody'))).toEqual({ code: 'not_found', message: 'no registered agent named nobody' });
    expect(await refusal(store.revoke('agt_deadbeef'))).toEqual({ code: 'not_found', message: 'no registered agent with id agt_deadbeef' });
  });

  it('refuses malformed ids and names', async () => {
    expect(await refusal(store.register({ id: 'agt_XYZ', name: 'x', ttlSeconds: 60 }))).toMatchObject({ code: 'validation_failed' });
    expect(await refusal(store.register({ name: 'has space', ttlSeconds: 60 }))).toMatchObject({ code: 'validation_failed' });
  });
});
