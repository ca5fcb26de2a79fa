/** The idle rule: when a running session is warned, and when it is stopped. */
import { describe, expect, it } from 'vitest';
import { idleStep } from '../../../edge/session/idle';
import type { SessionRecord } from '../../../edge/session/record';

const TIMEOUT = 30 * 60_000;
const WARNING = 60_000;
const record = (over: Partial<SessionRecord> = {}): SessionRecord => ({
  id: 'ses_00000000',
  userId: 'usr_1',
  agentId: 'agt_1',
  name: 'n',
  image: 'i',
  status: 'running',
  ports: [],
  env: [],
  createdAt: 0,
  lastActiveAt: 1_000_000,
  limits: { cpu: 1, memory: 1 },
  ...over,
});

describe('idleStep', () => {
  it('waits until the warning time while the session is fresh', () => {
    expect(idleStep(record(), 1_000_000 + 5_000, TIMEOUT, WARNING)).toEqual({ kind: 'wait', until: 1_000_000 + TIMEOUT - WARNING });
  });

  it('warns at the warning time, naming when the stop comes', () => {
    expect(idleStep(record(), 1_000_000 + TIMEOUT - WARNING, TIMEOUT, WARNING)).toEqual({ kind: 'warn', stopAt: 1_000_000 + TIMEOUT });
  });

  it('warns once: after the warning it waits for the stop time', () => {
    const warned = record({ idleWarnedAt: 1_000_000 + TIMEOUT - WARNING });
    expect(idleStep(warned, 1_000_000 + TIMEOUT - 10_000, TIMEOUT, WARNING)).toEqual({ kind: 'wait', until: 1_000_000 + TIMEOUT });
  });

  it('stops at the timeout', () => {
    expect(idleStep(record(), 1_000_000 + TIMEOUT, TIMEOUT, WARNING)).toEqual({ kind: 'stop' });
  });

  it('postpones the stop when activity came after the warning', () => {
    const active = record({ idleWarnedAt: 1_000_000 + TIMEOUT - WARNING, lastActiveAt: 1_000_000 + TIMEOUT - 1_000 });
    expect(idleStep(active, 1_000_000 + TIMEOUT, TIMEOUT, WARNING)).toEqual({ kind: 'wait', until: 1_000_000 + 2 * TIMEOUT - 1_000 - WARNING });
  });

  it('does nothing for a session that is not running', () => {
    for (const status of ['creating', 'stopped', 'error', 'destroyed'] as const) {
      expect(idleStep(record({ status }), 1_000_000 + 2 * TIMEOUT, TIMEOUT, WARNING)).toEqual({ kind: 'none' });
    }
  });
});
