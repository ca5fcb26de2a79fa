import { describe, expect, it } from 'vitest';
import type { SessionStatus, SessionView } from '../../../shared/api/containers';
import { disagreements, DriftTracker } from '../../../edge/fleet/drift';
import type { IndexedSession } from '../../../edge/fleet/sessions';

const s = (id: string, status: SessionStatus, error?: string): IndexedSession => ({
  id,
  userId: 'usr_1',
  agentId: 'agt_1',
  status,
  view: { id, status, ...(error ? { error } : {}) } as unknown as SessionView,
});

describe('heartbeat drift', () => {
  it('finds records that disagree with the reported container states, leaving creating, destroyed and agent-away sessions alone', () => {
    const indexed = [s('a', 'running'), s('b', 'stopped'), s('c', 'running'), s('d', 'creating'), s('e', 'error', 'agent_unavailable'), s('f', 'running'), s('g', 'running')];
    const found = disagreements(indexed, [
      { sessionId: 'a', state: 'stopped' },
      { sessionId: 'b', state: 'running' },
      { sessionId: 'c', state: 'missing' },
      { sessionId: 'd', state: 'stopped' },
      { sessionId: 'e', state: 'stopped' },
      { sessionId: 'f', state: 'running' },
    ]);
    expect([...found]).toEqual([
      ['a', 'stopped'],
      ['b', 'running'],
      ['c', 'error'],
    ]);
  });

  it('acts on a disagreement only when two heartbeats in a row show it', () => {
    const t = new DriftTracker();
    expect(t.observe('agt_1', new Map([['a', 'stopped']]))).toEqual([]);
    expect(t.observe('agt_1', new Map([['a', 'stopped']]))).toEqual([{ sessionId: 'a', status: 'stopped', note: 'the container is not running (seen in heartbeats)' }]);
    expect(t.observe('agt_1', new Map())).toEqual([]);
    expect(t.observe('agt_1', new Map([['a', 'running']]))).toEqual([]);
    expect(t.observe('agt_1', new Map([['a', 'running']]))).toEqual([{ sessionId: 'a', status: 'running', note: null }]);
  });
});
