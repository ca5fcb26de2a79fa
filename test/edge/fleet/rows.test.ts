/**
 * The Fleet's SQLite rows decoded with zod: an agent row's JSON columns fall
 * back (with a warning) when they do not decode, and a session index row
 * that does not decode stops the caller with an error naming the session.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { toRecord } from '../../../edge/fleet/registry';
import { toIndexed } from '../../../edge/fleet/sessions';
import { jsonText } from '../../../shared/json-text';
import { z } from 'zod';

const view = {
  id: 'ses_0123456789abcdef',
  name: 'demo',
  image: 'node:20',
  status: 'running',
  ports: [3000],
  agentId: 'agt_1',
  createdAt: '2026-12-01T00:00:00.000Z',
  lastActiveAt: '2026-12-01T00:01:00.000Z',
  limits: { cpu: 1, memory: 512 },
  previewPort: 3000,
  publicPorts: [],
};

const agentRow = {
  id: 'agt_1',
  name: 'box-1',
  version: '0.1.0',
  mode: 'docker',
  max_sessions: 20,
  docker: JSON.stringify({ available: true, version: '26.1.5' }),
  system: null,
  active_sessions: 1,
  connected: 1,
  connected_at: 1000,
  last_seen: 2000,
  sessions: '[]',
  containers: '[]',
  active_previews: 0,
  draining: 0,
};

afterEach(() => {
  vi.restoreAllMocks();
});

describe('jsonText', () => {
  it('decodes JSON text of the schema, and refuses text that is not JSON or not of the schema', () => {
    const schema = jsonText(z.object({ n: z.number() }));
    expect(schema.parse('{"n":3}')).toEqual({ n: 3 });
    expect(schema.safeParse('{"n":').error?.issues.map((i) => i.message)).toEqual(['not JSON']);
    expect(schema.safeParse('{"n":"3"}').error?.issues.map((i) => i.path.join('.'))).toEqual(['n']);
  });
});

describe('agent rows', () => {
  it('decodes every column', () => {
    expect(toRecord(agentRow)).toEqual({
      id: 'agt_1',
      name: 'box-1',
      version: '0.1.0',
      mode: 'docker',
      capacity: { maxSessions: 20 },
      docker: { available: true, version: '26.1.5' },
      system: null,
      activeSessions: 1,
      connected: true,
      connectedAt: 1000,
      lastSeen: 2000,
      sessions: [],
      containers: [],
      activePreviews: 0,
      draining: false,
    });
  });

  it('shows a JSON column that does not decode as its default and warns naming the agent and column', () => {
    const lines: string[] = [];
    vi.spyOn(console, 'log').mockImplementation((l: string) => void lines.push(l));
    vi.spyOn(console, 'warn').mockImplementation((l: string) => void lines.push(l));
    vi.spyOn(console, 'error').mockImplementation((l: string) => void lines.push(l));
    const rec = toRecord({ ...agentRow, docker: '{"available":"yes"}', sessions: 'not json' });
    expect(rec.docker).toEqual({ available: false });
    expect(rec.sessions).toEqual([]);
    const warnings = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.level === 'warn');
    expect(warnings.map((w) => [w.agentId, w.column])).toEqual([
      ['agt_1', 'docker'],
      ['agt_1', 'sessions'],
    ]);
  });
});

describe('session index rows', () => {
  it('decodes a row and its pushed view', () => {
    const row = { id: view.id, user_id: 'usr_1', agent_id: 'agt_1', status: 'running', view: JSON.stringify(view) };
    expect(toIndexed(row)).toEqual({ id: view.id, userId: 'usr_1', agentId: 'agt_1', status: 'running', view });
  });

  it('stops with an error naming the session and the field when a row does not decode', () => {
    const row = { id: view.id, user_id: 'usr_1', agent_id: 'agt_1', status: 'sleeping', view: JSON.stringify({ ...view, ports: 'all' }) };
    expect(() => toIndexed(row)).toThrow(
      `the Fleet's session index row for ${view.id} does not decode (status: Invalid option: expected one of "creating"|"running"|"stopped"|"error"|"destroyed"; view.ports: Invalid input: expected array, received string)`,
    );
  });
});
