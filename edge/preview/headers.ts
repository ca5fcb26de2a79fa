/**
 * Header handling for preview requests at the edge: what goes to the dev
 * server and what comes back. The agent strips hop-by-hop headers on its side
 * as well.
 *
 * Upstream, nothing the edge uses between its parts and nothing a client
 * says about the path a request took reaches the dev server: the client's
 * `X-Forwarded-*`, `Forwarded`, `X-Real-IP` and `CF-*` headers are removed
 * and the edge sets its own `X-Forwarded-*` once; internal headers
 * (`X-Session-Call`, `X-Preview-Info`, `X-User-Id`, `X-Agent-*`, `X-File-*`,
 * `X-Mominai-*`) and every preview cookie are dropped.
 *
 * Downstream, redirects are kept inside the preview, a `Set-Cookie` never
 * sets one of our cookies nor a `Domain` (which would reach sibling
 * previews), and `Clear-Site-Data` is dropped (its "cookies" directive
 * clears the whole registrable domain, sibling previews included). On the
 * path forms, which share an origin with other previews, `Service-Worker-Allowed`
 * is dropped too (a worker must not claim scope outside the prefix) and
 * cookie paths are kept inside the prefix.
 */
import { isPreviewCookieName } from './cookie';

const dropped = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'host',
  'content-length',
  // What the client claims about the way its request came: the edge sets its own.
  'forwarded',
  'x-real-ip',
  'true-client-ip',
  'cdn-loop',
  // Internal to the edge (the Worker's descriptor for the Session DO, and names its parts use).
  'x-session-call',
  'x-preview-info',
  'x-user-id',
]);
const droppedPrefixes = ['x-forwarded-', 'cf-', 'x-mominai-', 'x-agent-', 'x-file-', 'sec-websocket-'];

function isDropped(key: string, named: ReadonlySet<string>): boolean {
  return dropped.has(key) || named.has(key) || droppedPrefixes.some((p) => key.startsWith(p));
}

/**
 * Request headers for the dev server: no hop-by-hop, forwarding or internal
 * ones, no preview cookie; then `forwarded` (the edge's own X-Forwarded-*).
 */
export function upstreamHeaders(h: Headers, cookie: string, forwarded: Record<string, string>): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  const named = new Set((h.get('connection') ?? '').toLowerCase().split(',').map((s) => s.trim()).filter(Boolean));
  h.forEach((v, k) => {
    const key = k.toLowerCase();
    if (isDropped(key, named)) return;
    if (key === 'cookie') {
      const kept = v
        .split(';')
        .map((c: string) => c.trim())
        .filter((c: string) => {
          const name = c.split('=')[0] ?? '';
          return c && name !== cookie && !isPreviewCookieName(name);
        })
        .join('; ');
      if (kept) out.push(['cookie', kept]);
      return;
    }
    out.push([key, v]);
  });
  for (const [k, v] of Object.entries(forwarded)) out.push([k.toLowerCase(), v]);
  return out;
}

/**
 * Response headers for the browser. `form` says whether the preview has an
 * origin of its own (`host`) or shares one under `prefix` (`path`).
 */
export function downstreamHeaders(headers: Array<[string, string]>, prefix: string, publicOrigin: string, form: 'host' | 'path' = 'host'): Headers {
  const out = new Headers();
  for (const [k, v] of headers) {
    const key = k.toLowerCase();
    if (key === 'connection' || key === 'keep-alive' || key === 'transfer-encoding' || key === 'upgrade' || key === 'clear-site-data') continue;
    if (key === 'service-worker-allowed' && form === 'path') continue;
    if (key === 'set-cookie') {
      const cookie = sanitiseSetCookie(v, form === 'path' ? prefix : '');
      if (cookie !== null) out.append(key, cookie);
      continue;
    }
    out.append(key, key === 'location' ? rewriteLocation(v, prefix, publicOrigin) : v);
  }
  return out;
}

/**
 * A dev server's Set-Cookie made safe to pass on, or null to drop it: one of
 * our cookie names is dropped, a `Domain` attribute removed (host-only), and
 * with a `prefix` a `Path` outside it is moved inside (`Path=/` → `Path=<prefix>/`).
 */
export function sanitiseSetCookie(value: string, prefix: string): string | null {
  const [pair = '', ...attrs] = value.split(';');
  const eq = pair.indexOf('=');
  const name = eq < 0 ? '' : pair.slice(0, eq).trim();
  if (isPreviewCookieName(name)) return null;
  const kept: string[] = [pair.trim()];
  for (const raw of attrs) {
    const attr = raw.trim();
    const key = attr.split('=')[0]!.trim().toLowerCase();
    if (key === 'domain') continue;
    if (key === 'path' && prefix) {
      const path = attr.slice(attr.indexOf('=') + 1).trim();
      const inside = path === prefix || path.startsWith(`${prefix}/`);
      kept.push(`Path=${inside ? path : `${prefix}${path.startsWith('/') ? path : `/${path}`}`}`);
      continue;
    }
    if (attr) kept.push(attr);
  }
  return kept.join('; ');
}

/** `/x` → `<prefix>/x`; `http://localhost:5173/x` (the dev server's own origin) → `<prefix>/x`; other origins unchanged. */
export function rewriteLocation(location: string, prefix: string, publicOrigin: string): string {
  if (location.startsWith('/') && !location.startsWith('//')) {
    return location.startsWith(`${prefix}/`) || location === prefix ? location : `${prefix}${location}`;
  }
  try {
    const u = new URL(location);
    if (/^(localhost|127\.0\.0\.1|0\.0\.0\.0|\[::1\])$/i.test(u.hostname)) return `${publicOrigin}${prefix}${u.pathname}${u.search}${u.hash}`;
  } catch {
    // A relative reference like `x/y`: the browser resolves it inside the preview already.
  }
  return location;
}
