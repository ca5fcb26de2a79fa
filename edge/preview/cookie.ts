/**
 * The preview cookie: what a signed link sets and every preview request is
 * checked with. It is host-only (never a `Domain`), so a sibling preview
 * cannot read or overwrite it, and where the browser allows `Secure` it is
 * prefixed: `__Host-` on the host form (Path=/), `__Secure-` on the path
 * forms (their Path is the preview's prefix, which `__Host-` forbids). The
 * prefix is what stops a sibling preview tossing a `Domain=` cookie of the
 * same name at this host; the edge accepts only the prefixed name then.
 *
 * `SameSite=None; Partitioned` lets the preview work in a top-level tab and
 * inside an iframe of an IDE page on another site: Chromium blocks
 * unpartitioned third-party cookies (measured with Chromium 156 headless:
 * only the Partitioned one reached a cross-site iframe), and a partitioned
 * cookie set inside the IDE's iframe is kept under the IDE's site. SameSite is
 * not what keeps other sites out: the Origin check (./origin-check.ts) is.
 *
 * Chromium treats `http://localhost`, `http://*.localhost` and
 * `http://127.0.0.1` as secure contexts and accepts `Secure` and `__Host-`
 * cookies from them (measured), so development gets the same cookie as
 * production. On other plain-HTTP hosts `Secure` would be refused, so the
 * cookie there is unprefixed and `SameSite=Lax` (no cross-site iframes).
 */
const BASE = 'mominai_preview_';

/** Whether browsers store `Secure` cookies from this origin: HTTPS, or a loopback host. */
export function secureCapable(url: URL): boolean {
  if (url.protocol === 'https:') return true;
  const h = url.hostname.toLowerCase();
  return h === 'localhost' || h.endsWith('.localhost') || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) || h === '[::1]';
}

/** The cookie's name for a session's preview in this form, as served at `url`. */
export function previewCookieName(sessionId: string, form: 'host' | 'path', url: URL): string {
  if (!secureCapable(url)) return `${BASE}${sessionId}`;
  return `${form === 'host' ? '__Host-' : '__Secure-'}${BASE}${sessionId}`;
}

/** The Set-Cookie value for `token`, scoped to `path`. */
export function previewCookie(name: string, token: string, path: string, maxAgeSeconds: number, url: URL): string {
  const attrs = secureCapable(url) ? 'Secure; SameSite=None; Partitioned' : 'SameSite=Lax';
  return `${name}=${token}; Path=${path}; HttpOnly; ${attrs}; Max-Age=${maxAgeSeconds}`;
}

/** Whether a cookie name is one of ours (any session, any prefix, any case): never the dev server's to read or set. */
export function isPreviewCookieName(name: string): boolean {
  return name.trim().toLowerCase().replace(/^__(host|secure)-/, '').startsWith(BASE);
}
