/** Placement: which connected agent takes a new session. */
import { describe, expect, it } from 'vitest';
import { chooseAgent, type PlacementCandidate } from '../../../edge/fleet/sessions';

const a = (id: string, maxSessions: number, connected = true): PlacementCandidate => ({ id, connected, maxSessions });

describe('chooseAgent', () => {
  it('picks the connected agent with the most free places', () => {
    expect(chooseAgent([a('agt_a', 10), a('agt_b', 10), a('agt_c', 4)], new Map([['agt_a', 7], ['agt_b', 2]]))).toBe('agt_b');
  });

  it('breaks a tie in free places by the lower id, whatever the order given', () => {
    expect(chooseAgent([a('agt_b', 5), a('agt_a', 5)], new Map())).toBe('agt_a');
    expect(chooseAgent([a('agt_a', 5), a('agt_b', 5)], new Map())).toBe('agt_a');
  });

  it('never picks a disconnected agent, however free', () => {
    expect(chooseAgent([a('agt_off', 100, false), a('agt_on', 2)], new Map([['agt_on', 1]]))).toBe('agt_on');
  });

  it('answers undefined when every connected agent is full or none is connected', () => {
    expect(chooseAgent([a('agt_a', 2), a('agt_b', 1)], new Map([['agt_a', 2], ['agt_b', 3]]))).toBeUndefined();
    expect(chooseAgent([a('agt_off', 10, false)], new Map())).toBeUndefined();
    expect(chooseAgent([], new Map())).toBeUndefined();
  });

  it('counts an agent with no sessions yet as entirely free', () => {
    expect(chooseAgent([a('agt_busy', 10), a('agt_new', 3)], new Map([['agt_busy', 8]]))).toBe('agt_new');
  });
});
