/** Placement candidates: the edge's ceiling, draining, and local-mode agents. */
import { describe, expect, it } from 'vitest';
import { acceptsNewSessions, effectiveCapacity, noPlaceReason, placementCandidates } from '../../../edge/fleet/placement';
import { chooseAgent } from '../../../edge/fleet/sessions';

const agent = (id: string, over: Partial<{ connected: boolean; mode: 'docker' | 'local'; draining: boolean; max: number }> = {}) => ({
  id,
  connected: over.connected ?? true,
  mode: over.mode ?? 'docker',
  draining: over.draining ?? false,
  capacity: { maxSessions: over.max ?? 10 },
});
const limits = { agentMaxSessions: 50, allowLocalAgents: true };

describe('placement', () => {
  it("caps an agent's claimed capacity at AGENT_MAX_SESSIONS", () => {
    expect(effectiveCapacity(1e15, limits)).toBe(50);
    expect(effectiveCapacity(3, limits)).toBe(3);
    expect(effectiveCapacity(3, { ...limits, agentMaxSessions: 0 })).toBe(0);
  });

  it('gives a greedy claim no more places than an honest agent', () => {
    const candidates = placementCandidates([agent('agt_greedy', { max: 1e15 }), agent('agt_honest', { max: 50 })], limits);
    expect(candidates).toEqual([
      { id: 'agt_greedy', connected: true, maxSessions: 50 },
      { id: 'agt_honest', connected: true, maxSessions: 50 },
    ]);
    // With one session already on the greedy agent, the honest one has more free places.
    expect(chooseAgent(candidates, new Map([['agt_greedy', 1]]))).toBe('agt_honest');
  });

  it('takes nothing to a draining agent', () => {
    expect(acceptsNewSessions(agent('a', { draining: true }), limits)).toBe(false);
    expect(chooseAgent(placementCandidates([agent('a', { draining: true }), agent('b', { max: 1 })], limits), new Map())).toBe('b');
  });

  it('takes nothing to a local-mode agent unless ALLOW_LOCAL_AGENTS is on', () => {
    const local = agent('agt_local', { mode: 'local' });
    expect(acceptsNewSessions(local, limits)).toBe(true);
    expect(acceptsNewSessions(local, { ...limits, allowLocalAgents: false })).toBe(false);
    expect(chooseAgent(placementCandidates([local], { ...limits, allowLocalAgents: false }), new Map())).toBeUndefined();
  });

  it('says why nothing could be placed', () => {
    const strict = { ...limits, allowLocalAgents: false };
    expect(noPlaceReason([], limits)).toBe('no agent is connected');
    expect(noPlaceReason([agent('a', { connected: false })], limits)).toBe('no agent is connected');
    expect(noPlaceReason([agent('a', { mode: 'local' })], strict)).toBe(
      'the connected agents run in local mode (no isolation), which this edge does not use (ALLOW_LOCAL_AGENTS)',
    );
    expect(noPlaceReason([agent('a', { draining: true }), agent('b', { mode: 'local' })], strict)).toBe('every agent is draining');
    expect(noPlaceReason([agent('a')], limits)).toBe('every agent is full');
  });
});
