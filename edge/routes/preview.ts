/**
 * Preview routes. Two forms reach a session's dev server:
 *   path form   /preview/<sessionId>/<path>            (the seed's)
 *   host form   <sessionId>.<PREVIEW_DOMAIN>/<path> or <port>-<sessionId>.<PREVIEW_DOMAIN>/<path>
 *   bare domain <PREVIEW_DOMAIN>/<sessionId>/<path>          (path form off the API's origin)
 * The host form is recommended and the only one that serves public ports or
 * anyone but the owner: the app gets its own origin, so its cookies and
 * scripts are kept away from the API's and from other previews. The path
 * forms share an origin with other previews, so they are owner-only and their
 * responses are sanitised (../preview/headers.ts); PREVIEW_PATH_FORM=off
 * turns them off. Access is by a cookie that a short-lived signed link sets
 * (`/__mominai/auth?ticket=`, ../preview/cookie.ts), checked here; a request
 * that could change state from another origin is refused here too
 * (../preview/origin-check.ts); the Session DO applies the owner and
 * public-port rules. Preview responses do not get the API's security
 * headers: they are the app's.
 */
import type { Context, MiddlewareHandler } from 'hono';
import { AppError, ErrorCode } from '../../shared/errors';
import { signToken, verifyToken } from '../auth/tokens';
import { loadConfig } from '../config';
import type { AppEnv } from '../env';
import { refuse } from '../errors';
import { previewCookie, previewCookieName } from '../preview/cookie';
import { crossOriginRefusal } from '../preview/origin-check';
import { pathFormBase, previewSettings, targetFromHost, targetFromPath, warnIfPreviewDomainShared, type PreviewTarget } from '../preview/settings';
import type { PreviewRequestInfo } from '../session/preview-relay';
import { sessionPreview } from '../relay/upgrade';
import { requireSession } from '../fleet/cached';
import { sessionOf } from './containers';

const AUTH_PATH = '/__mominai/auth';

function readCookie(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === name) return v.join('=');
  }
  return undefined;
}

/** The user a preview cookie names, or null when there is no valid cookie for this session. */
async function cookieUser(c: Context<AppEnv>, target: PreviewTarget, name: string): Promise<string | null> {
  const token = readCookie(c.req.header('Cookie'), name);
  if (!token) return null;
  try {
    const { sub, payload } = await verifyToken(loadConfig(c.env).jwtSecret, 'preview', token);
    return payload.sid === target.sessionId && payload.use === 'cookie' ? sub : null;
  } catch {
    return null;
  }
}

async function handle(c: Context<AppEnv>, target: PreviewTarget): Promise<Response> {
  const url = new URL(c.req.url);
  const pathOnly = target.path.split('?')[0];
  if (pathOnly === AUTH_PATH) return setCookie(c, target, url);
  if (target.form === 'path' && url.pathname === target.prefix) {
    return c.redirect(`${target.prefix}/${url.search}`, 301);
  }
  const origin = `${url.protocol}//${c.req.header('Host') ?? url.host}`;
  const refusal = crossOriginRefusal(c.req.method, c.req.raw.headers, origin);
  if (refusal) throw new AppError(ErrorCode.Forbidden, refusal);
  const name = previewCookieName(target.sessionId, target.form, url);
  const info: PreviewRequestInfo = {
    userId: await cookieUser(c, target, name),
    port: target.port,
    path: target.path,
    prefix: target.prefix,
    origin,
    cookieName: name,
    form: target.form,
    clientIp: c.req.header('CF-Connecting-IP') ?? null,
  };
  await requireSession(c.env, target.sessionId);
  return sessionOf(c.env, target.sessionId).fetch(sessionPreview(c.req.raw, info));
}

/** Exchanges a signed link for the preview cookie, then sends the browser to the clean URL. */
async function setCookie(c: Context<AppEnv>, target: PreviewTarget, url: URL): Promise<Response> {
  const config = loadConfig(c.env);
  const settings = previewSettings(c.env);
  const ticket = url.searchParams.get('ticket') ?? '';
  const { sub, payload } = await verifyToken(config.jwtSecret, 'preview', ticket);
  if (payload.sid !== target.sessionId || payload.use !== 'link') throw new AppError(ErrorCode.Forbidden, 'this link is for another preview');
  const cookie = await signToken({
    secret: config.jwtSecret,
    typ: 'preview',
    sub,
    ttlSeconds: settings.cookieTtlSeconds,
    claims: { sid: target.sessionId, use: 'cookie' },
  });
  const path = target.form === 'path' ? `${target.prefix}/` : '/';
  return new Response(null, {
    status: 302,
    headers: {
      Location: path,
      'Set-Cookie': previewCookie(previewCookieName(target.sessionId, target.form, url), cookie, path, settings.cookieTtlSeconds, url),
      'Cache-Control': 'no-store',
    },
  });
}

/** Serves previews addressed by Host (the subdomain form) before anything else runs. */
export function previewByHost(): MiddlewareHandler<AppEnv> {
  return async function previewByHost(c, next) {
    const settings = previewSettings(c.env);
    const target = targetFromHost(c.req.header('Host'), new URL(c.req.url), settings.domain);
    if (!target) {
      warnIfPreviewDomainShared(c.env, c.req.header('Host'));
      return next();
    }
    try {
      if (target.form === 'path' && !settings.pathForm) throw new AppError(ErrorCode.NotFound, 'the path form of previews is off (PREVIEW_PATH_FORM): use the preview host');
      return await handle(c, target);
    } catch (err) {
      return refuse(c.req.raw, err);
    }
  };
}

/** Serves `/preview/<sessionId>/...` (the path form). */
export function previewByPath(): MiddlewareHandler<AppEnv> {
  return async function previewByPath(c, next) {
    if (!c.req.path.startsWith('/preview/')) return next();
    const target = targetFromPath(new URL(c.req.url));
    if (!target) return refuse(c.req.raw, new AppError(ErrorCode.NotFound, 'no such preview'));
    try {
      if (!previewSettings(c.env).pathForm) throw new AppError(ErrorCode.NotFound, 'the path form of previews is off (PREVIEW_PATH_FORM): use the preview host');
      return await handle(c, target);
    } catch (err) {
      return refuse(c.req.raw, err);
    }
  };
}

/**
 * A short-lived signed link that opens a session's preview for its owner:
 * `url` in the host form, `pathUrl` in a path form (on the bare
 * PREVIEW_DOMAIN when it is set, else under the API's `/preview/`; the host
 * form's link when PREVIEW_PATH_FORM is off).
 */
export async function previewLink(c: Context<AppEnv>, sessionId: string, userId: string, port: number | null): Promise<{ url: string; pathUrl: string; expiresIn: number }> {
  const config = loadConfig(c.env);
  const settings = previewSettings(c.env);
  const ticket = await signToken({
    secret: config.jwtSecret,
    typ: 'preview',
    sub: userId,
    ttlSeconds: settings.linkTtlSeconds,
    claims: { sid: sessionId, use: 'link' },
  });
  const url = new URL(c.req.url);
  const edgePort = url.port ? `:${url.port}` : '';
  const host = `${port ? `${port}-` : ''}${sessionId}.${settings.domain}`;
  const hostBase = `${url.protocol}//${host}${edgePort}`;
  return {
    url: `${hostBase}${AUTH_PATH}?ticket=${ticket}`,
    pathUrl: `${pathFormBase(settings, url, sessionId) ?? hostBase}${AUTH_PATH}?ticket=${ticket}`,
    expiresIn: settings.linkTtlSeconds,
  };
}
