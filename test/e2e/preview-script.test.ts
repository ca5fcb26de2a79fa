/**
 * Preview scripts and preview messages through the real stack (workerd edge,
 * agent, dockerd): `set_preview_script` on the session socket, the tags in
 * the session's HTML responses (host and path forms, gzip, brotli, no head,
 * CSP nonce), and messages a preview page posts coming back as
 * `preview_message` frames, from the owner only.
 */
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasDocker } from '../helpers/docker';
import { api, registerUser, TestSocket, type TestUser, rawRequest } from '../helpers/client';
import { previewCookie, sessionWithPreview } from '../helpers/preview';
import { startEdgeWithAgent } from '../helpers/sessions';
import { TestStack } from '../helpers/stack';
import { edgeRunnerFromEnv } from '../../scripts/lib/stack';

const DOMAIN = 'preview.localhost';
const PAGE = '<!doctype html><html><head><title>t</title></head><body><p>hi</p></body></html>';

/** The dev server in the container: HTML in several shapes, and a script. */
const SERVER = `
const http = require('node:http');
const zlib = require('node:zlib');
const PAGE = ${JSON.stringify(PAGE)};
http.createServer((req, res) => {
  const url = new URL(req.url, 'http://x');
  const html = { 'Content-Type': 'text/html; charset=utf-8', ETag: '"v1"', 'Last-Modified': 'Tue, 01 Dec 2026 00:00:00 GMT' };
  if (url.pathname === '/') { res.writeHead(200, { ...html, 'Content-Length': Buffer.byteLength(PAGE) }); return res.end(PAGE); }
  if (url.pathname === '/gz') { const b = zlib.gzipSync(PAGE); res.writeHead(200, { ...html, 'Content-Encoding': 'gzip', 'Content-Length': b.length }); return res.end(b); }
  if (url.pathname === '/br') { const b = zlib.brotliCompressSync(PAGE); res.writeHead(200, { ...html, 'Content-Encoding': 'br', 'Content-Length': b.length }); return res.end(b); }
  if (url.pathname === '/nohead') { res.writeHead(200, html); return res.end('<p>fragment</p>'); }
  if (url.pathname === '/csp') { res.writeHead(200, { ...html, 'Content-Security-Policy': "script-src 'nonce-abc123'" }); return res.end(PAGE); }
  if (url.pathname === '/app.js') { res.writeHead(200, { 'Content-Type': 'text/javascript', 'Content-Length': 9 }); return res.end('var a=1;\\n'); }
  res.writeHead(404, { 'Content-Type': 'text/plain' }); res.end('nope');
}).listen(3000, '0.0.0.0');
`;

