/** SessionLifecycle: the one writer of a session's record, and what each write sets in motion. */
import { describe, expect, it } from 'vitest';
import type { SessionView } from '../../../shared/api/containers';
import { SessionLifecycle } from '../../../edge/session/lifecycle';
import type { SessionRecord } from '../../../edge/session/record';

const record: SessionRecord = {
  id: 'ses_0000000a',
  userId: 'usr_1',
  agentId: 'agt_1',
  name: 'n',
  image: 'img',
  status: 'running',
  ports: [3000],
  env: [],
  createdAt: 0,
  lastActiveAt: 10_000,
  limits: { cpu: 1, memory: 2 },
};

function setup(stored: unknown = record, answers: Record<string, unknown> = {}) {
  let now = 20_000;
  const saved: SessionRecord[] = [];
  const alarms: Array<number | null> = [];
  const index: Array<{ op: 'update'; view: SessionView } | { op: 'remove'; id: string }> = [];
  const broadcasts: Array<{ type: string; payload: unknown }> = [];
  const calls: string[] = [];
  const lifecycle = new SessionLifecycle({
    storage: {
      get: async () => stored,
      put: async (_k, v) => void saved.push(structuredClone(v)),
      setAlarm: async (at) => void alarms.push(at),
      deleteAlarm: async () => void alarms.push(null),
    },
    fleet: () => ({
      updateSession: async (view) => void index.push({ op: 'update', view }),
      removeSession: async (id) => void index.push({ op: 'remove', id }),
      callAgent: async (_agent, method) => {
        calls.push(method);
        return { ok: true, value: answers[method] ?? null };
      },
    }),
    broadcast: (f) => void broadcasts.push(f),
    idle: () => ({ idleTimeoutMs: 60_000, idleWarningMs: 10_000 }),
    now: () => now,
  });
  return { lifecycle, saved, alarms, index, broadcasts, calls, advance: (ms: number) => (now += ms) };
}

describe('SessionLifecycle.commit', () => {
  it('persists every change and updates the Fleet index when the view changes (preview port, public ports)', async () => {
    const t = setup();
    await t.lifecycle.load();
    await t.lifecycle.commit({ ...record, previewPort: 3000 });
    await t.lifecycle.commit({ ...record, previewPort: 3000, publicPorts: [3000] });
    expect(t.saved.map((r) => [r.previewPort, r.publicPorts])).toEqual([
      [3000, undefined],
      [3000, [3000]],
    ]);
    expect(t.index.map((e) => (e.op === 'update' ? [e.view.previewPort, e.view.publicPorts] : e.op))).toEqual([
      [3000, []],
      [3000, [3000]],
    ]);
    expect(t.broadcasts).toEqual([]);
  });

  it('leaves the index alone for a change the view does not show (the idle warning time)', async () => {
    const t = setup();
    await t.lifecycle.load();
    await t.lifecycle.commit({ ...record, idleWarnedAt: 15_000 });
    expect(t.saved).toHaveLength(1);
    expect(t.index).toEqual([]);
  });

  it('records activity at most once a second, each time in the index too', async () => {
    const t = setup();
    await t.lifecycle.load();
    await t.lifecycle.touch();
    await t.lifecycle.touch();
    t.advance(1_000);
    await t.lifecycle.touch();
    expect(t.index.map((e) => (e.op === 'update' ? e.view.lastActiveAt : e.op))).toEqual([new Date(20_000).toISOString(), new Date(21_000).toISOString()]);
  });

  it('on a status change tells the clients with the reason and moves the idle alarm', async () => {
    const t = setup(record, { 'session.stop': { sessionId: record.id, userId: 'usr_1', state: 'stopped' } });
    await t.lifecycle.load();
    const view = await t.lifecycle.stop('usr_1', 'requested');
    expect(view.status).toBe('stopped');
    expect(t.calls).toEqual(['session.stop']);
    expect(t.broadcasts).toEqual([{ type: 'container_status', payload: { status: 'stopped', session: view, reason: 'requested' } }]);
    expect(t.alarms).toEqual([null]);
    expect(t.index).toEqual([{ op: 'update', view }]);
  });

  it('removes a destroyed session from the index instead of updating it', async () => {
    const t = setup(record, { 'session.remove': { removed: true } });
    await t.lifecycle.load();
    await t.lifecycle.destroy('usr_1');
    expect(t.index).toEqual([{ op: 'remove', id: record.id }]);
    expect(t.saved.at(-1)?.status).toBe('destroyed');
  });

  it('on create sends the Fleet only the running view: the creating one is what placement indexed', async () => {
    const answer = { sessionId: record.id, userId: 'usr_1', state: 'running', containerId: 'c1', address: '172.20.0.5' };
    const t = setup(null, { 'session.create': answer });
    await t.lifecycle.load();
    const view = await t.lifecycle.create({ ...record, status: 'creating', lastActiveAt: 0 });
    expect(view.status).toBe('running');
    expect(t.calls).toEqual(['session.create']);
    expect(t.saved.map((r) => r.status)).toEqual(['creating', 'running']);
    expect(t.index).toEqual([{ op: 'update', view }]);
    // Later commits compare with what the index holds: an unchanged view sends nothing, a changed one is sent.
    await t.lifecycle.commit({ ...t.lifecycle.record!, idleWarnedAt: 1 });
    await t.lifecycle.commit({ ...t.lifecycle.record!, previewPort: 3000 });
    expect(t.index.map((e) => (e.op === 'update' ? e.view.previewPort : e.op))).toEqual([null, 3000]);
  });

  it('treats a stored record that does not decode as no record', async () => {
    const t = setup({ id: 'ses_0000000a', status: 'sleeping' });
    await t.lifecycle.load();
    expect(t.lifecycle.record).toBeUndefined();
    expect(() => t.lifecycle.owned('usr_1')).toThrow('no such session');
  });
});
