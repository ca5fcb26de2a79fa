/**
 * The IDE page (web/, built into dist/web by scripts/build-web.ts), served
 * from Workers static assets through the ASSETS binding. wrangler.toml sets
 * `run_worker_first`, so every request reaches the Worker: previews are
 * routed by Host (previewByHost runs before this), and only the API host's
 * top-level files (`/`, `/app.js`, ...) are the page's. Anything else, and a
 * file the assets do not have, goes on to the API routes.
 *
 * The page gets its own security headers instead of the API's
 * `default-src 'none'`: its script and styles from its own origin (styles may
 * be inline: CodeMirror and xterm.js add <style> elements), fetch and
 * WebSocket to its own origin, and frames only from preview hosts.
 */
import type { MiddlewareHandler } from 'hono';
import type { AppEnv } from '../env';
import { previewSettings } from '../preview/settings';

const PAGE_PATH = /^\/(?:[\w-]+\.(?:html|js|css|svg|png|ico))?$/;

export function pageCsp(previewDomain: string): string {
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    "connect-src 'self'",
    "img-src 'self' data:",
    "font-src 'self'",
    `frame-src *.${previewDomain}:*`,
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

export function idePage(): MiddlewareHandler<AppEnv> {
  return async function idePage(c, next) {
    const assets = c.env.ASSETS;
    const method = c.req.method;
    if (!assets || (method !== 'GET' && method !== 'HEAD') || !PAGE_PATH.test(c.req.path)) return next();
    const found = await assets.fetch(c.req.raw);
    if (found.status === 404) return next();
    const res = new Response(found.body, found);
    res.headers.set('Content-Security-Policy', pageCsp(previewSettings(c.env).domain));
    res.headers.set('X-Frame-Options', 'DENY');
    res.headers.set('X-Content-Type-Options', 'nosniff');
    res.headers.set('Referrer-Policy', 'no-referrer');
    res.headers.set('Cross-Origin-Opener-Policy', 'same-origin');
    return res;
  };
}
