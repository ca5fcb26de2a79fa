/**
 * The IDE page as the edge serves it from Workers static assets, under both
 * local runners (`wrangler dev` and the Miniflare runner): `/` and the
 * bundle with the page's own security headers, API routes untouched, and a
 * preview host's `/` left to the preview (the Worker runs before the assets).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildWeb, type WebBuild } from '../../scripts/build-web';
import type { EdgeRunner } from '../../scripts/lib/stack';
import { rawRequest } from '../helpers/client';
import { TestStack } from '../helpers/stack';

const PAGE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; font-src 'self'; " +
  "frame-src *.preview.localhost:*; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

let web: WebBuild;
beforeAll(async () => {
  web = await buildWeb();
});

describe.each<EdgeRunner>(['wrangler', 'miniflare'])('IDE page assets (edge under %s)', (runner) => {
  const stack = new TestStack({ runner });

  beforeAll(async () => {
    await stack.startEdge();
  });
  afterAll(async () => {
    await stack.stop();
  });

  it('serves index.html at / with the page headers', async () => {
    const res = await rawRequest(stack.port, { path: '/' });
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(res.headers['content-security-policy']).toBe(PAGE_CSP);
    expect(res.headers['x-frame-options']).toBe('DENY');
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['referrer-policy']).toBe('no-referrer');
    expect(res.body.toString()).toContain('<script type="module" src="/app.js"></script>');
  });

  it('serves every file of the build with its content type', async () => {
    for (const f of web.files.filter((x) => x.name !== 'index.html')) {
      const res = await rawRequest(stack.port, { path: `/${f.name}` });
      expect(res.status, f.name).toBe(200);
      expect(res.headers['content-type'], f.name).toBe(f.name.endsWith('.css') ? 'text/css; charset=utf-8' : 'text/javascript; charset=utf-8');
      expect(res.body.length, f.name).toBe(f.bytes);
    }
  });

  it('leaves the API as it was: JSON 404 for a missing top-level file, the API headers on /health', async () => {
    const missing = await rawRequest(stack.port, { path: '/missing.js' });
    expect(missing.status).toBe(404);
    expect(JSON.parse(missing.body.toString())).toEqual({ error: { code: 'not_found', message: 'no route for GET /missing.js' } });
    const health = await rawRequest(stack.port, { path: '/health' });
    expect(health.status).toBe(200);
    expect(health.headers['content-security-policy']).toBe("default-src 'none'; frame-ancestors 'none'");
  });

  it("leaves a preview host's / to the preview, not the page", async () => {
    const res = await rawRequest(stack.port, { path: '/', host: `3000-ses_0123456789abcdef.preview.localhost:${stack.port}` });
    expect(res.status).toBe(404);
    expect(JSON.parse(res.body.toString()).error.code).toBe('not_found');
    expect(res.body.toString()).not.toContain('<!doctype html>');
  });
});
