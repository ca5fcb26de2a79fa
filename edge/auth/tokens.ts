/**
 * Signed tokens for every principal. Each kind has its own `typ` (in the JOSE
 * header and checked on verify), its own audience and, for users and agents,
 * its own secret, so no token can stand in for another. The algorithm is
 * pinned to HS256 on both sign and verify: `alg: none` and RS/HS confusion
 * are refused by jose before any signature check. Every token expires: `exp`
 * is set on sign and required on verify, and `aud` must be the kind's
 * audience as a plain string (jose alone would accept an array containing it).
 */
import { SignJWT, jwtVerify, errors as joseErrors, type JWTPayload } from 'jose';
import { AppError, ErrorCode } from '../../shared/errors';

export const TOKEN_ISSUER = 'mominai-edge';
export const TOKEN_ALG = 'HS256';

export type TokenType = 'user' | 'agent' | 'agent-session' | 'preview' | 'operator';

const audience: Record<TokenType, string> = {
  user: 'mominai:user',
  agent: 'mominai:agent',
  'agent-session': 'mominai:agent-session',
  preview: 'mominai:preview',
  operator: 'mominai:operator',
};

export interface SignOptions {
  secret: string;
  typ: TokenType;
  sub: string;
  /** Lifetime in seconds; every token has one. */
  ttlSeconds: number;
  claims?: Record<string, unknown>;
  now?: number;
}

const encoder = new TextEncoder();
const keyCache = new Map<string, Uint8Array>();
function key(secret: string): Uint8Array {
  let k = keyCache.get(secret);
  if (!k) {
    k = encoder.encode(secret);
    keyCache.set(secret, k);
  }
  return k;
}

export async function signToken({ secret, typ, sub, ttlSeconds, claims = {}, now }: SignOptions): Promise<string> {
  if (!Number.isInteger(ttlSeconds) || ttlSeconds <= 0) throw new TypeError('signToken: ttlSeconds must be a positive integer');
  const iat = Math.floor((now ?? Date.now()) / 1000);
  return new SignJWT({ ...claims })
    .setProtectedHeader({ alg: TOKEN_ALG, typ })
    .setIssuer(TOKEN_ISSUER)
    .setAudience(audience[typ])
    .setSubject(sub)
    .setIssuedAt(iat)
    .setJti(crypto.randomUUID())
    .setExpirationTime(iat + ttlSeconds)
    .sign(key(secret));
}

export interface VerifiedToken {
  sub: string;
  payload: JWTPayload;
}

/** Verifies a token of one kind; every failure is a 401 AppError with a reason. */
export async function verifyToken(secret: string, typ: TokenType, token: string): Promise<VerifiedToken> {
  if (typeof token !== 'string' || token.length === 0 || token.length > 8192) {
    throw new AppError(ErrorCode.InvalidToken, 'token missing or malformed');
  }
  try {
    const { payload } = await jwtVerify(token, key(secret), {
      algorithms: [TOKEN_ALG],
      issuer: TOKEN_ISSUER,
      audience: audience[typ],
      typ,
      clockTolerance: 5,
      requiredClaims: ['exp'],
    });
    if (payload.aud !== audience[typ]) throw new AppError(ErrorCode.InvalidToken, 'token rejected: aud claim invalid');
    if (typeof payload.sub !== 'string' || payload.sub.length === 0) {
      throw new AppError(ErrorCode.InvalidToken, 'token has no subject');
    }
    return { sub: payload.sub, payload };
  } catch (err) {
    if (err instanceof AppError) throw err;
    if (err instanceof joseErrors.JWTExpired) throw new AppError(ErrorCode.TokenExpired, 'token expired');
    if (err instanceof joseErrors.JWTClaimValidationFailed) {
      const missing = err.reason === 'missing';
      throw new AppError(ErrorCode.InvalidToken, `token rejected: ${err.claim} claim ${missing ? 'missing' : 'invalid'}`);
    }
    if (err instanceof joseErrors.JOSEAlgNotAllowed) throw new AppError(ErrorCode.InvalidToken, 'token algorithm not allowed');
    if (err instanceof joseErrors.JWSSignatureVerificationFailed) {
      throw new AppError(ErrorCode.InvalidToken, 'token signature invalid');
    }
    throw new AppError(ErrorCode.InvalidToken, 'token malformed');
  }
}
