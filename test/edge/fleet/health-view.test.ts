/** /health views: the quiet one names nothing; the operator's names everything. */
import { describe, expect, it } from 'vitest';
import { fullHealth, quietHealth, type FleetSnapshot, type HealthContext } from '../../../edge/fleet/health-view';

const system = { hostname: 'build-box-7.internal', platform: 'linux', arch: 'x64', cpus: 4, loadavg: [0.1, 0.2, 0.3], memTotal: 8e9, memFree: 4e9, uptime: 99 };
const snapshot: FleetSnapshot = {
  agents: [
    {
      id: 'agt_0123456789abcdef',
      name: 'build-box-7',
      version: '1.2.3',
      mode: 'local',
      capacity: { maxSessions: 1e15 },
      docker: { available: true, version: '20.10.24', apiVersion: '1.41' },
      system,
      activeSessions: 1,
      connected: true,
      lastSeen: Date.parse('2026-01-01T00:00:00Z'),
      activePreviews: 2,
      draining: false,
    },
  ],
  sessions: { total: 2, active: 1 },
  containers: [
    { agentId: 'agt_0123456789abcdef', sessionId: 'ses_00112233445566778899aabb', state: 'running', cpuPercent: 3, memoryUsed: 1, memoryLimit: 2 },
    { agentId: 'agt_0123456789abcdef', sessionId: 'ses_ffeeddccbbaa998877665544', state: 'stopped' },
  ],
};
const ctx: HealthContext = { production: true, heartbeatIntervalMs: 5000, uptimeSeconds: 12, now: new Date('2026-01-01T00:00:01Z'), limits: { agentMaxSessions: 50, allowLocalAgents: false } };

describe('quietHealth', () => {
  const body = quietHealth(snapshot, ctx);
  const text = JSON.stringify(body);

  it("keeps the seed's keys", () => {
    expect(Object.keys(body).sort()).toEqual(['agents', 'config', 'containers', 'previews', 'sessions', 'status', 'system', 'timestamp', 'uptime']);
  });

  it('holds counts and status only', () => {
    expect(body).toEqual({
      status: 'ok',
      timestamp: '2026-01-01T00:00:01.000Z',
      uptime: 12,
      sessions: { total: 2, active: 1 },
      containers: { total: 2, docker: null, dockerStatus: 'hidden', details: [{ state: 'running', count: 1 }, { state: 'stopped', count: 1 }] },
      previews: { active: 2 },
      config: { environment: 'production', heartbeatIntervalMs: 5000 },
      system: { runtime: 'workerd', agentsConnected: 1, agentsKnown: 1 },
      agents: [],
    });
  });

  it('names no session, user or agent, no host and no version, and says nothing of local mode', () => {
    for (const secret of ['ses_', 'usr_', 'agt_', 'build-box-7', '20.10.24', '1.2.3', 'local', 'isolation']) expect(text).not.toContain(secret);
  });
});

describe('fullHealth', () => {
  it('shows every agent with its mode, versions, draining and capped capacity, and every container', () => {
    const body = fullHealth(snapshot, ctx);
    expect(body.agents).toEqual([
      {
        id: 'agt_0123456789abcdef',
        name: 'build-box-7',
        version: '1.2.3',
        mode: 'local',
        connected: true,
        draining: false,
        capacity: { maxSessions: 50, claimed: 1e15, activeSessions: 1 },
        lastSeen: '2026-01-01T00:00:00.000Z',
        system,
        docker: { available: true, version: '20.10.24', apiVersion: '1.41' },
        isolation: 'none',
      },
    ]);
    expect(body.containers).toEqual({ total: 2, docker: false, dockerStatus: 'unavailable (local mode, no isolation)', details: snapshot.containers });
    expect(body.system).toEqual({ runtime: 'workerd', agentsConnected: 1, agentsKnown: 1, cpus: 4, memTotal: 8e9, memFree: 4e9 });
  });
});
