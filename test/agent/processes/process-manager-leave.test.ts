/**
 * ProcessManager.leave, what a clean agent stop does to a session's
 * processes: those the runtime keeps past the agent (the session daemon's)
 * are left running and never reported ended; the others are killed and
 * their exits sent, as at a session stop.
 */
import { describe, expect, it } from 'vitest';
import { Dispatcher } from '../../../agent/connection/dispatcher';
import { memoryLogger } from '../../../agent/logger';
import { ProcessManager } from '../../../agent/services/processes/process-manager';
import { FakeRuntime, FakeSink, settle, until } from './fakes';

const P1 = 'prc_00000001';
const P2 = 'prc_00000002';

function setup() {
  const runtime = new FakeRuntime();
  const logger = memoryLogger();
  const pm = new ProcessManager({ runtime, sessionId: 'ses_1', logger });
  const dispatcher = new Dispatcher(logger);
  pm.register(dispatcher);
  let n = 0;
  const spawn = async (processId: string, streamBase: number) => {
    const res = await dispatcher.handle({ type: 'req', id: String(++n), method: 'proc.spawn', params: { processId, streamBase, command: ['sh', '-c', 'x'], tty: false } });
    expect(res).toMatchObject({ ok: true });
    return runtime.last;
  };
  return { pm, spawn, logger, call: (params: unknown) => dispatcher.handle({ type: 'req', id: String(++n), method: 'proc.spawn', params }) };
}

describe('ProcessManager leave (a clean agent stop)', () => {
  it('leaves a process that outlives the agent running and unreported, and kills the others with their exits sent', async () => {
    const { pm, spawn, logger, call } = setup();
    const sink = new FakeSink();
    pm.attach(sink);
    const kept = Object.assign(await spawn(P1, 0), { outlivesAgent: true });
    const ended = await spawn(P2, 4);
    kept.stdout.write('before');
    await until(() => sink.frames(0).length === 1, 'output of the kept process');

    expect(await pm.leave()).toEqual({ leftRunning: 1, ended: 1 });
    expect(kept.kills).toEqual([]);
    expect(ended.kills).toEqual(['SIGKILL']);
    expect(sink.events('proc.exit')).toEqual([{ processId: P2, exitCode: null, signal: 'SIGKILL', reason: 'killed', endOffsets: { stdout: 0, stderr: 0, pty: 0 } }]);

    // The agent's connection to the daemon closes as the agent exits: the handle reports the process lost.
    const sentBefore = sink.sent.length;
    kept.stdout.write('after');
    kept.exit({ exitCode: null, reason: 'lost' });
    await settle();
    expect(sink.sent.length).toBe(sentBefore);
    expect(logger.lines.filter((l) => l.msg === 'process exited').map((l) => l.processId)).toEqual([P2]);

    // Nothing new starts, and a socket that comes back hears nothing.
    expect(await call({ processId: 'prc_00000003', streamBase: 8, command: ['true'], tty: false })).toMatchObject({ ok: false, error: { code: 'conflict' } });
    const late = new FakeSink();
    pm.attach(late);
    expect(late.sent).toEqual([]);
    expect(pm.list()).toEqual([]);
  });

  it('counts nothing left when no process outlives the agent (docker exec, local mode)', async () => {
    const { pm, spawn } = setup();
    const a = await spawn(P1, 0);
    a.exit({ exitCode: 0, reason: 'exit' });
    const b = await spawn(P2, 4);
    await until(() => pm.list().some((p) => p.processId === P1 && !p.running), 'first exit');
    expect(await pm.leave()).toEqual({ leftRunning: 0, ended: 1 });
    expect(b.kills).toEqual(['SIGKILL']);
  });
});
