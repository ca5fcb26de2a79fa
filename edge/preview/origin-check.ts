/**
 * The preview's guard against other sites: a request that can change state
 * (any method but GET, HEAD and OPTIONS) or opens a WebSocket, and carries an
 * `Origin` other than the preview's own, is refused before it reaches the
 * agent. Browsers always send `Origin` on those requests, so a page on a
 * sibling preview (same site, so SameSite cookies go along) or on any other
 * site cannot act with the owner's preview cookie. No `Origin` at all is a
 * non-browser client, which holds the cookie itself, and passes.
 */
const SAFE = new Set(['GET', 'HEAD', 'OPTIONS']);

/** Why the request is refused, or null when it may pass. `ownOrigin` is `scheme://host[:port]` as the browser saw it. */
export function crossOriginRefusal(method: string, headers: Headers, ownOrigin: string): string | null {
  const upgrade = headers.get('Upgrade')?.toLowerCase() === 'websocket';
  if (!upgrade && SAFE.has(method.toUpperCase())) return null;
  const origin = headers.get('Origin');
  if (origin === null) return null;
  if (origin.toLowerCase() === ownOrigin.toLowerCase()) return null;
  return `${upgrade ? 'a WebSocket' : `a ${method.toUpperCase()} request`} from ${origin === 'null' ? 'an opaque origin' : origin} to this preview is refused: only the preview's own origin may do that`;
}