describe.skipIf(!hasDocker)('preview scripts and preview messages (real stack, Docker)', () => {
  // The Miniflare runner (the same workerd) unless EDGE_RUNNER names one: `wrangler dev` reloads the Worker,
  // dropping the suite's session socket, whenever a source file changes while it runs.
  const runner = process.env.EDGE_RUNNER ? edgeRunnerFromEnv() : 'miniflare';
  const stack = new TestStack({ runner, edgeVars: { RATE_LIMIT_MAX: '100000', AUTH_RATE_LIMIT_MAX: '100000', PREVIEW_DOMAIN: DOMAIN } });
  let owner: TestUser;
  let sessionId: string;
  let sock: TestSocket;
  let hostCookie = '';
  let pathCookie = '';
  let host = '';

  const page = (p: string, headers: Record<string, string> = {}) => rawRequest(stack.port, { path: p, host, headers: { Cookie: hostCookie, ...headers } });
  const setScript = async (payload: unknown) => {
    const reply = await sock.request('set_preview_script', payload);
    expect(reply.type, JSON.stringify(reply)).toBe('preview_script_set');
    return reply.payload;
  };

  beforeAll(async () => {
    await startEdgeWithAgent(stack, { agentName: 'preview-script-agent', image: 'node' });
    owner = await registerUser(stack, 'pscript');
    ({ id: sessionId, sock } = await sessionWithPreview(stack, owner, { server: SERVER }));
    host = `3000-${sessionId}.${DOMAIN}:${stack.port}`;
    const link = await api<{ url: string; pathUrl: string }>(stack, 'GET', `/api/containers/${sessionId}/preview-url?port=3000`, { token: owner.token });
    hostCookie = await previewCookie(stack, link.body.url);
    pathCookie = await previewCookie(stack, link.body.pathUrl);
  }, 180_000);
  afterAll(async () => {
    sock?.close();
    await stack.stop();
  });

  it('leaves HTML as the dev server sent it while no script is set', async () => {
    expect(await setScript({ script: null, forwardErrors: false })).toEqual({ script: null, forwardErrors: false });
    const res = await page('/');
    expect(res.status).toBe(200);
    expect(res.body.toString()).toBe(PAGE);
    expect(res.headers.etag).toBe('"v1"');
    expect(res.headers['last-modified']).toBe('Tue, 01 Dec 2026 00:00:00 GMT');
  });

  it('injects the script first in <head> of HTML responses on both forms, without Content-Length or validators', async () => {
    expect(await setScript({ script: { source: 'window.__injected = 1;', type: 'module' } })).toEqual({
      script: { source: 'window.__injected = 1;', type: 'module' },
      forwardErrors: false,
    });
    const expected = PAGE.replace('<head>', '<head><script type="module">window.__injected = 1;</script>');
    const res = await page('/');
    expect(res.status).toBe(200);
    expect(res.body.toString()).toBe(expected);
    expect(res.headers['content-length']).toBeUndefined();
    expect(res.headers['transfer-encoding']).toBe('chunked');
    expect(res.headers.etag).toBeUndefined();
    expect(res.headers['last-modified']).toBeUndefined();
    const viaPath = await rawRequest(stack.port, { path: `/${sessionId}/`, host: `${DOMAIN}:${stack.port}`, headers: { Cookie: pathCookie } });
    expect(viaPath.status).toBe(200);
    expect(viaPath.body.toString()).toBe(expected);
    // Not HTML: untouched, length kept.
    const js = await page('/app.js');
    expect(js.body.toString()).toBe('var a=1;\n');
    expect(js.headers['content-length']).toBe('9');
    // HEAD: no body, nothing to rewrite.
    const head = await rawRequest(stack.port, { path: '/', host, method: 'HEAD', headers: { Cookie: hostCookie } });
    expect(head.status).toBe(200);
    expect(head.body.length).toBe(0);
  });

  it('decompresses gzip HTML to inject into it, and passes brotli through untouched', async () => {
    await setScript({ script: { source: 'window.__injected = 2;' } });
    const expected = PAGE.replace('<head>', '<head><script>window.__injected = 2;</script>');
    const gz = await page('/gz');
    expect(gz.status).toBe(200);
    expect(gz.headers['content-encoding']).toBeUndefined();
    expect(gz.body.toString()).toBe(expected);
    // A browser that accepts gzip may get the rewritten page compressed again by the runtime, on the way out.
    const again = await page('/gz', { 'Accept-Encoding': 'gzip' });
    const decoded = again.headers['content-encoding'] === 'gzip' ? zlib.gunzipSync(again.body) : again.body;
    expect(decoded.toString()).toBe(expected);
    const br = await page('/br');
    expect(br.status).toBe(200);
    expect(br.headers['content-encoding']).toBe('br');
    expect(zlib.brotliDecompressSync(br.body).toString()).toBe(PAGE);
  });

  it('injects at the end of a page with neither head nor body, carries the CSP nonce, and cannot be closed early by </script>', async () => {
    await setScript({ script: { source: 'var s = "</script><b>x</b>";', defer: true, async: true } });
    const tag = '<script defer async>var s = "<\\/script><b>x</b>";</script>';
    expect((await page('/nohead')).body.toString()).toBe(`<p>fragment</p>${tag}`);
    expect((await page('/csp')).body.toString()).toBe(PAGE.replace('<head>', `<head>${tag.replace('<script defer async>', '<script defer async nonce="abc123">')}`));
  });

  it('refuses a script over 256 KiB with payload_too_large, and keeps the one set', async () => {
    await setScript({ script: { source: 'var kept = 1;', defer: true, async: true } });
    const reply = await sock.request('set_preview_script', { script: { source: 'é'.repeat(200 * 1024) } });
    expect(reply.type).toBe('error');
    expect(reply.payload.code).toBe('payload_too_large');
    expect((await page('/')).body.toString()).toBe(PAGE.replace('<head>', '<head><script defer async>var kept = 1;</script>'));
  });

  it('forwards the messages a preview page posts to every client of the session, from the owner only', async () => {
    expect(await setScript({ script: null, forwardErrors: true })).toEqual({ script: null, forwardErrors: true });
    const html = (await page('/')).body.toString();
    expect(html.startsWith('<!doctype html><html><head><script>(function () {')).toBe(true);
    expect(html).toContain('var url = "/__mominai/preview-message";');
    expect(html).toContain("if (true) {\n    var original = console.error;");
    const viaPath = await rawRequest(stack.port, { path: `/${sessionId}/`, host: `${DOMAIN}:${stack.port}`, headers: { Cookie: pathCookie } });
    expect(viaPath.body.toString()).toContain(`var url = "/${sessionId}/__mominai/preview-message";`);

    const message = { type: 'PREVIEW_UNCAUGHT_EXCEPTION', message: 'boom', stack: 'Error: boom\n    at x.js:1:1', pathname: '/', search: '?q=1', hash: '#h' };
    const origin = `http://${host}`;
    const seen = sock.waitFor((f) => f.type === 'preview_message');
    const posted = await page('/__mominai/preview-message', { 'Content-Type': 'application/json', Origin: origin });
    expect(posted.status).toBe(405); // a GET: the route exists and takes POST only
    const ok = await rawRequest(stack.port, { path: '/__mominai/preview-message', host, method: 'POST', headers: { Cookie: hostCookie, Origin: origin, 'Content-Type': 'application/json' }, body: JSON.stringify(message) });
    expect(ok.status).toBe(204);
    expect((await seen).payload).toEqual({ ...message, port: 3000, previewId: `3000-${sessionId}` });

    const post = (headers: Record<string, string>, body: string) => rawRequest(stack.port, { path: '/__mominai/preview-message', host, method: 'POST', headers: { 'Content-Type': 'application/json', ...headers }, body });
    const anonymous = await post({ Origin: origin }, JSON.stringify(message));
    expect(anonymous.status).toBe(401);
    expect(JSON.parse(anonymous.body.toString()).error.code).toBe('unauthorized');
    // A public port serves its pages to anyone, but messages still come from the owner only.
    expect((await api(stack, 'POST', `/api/containers/${sessionId}/ports/3000`, { token: owner.token, body: { visibility: 'public' } })).status).toBe(200);
    expect((await post({ Origin: origin }, JSON.stringify(message))).status).toBe(401);
    expect((await api(stack, 'POST', `/api/containers/${sessionId}/ports/3000`, { token: owner.token, body: { visibility: 'private' } })).status).toBe(200);
    const foreign = await post({ Cookie: hostCookie, Origin: 'http://evil.example' }, JSON.stringify(message));
    expect(foreign.status).toBe(403);
    const bad = await post({ Cookie: hostCookie, Origin: origin }, JSON.stringify({ type: 'PREVIEW_CONSOLE_ERROR', args: 'not a list' }));
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.body.toString()).error.code).toBe('validation_failed');
    const big = await post({ Cookie: hostCookie, Origin: origin }, JSON.stringify({ ...message, message: 'x'.repeat(20_000) }));
    expect(big.status).toBe(413);
    expect(JSON.parse(big.body.toString()).error.code).toBe('payload_too_large');
    expect(sock.frames.filter((f) => f.type === 'preview_message')).toHaveLength(1);
  });

  it('stops injecting once the script is removed and forwarding is off', async () => {
    expect(await setScript({ script: null, forwardErrors: false })).toEqual({ script: null, forwardErrors: false });
    const res = await page('/');
    expect(res.body.toString()).toBe(PAGE);
    expect(res.headers.etag).toBe('"v1"');
  });
});
