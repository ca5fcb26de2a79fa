/** Preview settings, read once per isolate. */
import { boolSetting, durationSetting, perEnv, type Vars } from '../config';
import { log } from '../log';

export interface PreviewSettings {
  /** PREVIEW_DOMAIN (preview.localhost): previews answer on <sessionId>.<domain> and <port>-<sessionId>.<domain>. */
  readonly domain: string;
  /** Whether PREVIEW_DOMAIN was set: then the path form's links use the bare domain (`<domain>/<sessionId>/`), not the API's origin. */
  readonly domainSet: boolean;
  /** PREVIEW_PATH_FORM (on): serve the owner-only path forms (`/preview/<id>/` and `<domain>/<id>/`); `off` leaves only the host form. */
  readonly pathForm: boolean;
  /** PREVIEW_COOKIE_TTL (12h): how long the preview cookie set by a signed link lasts. */
  readonly cookieTtlSeconds: number;
  /** PREVIEW_LINK_TTL (5m): how long a signed preview link may be opened. */
  readonly linkTtlSeconds: number;
}

export const previewSettings = perEnv((env: Vars): PreviewSettings => {
  const domainSet = typeof env.PREVIEW_DOMAIN === 'string' && env.PREVIEW_DOMAIN !== '';
  const raw = domainSet ? String(env.PREVIEW_DOMAIN).toLowerCase() : 'preview.localhost';
  return Object.freeze({
    domain: raw.replace(/^\.+|\.+$/g, ''),
    domainSet,
    pathForm: boolSetting(env, 'PREVIEW_PATH_FORM', true),
    cookieTtlSeconds: durationSetting(env, 'PREVIEW_COOKIE_TTL', '12h', 60, 7 * 86_400),
    linkTtlSeconds: durationSetting(env, 'PREVIEW_LINK_TTL', '5m', 10, 86_400),
  });
});

/** Where the path form of a session's preview starts, seen from `edge` (a URL browsers use for this edge); null when the path form is off. */
export function pathFormBase(settings: Pick<PreviewSettings, 'domain' | 'domainSet' | 'pathForm'>, edge: URL, sessionId: string): string | null {
  if (!settings.pathForm) return null;
  if (!settings.domainSet) return `${edge.origin}/preview/${sessionId}`;
  return `${edge.protocol}//${settings.domain}${edge.port ? `:${edge.port}` : ''}/${sessionId}`;
}

let warnedFor: string | undefined;

/**
 * Logs, once per isolate and API host, an error-level warning when a
 * production edge serves previews on its own host or a subdomain of it:
 * previews would then share a site with the API (cookies, SameSite).
 * Called with the Host of a request that is not a preview's.
 */
export function warnIfPreviewDomainShared(env: Vars, apiHost: string | undefined): void {
  if (env.NODE_ENV !== 'production' || !apiHost) return;
  const api = apiHost.toLowerCase().replace(/:\d+$/, '');
  if (warnedFor === api) return;
  warnedFor = api;
  const { domain } = previewSettings(env);
  if (domain === api || domain.endsWith(`.${api}`)) {
    log('error', `PREVIEW_DOMAIN (${domain}) is the API's host (${api}) or a subdomain of it: previews share a site with the API. Use a separate registrable domain.`, {
      previewDomain: domain,
      apiHost: api,
    });
  }
}

export interface PreviewTarget {
  sessionId: string;
  /** Port named in the host (`<port>-<sessionId>.`), else the session's preview port. */
  port: number | null;
  /** The path inside the preview, with query. */
  path: string;
  /** `host` form (a preview subdomain: an origin of its own) or a `path` form (`/preview/<id>/` or `<domain>/<id>/`). */
  form: 'path' | 'host';
  /** What the browser sees before `path` (for Location rewriting and X-Forwarded-Prefix). */
  prefix: string;
}

const sessionPart = 'ses_[0-9a-f]{8,64}';

/**
 * Reads a preview target from the Host header: a preview subdomain (host
 * form), or the bare domain with the session id as the first path segment
 * (path form). Null when the request is not for a preview (a bare-domain
 * URL whose first segment is no session id goes on to the API's routes, so a
 * PREVIEW_DOMAIN equal to the API's host does not hide the API).
 */
export function targetFromHost(host: string | undefined, url: URL, domain: string): PreviewTarget | null {
  if (!host) return null;
  const name = host.toLowerCase().replace(/:\d+$/, '');
  if (name === domain) {
    const m = new RegExp(`^/(${sessionPart})(/.*)?$`).exec(url.pathname);
    if (!m) return null;
    return { sessionId: m[1]!, port: null, path: (m[2] ?? '/') + url.search, form: 'path', prefix: `/${m[1]}` };
  }
  if (!name.endsWith(`.${domain}`)) return null;
  const label = name.slice(0, -domain.length - 1);
  const m = new RegExp(`^(?:(\\d{1,5})-)?(${sessionPart})$`).exec(label);
  if (!m) return null;
  const port = m[1] ? Number(m[1]) : null;
  if (port !== null && (port < 1 || port > 65535)) return null;
  return { sessionId: m[2]!, port, path: url.pathname + url.search, form: 'host', prefix: '' };
}

/** Reads a preview target from a `/preview/<sessionId>/<path>` URL. */
export function targetFromPath(url: URL): PreviewTarget | null {
  const m = new RegExp(`^/preview/(${sessionPart})(/.*)?$`).exec(url.pathname);
  if (!m) return null;
  return { sessionId: m[1]!, port: null, path: (m[2] ?? '/') + url.search, form: 'path', prefix: `/preview/${m[1]}` };
}
