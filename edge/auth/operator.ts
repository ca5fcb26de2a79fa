/**
 * The operator's credential: `Authorization: Bearer <OPERATOR_TOKEN>`, or a
 * `typ: operator` JWT signed with JWT_SECRET. The static token is compared in
 * constant time (both sides hashed to SHA-256 first, so neither the content
 * nor the length of a guess shows in the time taken).
 */
import { AppError, ErrorCode } from '../../shared/errors';
import { timingSafeEqual } from './password';
import { verifyToken } from './tokens';

const encoder = new TextEncoder();

async function sha256(text: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', encoder.encode(text)));
}

/** True when `given` equals `expected`, in time that depends on neither. */
export async function constantTimeEqual(given: string, expected: string): Promise<boolean> {
  const [a, b] = await Promise.all([sha256(given), sha256(expected)]);
  return timingSafeEqual(a, b);
}

export interface OperatorSecrets {
  operatorToken: string | null;
  jwtSecret: string;
}

/**
 * Checks a bearer token as the operator's; throws 401 `invalid_token` (or
 * `token_expired`) when it is neither the operator token nor a valid
 * operator JWT.
 */
export async function verifyOperator(secrets: OperatorSecrets, token: string): Promise<void> {
  if (secrets.operatorToken !== null && (await constantTimeEqual(token, secrets.operatorToken))) return;
  // Only something shaped like a JWT is tried as one; the message then says why it failed.
  if (token.split('.').length === 3) {
    await verifyToken(secrets.jwtSecret, 'operator', token);
    return;
  }
  throw new AppError(ErrorCode.InvalidToken, 'not the operator token');
}
