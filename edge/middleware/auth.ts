/**
 * `requireUser()`: the one place a request's identity is read. It takes a
 * user token from `Authorization: Bearer <jwt>` (REST) or, with
 * `{ from: 'query' }`, from `?token=<jwt>` (the WebSocket upgrade, where
 * browsers cannot set headers), verifies it (HS256 with JWT_SECRET, `typ`
 * "user", issuer and audience pinned: see ../auth/tokens.ts), checks that the
 * account still exists, and sets `principal`. Every refusal is a 401:
 * `unauthorized` when no usable credential was sent, `invalid_token` or
 * `token_expired` when one was sent and failed.
 */
import type { MiddlewareHandler } from 'hono';
import { AppError, ErrorCode } from '../../shared/errors';
import { verifyOperator } from '../auth/operator';
import type { UserPrincipal } from '../auth/principal';
import { verifyToken } from '../auth/tokens';
import { loadConfig } from '../config';
import type { AppEnv, Env } from '../env';
import { openUserStore } from '../users/store';

export interface RequireUserOptions {
  /** Where the token is: the Authorization header (default) or the `token` query parameter. */
  from?: 'header' | 'query';
}

const MAX_HEADER_LENGTH = 8192;
const bearer = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;

export function requireUser({ from = 'header' }: RequireUserOptions = {}): MiddlewareHandler<AppEnv> {
  if (from !== 'header' && from !== 'query') throw new TypeError(`requireUser: unknown token source "${String(from)}"`);
  return async function requireUser(c, next) {
    const token = from === 'header' ? bearerToken(c.req.header('Authorization')) : queryToken(c.req.query('token'));
    c.set('principal', await authenticateUserToken(c.env, token));
    await next();
  };
}

/** The token in an `Authorization: Bearer <token>` header; 401 `unauthorized` when absent or not of that form. */
export function bearerToken(header: string | undefined): string {
  if (header === undefined || header.trim() === '') {
    throw new AppError(ErrorCode.Unauthorized, 'authentication required: send Authorization: Bearer <token>');
  }
  const match = header.length <= MAX_HEADER_LENGTH ? bearer.exec(header) : null;
  if (!match?.[1]) throw new AppError(ErrorCode.Unauthorized, 'malformed Authorization header: expected Bearer <token>');
  return match[1];
}

function queryToken(token: string | undefined): string {
  if (!token) throw new AppError(ErrorCode.Unauthorized, 'authentication required: pass ?token=<token>');
  return token;
}

/**
 * Verifies a user token and loads its account. The WebSocket route calls this
 * with the `?token=` value when it does not use the middleware form.
 */
export async function authenticateUserToken(env: Env, token: string): Promise<UserPrincipal> {
  const config = loadConfig(env);
  const { sub } = await verifyToken(config.jwtSecret, 'user', token);
  const users = await openUserStore(env.DB);
  const user = await users.findById(sub);
  if (!user) throw new AppError(ErrorCode.InvalidToken, 'token rejected: the account no longer exists');
  return { kind: 'user', userId: user.id, email: user.email, username: user.username };
}

/**
 * `requireOperator()`: routes for the operator (`/api/admin/*`). The token is
 * OPERATOR_TOKEN or a `typ: operator` JWT (see ../auth/operator.ts); anything
 * else is a 401 like a refused user token.
 */
export function requireOperator(): MiddlewareHandler<AppEnv> {
  return async function requireOperator(c, next) {
    await verifyOperator(loadConfig(c.env), bearerToken(c.req.header('Authorization')));
    await next();
  };
}

/** Whether the request carries a valid operator credential; never throws for a bad one (anonymous /health). */
export async function isOperator(env: Env, header: string | undefined): Promise<boolean> {
  if (header === undefined) return false;
  try {
    await verifyOperator(loadConfig(env), bearerToken(header));
    return true;
  } catch {
    return false;
  }
}
