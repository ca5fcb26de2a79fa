import { describe, expect, it } from 'vitest';
import { SerialByKey, sessionsToMark } from '../../../edge/fleet/availability';
import type { IndexedSession } from '../../../edge/fleet/sessions';

const s = (id: string, status: IndexedSession['status']) => ({ id, userId: 'u', agentId: 'a', status, view: {} }) as unknown as IndexedSession;

describe('sessionsToMark', () => {
  it('marks running and stopped sessions, not those being created, destroyed or already in error', () => {
    expect(sessionsToMark([s('1', 'running'), s('2', 'stopped'), s('3', 'creating'), s('4', 'destroyed'), s('5', 'error')])).toEqual(['1', '2']);
  });
});

describe('SerialByKey', () => {
  it('runs the tasks of one key in order, each after the previous one finished, even when one fails', async () => {
    const serial = new SerialByKey();
    const seen: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const first = serial.run('a', async () => {
      seen.push('mark:start');
      await gate;
      seen.push('mark:end');
      throw new Error('one session could not be marked');
    });
    const second = serial.run('a', async () => void seen.push('restore'));
    const other = serial.run('b', async () => void seen.push('other-agent'));
    await other;
    expect(seen).toEqual(['mark:start', 'other-agent']);
    release();
    await expect(first).rejects.toThrow('one session could not be marked');
    await second;
    expect(seen).toEqual(['mark:start', 'other-agent', 'mark:end', 'restore']);
  });
});
