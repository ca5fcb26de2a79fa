/**
 * Header handling for preview requests at the edge: what goes to the dev
 * server and what comes back. The agent strips hop-by-hop headers on its side
 * as well; here the edge drops its own cookie and credentials, and keeps
 * redirects inside the preview.
 */
const hopByHop = new Set([
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
  'cf-connecting-ip',
  'x-mominai-host',
  // The Worker's descriptor for the Session DO (../relay/upgrade.ts): never the dev server's business.
  'x-session-call',
]);

/** Request headers for the dev server: no hop-by-hop ones, no preview cookie or edge credentials. */
export function upstreamHeaders(h: Headers, cookie: string, forwarded: Record<string, string>): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  const named = new Set((h.get('connection') ?? '').toLowerCase().split(',').map((s) => s.trim()).filter(Boolean));
  for (const [k, v] of h) {
    const key = k.toLowerCase();
    if (hopByHop.has(key) || named.has(key) || key.startsWith('sec-websocket-')) continue;
    if (key === 'cookie') {
      const kept = v
        .split(';')
        .map((c) => c.trim())
        .filter((c) => c && !c.startsWith(`${cookie}=`))
        .join('; ');
      if (kept) out.push(['cookie', kept]);
      continue;
    }
    out.push([key, v]);
  }
  for (const [k, v] of Object.entries(forwarded)) out.push([k.toLowerCase(), v]);
  return out;
}

/** Response headers for the browser; `Location` pointing at the dev server is rewritten into the preview. */
export function downstreamHeaders(headers: Array<[string, string]>, prefix: string, publicOrigin: string): Headers {
  const out = new Headers();
  for (const [k, v] of headers) {
    const key = k.toLowerCase();
    if (key === 'connection' || key === 'keep-alive' || key === 'transfer-encoding' || key === 'upgrade') continue;
    out.append(key, key === 'location' ? rewriteLocation(v, prefix, publicOrigin) : v);
  }
  return out;
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
