/**
 * The edge's request log (edge/log.ts): one structured line per request, the
 * request id shared with X-Request-Id, DEBUG=* honoured, and Analytics Engine
 * data points only when the binding is there.
 */
import { Hono } from 'hono';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { log, requestLog } from '../../edge/log';

type Line = Record<string, unknown>;

function appWith(now: () => number) {
  const app = new Hono<{ Variables: { requestId: string } }>();
  app.use('*', requestLog({ now }));
  app.use('*', async (c, next) => {
    await next();
    c.header('X-Request-Id', c.get('requestId'));
  });
  app.get('/api/containers/:sessionId', (c) => {
    log('debug', 'looking up', { sessionId: c.req.param('sessionId') });
    return c.json({ id: c.req.param('sessionId') });
  });
  app.get('/boom', () => {
    throw new Error('boom');
  });
  app.onError((_err, c) => c.json({ error: { code: 'internal_error', message: 'x' } }, 500));
  return app;
}

describe('requestLog', () => {
  let lines: Line[];
  beforeEach(() => {
    lines = [];
    const keep = (l: unknown) => lines.push(JSON.parse(String(l)) as Line);
    vi.spyOn(console, 'log').mockImplementation(keep);
    vi.spyOn(console, 'warn').mockImplementation(keep);
    vi.spyOn(console, 'error').mockImplementation(keep);
  });
  afterEach(() => vi.restoreAllMocks());

  const requestLines = () => lines.filter((l) => l.msg === 'request');

  it('writes one line per request with method, matched route, status, duration and the id sent as X-Request-Id', async () => {
    let t = 1_000;
    const app = appWith(() => (t += 7));
    const res = await app.request('/api/containers/ses_abc', {}, { LOG_LEVEL: 'info' });
    expect(res.status).toBe(200);
    const id = res.headers.get('X-Request-Id');
    expect(id).toMatch(/^req_[0-9a-f]{16}$/);
    expect(requestLines()).toEqual([
      { time: expect.any(String), level: 'info', component: 'edge', msg: 'request', method: 'GET', route: '/api/containers/:sessionId', status: 200, durationMs: 7, requestId: id },
    ]);
  });

  it('keeps a usable X-Request-Id from the client and replaces one with characters ids do not have', async () => {
    const app = appWith(() => 0);
    const kept = await app.request('/api/containers/a', { headers: { 'X-Request-Id': 'client-42.retry:1' } }, {});
    expect(kept.headers.get('X-Request-Id')).toBe('client-42.retry:1');
    const replaced = await app.request('/api/containers/a', { headers: { 'X-Request-Id': 'bad id\u00e9<script>' } }, {});
    expect(replaced.headers.get('X-Request-Id')).toMatch(/^req_[0-9a-f]{16}$/);
    expect(requestLines().map((l) => l.requestId)).toEqual(['client-42.retry:1', replaced.headers.get('X-Request-Id')]);
  });

  it('logs server errors at error and unknown routes at warn, with the path prefix as route', async () => {
    const app = appWith(() => 0);
    expect((await app.request('/boom', {}, {})).status).toBe(500);
    expect((await app.request('/nothing/here/at/all', {}, {})).status).toBe(404);
    expect(requestLines().map((l) => [l.level, l.route, l.status])).toEqual([
      ['error', '/boom', 500],
      ['warn', '/nothing/*', 404],
    ]);
  });

  it('honours DEBUG=* like the agent: debug lines appear, and not without it', async () => {
    const app = appWith(() => 0);
    await app.request('/api/containers/one', {}, { LOG_LEVEL: 'info' });
    expect(lines.filter((l) => l.level === 'debug')).toEqual([]);
    await app.request('/api/containers/two', {}, { LOG_LEVEL: 'info', DEBUG: '*' });
    expect(lines.filter((l) => l.level === 'debug').map((l) => [l.msg, l.sessionId])).toEqual([['looking up', 'two']]);
    await app.request('/api/containers/three', {}, { LOG_LEVEL: 'warn' });
    expect(lines.filter((l) => l.msg === 'request').map((l) => l.route)).toEqual(['/api/containers/:sessionId', '/api/containers/:sessionId']);
  });

  it('writes an Analytics Engine data point per request when ANALYTICS is bound, and nothing breaks without it', async () => {
    const points: unknown[] = [];
    let t = 0;
    const app = appWith(() => (t += 12));
    const analytics = { writeDataPoint: (p: unknown) => points.push(p) };
    expect((await app.request('/api/containers/x', {}, { ANALYTICS: analytics })).status).toBe(200);
    expect((await app.request('/boom', {}, { ANALYTICS: analytics })).status).toBe(500);
    expect(points).toEqual([
      { blobs: ['GET', '/api/containers/:sessionId', '2xx', '200'], doubles: [12, 1], indexes: ['/api/containers/:sessionId'] },
      { blobs: ['GET', '/boom', '5xx', '500'], doubles: [12, 1], indexes: ['/boom'] },
    ]);
    expect((await app.request('/api/containers/x', {}, {})).status).toBe(200);
    expect((await app.request('/api/containers/x', {}, { ANALYTICS: 'not a binding' })).status).toBe(200);
  });

  it('a failing Analytics Engine binding costs a warning, not the response', async () => {
    const app = appWith(() => 0);
    const res = await app.request('/api/containers/x', {}, { ANALYTICS: { writeDataPoint: () => { throw new Error('quota'); } } });
    expect(res.status).toBe(200);
    expect(lines.filter((l) => l.msg === 'analytics data point not written').map((l) => [l.level, l.error])).toEqual([['warn', 'quota']]);
  });
});
