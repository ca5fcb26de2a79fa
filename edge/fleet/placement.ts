/**
 * Which agents may take a new session, and how many places each has. The
 * edge, not the agent, sets the ceiling: an agent's own claim counts only up
 * to AGENT_MAX_SESSIONS, so a leaked token that claims a huge capacity gets
 * no more than any other agent. Draining agents and, unless
 * ALLOW_LOCAL_AGENTS is on, local-mode agents (no isolation) take none.
 */
import type { AgentRecord } from './registry';
import type { PlacementCandidate } from './sessions';

export interface PlacementLimits {
  agentMaxSessions: number;
  allowLocalAgents: boolean;
}

/** The places an agent offers: the smaller of its claim and the edge's ceiling. */
export function effectiveCapacity(claimed: number, limits: PlacementLimits): number {
  return Math.max(0, Math.min(claimed, limits.agentMaxSessions));
}

type AgentFacts = Pick<AgentRecord, 'id' | 'connected' | 'mode' | 'draining' | 'capacity'>;

/** Whether new sessions may go to this agent at all (its free places aside). */
export function acceptsNewSessions(a: AgentFacts, limits: PlacementLimits): boolean {
  return a.connected && !a.draining && (a.mode !== 'local' || limits.allowLocalAgents);
}

export function placementCandidates(agents: readonly AgentFacts[], limits: PlacementLimits): PlacementCandidate[] {
  return agents.map((a) => ({ id: a.id, connected: acceptsNewSessions(a, limits), maxSessions: effectiveCapacity(a.capacity.maxSessions, limits) }));
}

/** Why no agent could take a session, for the 503 `no_capacity` message. */
export function noPlaceReason(agents: readonly AgentFacts[], limits: PlacementLimits): string {
  const connected = agents.filter((a) => a.connected);
  if (connected.length === 0) return 'no agent is connected';
  if (!limits.allowLocalAgents && connected.every((a) => a.mode === 'local')) {
    return 'the connected agents run in local mode (no isolation), which this edge does not use (ALLOW_LOCAL_AGENTS)';
  }
  if (connected.every((a) => a.draining || (a.mode === 'local' && !limits.allowLocalAgents))) return 'every agent is draining';
  return 'every agent is full';
}
