import { describe, expect, it } from 'vitest';
import { Dispatcher } from '../../../agent/connection/dispatcher';
import { createLogger } from '../../../agent/logger';
import type { ContainerEnded, SessionInfo } from '../../../agent/runtime/runtime';
import { SessionService } from '../../../agent/services/sessions';

const logger = createLogger({ level: 'error', base: {} });
const config = { maxSessions: 5, cpuLimit: 0.5, memoryLimitBytes: 1 << 28, pidsLimit: 64, keepWorkspaces: false };

/** A runtime whose container events the test fires by hand. */
function setup() {
  let fire: (e: ContainerEnded) => void = () => undefined;
  const info = (state: SessionInfo['state']): SessionInfo => ({ sessionId: 'ses_00000001', userId: 'u1', containerId: 'c1', state, workspace: '/w/1' });
  const runtime = {
    mode: 'docker' as const,
    list: async () => [info('running')],
    stats: async () => null,
    stop: async () => {
      // The engine reports the stop the agent asked for, as it does.
      fire({ sessionId: 'ses_00000001', containerId: 'c1', reason: 'killed', exitCode: 143, removed: false });
      return info('stopped');
    },
    watchContainers: (l: (e: ContainerEnded) => void) => {
      fire = l;
      return () => (fire = () => undefined);
    },
  };
  const reports: Array<{ event: string; data: unknown }> = [];
  const gone: string[] = [];
  const service = new SessionService({
    runtime: runtime as unknown as ConstructorParameters<typeof SessionService>[0]['runtime'],
    config,
    logger,
    report: (event, data) => (reports.push({ event, data }), true),
    hooks: { running: () => undefined, gone: async (id) => void gone.push(id) },
  });
  const dispatcher = new Dispatcher(logger);
  service.register(dispatcher);
  return { service, dispatcher, reports, gone, fire: (e: ContainerEnded) => fire(e) };
}

describe('SessionService › containers that end on their own', () => {
  it('reports a container that died at once (session.state), closes its host and shows it stopped in the heartbeat figures', async () => {
    const t = setup();
    t.fire({ sessionId: 'ses_00000001', containerId: 'c1', reason: 'killed', exitCode: 137, removed: false });
    await new Promise((r) => setImmediate(r));
    expect(t.reports).toEqual([{ event: 'session.state', data: { sessionId: 'ses_00000001', containerId: 'c1', state: 'stopped', reason: 'killed', exitCode: 137 } }]);
    expect(t.gone).toEqual(['ses_00000001']);
    expect(t.service.latestFigures()).toEqual([{ sessionId: 'ses_00000001', state: 'stopped' }]);
  });

  it('reports a removed container as missing', async () => {
    const t = setup();
    t.fire({ sessionId: 'ses_00000001', containerId: 'c1', reason: 'killed', exitCode: null, removed: true });
    await new Promise((r) => setImmediate(r));
    expect(t.reports).toEqual([{ event: 'session.state', data: { sessionId: 'ses_00000001', containerId: 'c1', state: 'missing', reason: 'killed', exitCode: null } }]);
    expect(t.service.latestFigures()).toEqual([]);
  });

  it('does not report the stop the edge asked for', async () => {
    const t = setup();
    const res = await t.dispatcher.handle({ type: 'req', id: 'r1', method: 'session.stop', params: { sessionId: 'ses_00000001' } });
    expect(res).toMatchObject({ ok: true, result: { state: 'stopped' } });
    await new Promise((r) => setImmediate(r));
    expect(t.reports).toEqual([]);
    expect(t.service.latestFigures()).toEqual([{ sessionId: 'ses_00000001', state: 'stopped' }]);
  });

  it('keeps a state changed while a figures refresh was listing', async () => {
    const t = setup();
    const refreshing = t.service.refresh(); // lists the container as running
    t.fire({ sessionId: 'ses_00000001', containerId: 'c1', reason: 'exited', exitCode: 0, removed: false });
    await refreshing;
    expect(t.service.latestFigures()).toEqual([{ sessionId: 'ses_00000001', state: 'stopped' }]);
  });
});
