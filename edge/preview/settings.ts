/** Preview settings, read once per isolate. */
import { durationSetting } from '../config';
import type { Env } from '../env';

export interface PreviewSettings {
  /** PREVIEW_DOMAIN (preview.localhost): previews answer on <sessionId>.<domain> and <port>-<sessionId>.<domain>. */
  readonly domain: string;
  /** PREVIEW_COOKIE_TTL (12h): how long the preview cookie set by a signed link lasts. */
  readonly cookieTtlSeconds: number;
  /** PREVIEW_LINK_TTL (5m): how long a signed preview link may be opened. */
  readonly linkTtlSeconds: number;
}

let cached: { env: Env; settings: PreviewSettings } | undefined;

export function previewSettings(env: Env): PreviewSettings {
  if (cached?.env === env) return cached.settings;
  const raw = typeof env.PREVIEW_DOMAIN === 'string' && env.PREVIEW_DOMAIN ? env.PREVIEW_DOMAIN.toLowerCase() : 'preview.localhost';
  const settings: PreviewSettings = Object.freeze({
    domain: raw.replace(/^\.+|\.+$/g, ''),
    cookieTtlSeconds: durationSetting(env, 'PREVIEW_COOKIE_TTL', '12h', 60, 7 * 86_400),
    linkTtlSeconds: durationSetting(env, 'PREVIEW_LINK_TTL', '5m', 10, 86_400),
  });
  cached = { env, settings };
  return settings;
}

export interface PreviewTarget {
  sessionId: string;
  /** Port named in the host (`<port>-<sessionId>.`), else the session's preview port. */
  port: number | null;
  /** The path inside the preview, with query. */
  path: string;
  /** `path` form (`/preview/<id>/...`) or `host` form (a preview subdomain). */
  form: 'path' | 'host';
  /** What the browser sees before `path` (for Location rewriting and X-Forwarded-Prefix). */
  prefix: string;
}

const sessionPart = 'ses_[0-9a-f]{8,64}';

/** Reads a preview target from the Host header, or null when the host is not a preview host. */
export function targetFromHost(host: string | undefined, url: URL, domain: string): PreviewTarget | null {
  if (!host) return null;
  const name = host.toLowerCase().replace(/:\d+$/, '');
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

export function cookieName(sessionId: string): string {
  return `mominai_preview_${sessionId}`;
}
