/**
 * Token verification: every kind needs `exp`, and `aud` must be exactly the
 * kind's audience (a JSON array that merely contains it is refused).
 */
import { SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { AppError } from '../../../shared/errors';
import { signToken, TOKEN_ISSUER, verifyToken, type TokenType } from '../../../edge/auth/tokens';

const SECRET = 's'.repeat(40);
const key = new TextEncoder().encode(SECRET);
const KINDS: TokenType[] = ['user', 'agent', 'agent-session', 'preview', 'operator'];
const AUD: Record<TokenType, string> = {
  user: 'mominai:user',
  agent: 'mominai:agent',
  'agent-session': 'mominai:agent-session',
  preview: 'mominai:preview',
  operator: 'mominai:operator',
};

/** A token built by hand, so a test can leave out or bend any claim. */
function craft(typ: TokenType, claims: Record<string, unknown>, exp: number | null): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  let jwt = new SignJWT({ iss: TOKEN_ISSUER, sub: 'x_1', iat: now, ...claims }).setProtectedHeader({ alg: 'HS256', typ });
  if (exp !== null) jwt = jwt.setExpirationTime(now + exp);
  return jwt.sign(key);
}

async function refusal(p: Promise<unknown>): Promise<{ code: string; status: number; message: string }> {
  try {
    await p;
  } catch (err) {
    if (err instanceof AppError) return { code: err.code, status: err.status, message: err.message };
    throw err;
  }
  throw new Error('the token was accepted');
}

describe('verifyToken', () => {
  describe.each(KINDS)('a %s token', (typ) => {
    it('is accepted with exp and the exact audience', async () => {
      const token = await craft(typ, { aud: AUD[typ] }, 600);
      await expect(verifyToken(SECRET, typ, token)).resolves.toMatchObject({ sub: 'x_1' });
    });

    it('is refused without exp (401 invalid_token naming the claim)', async () => {
      const token = await craft(typ, { aud: AUD[typ] }, null);
      expect(await refusal(verifyToken(SECRET, typ, token))).toEqual({ code: 'invalid_token', status: 401, message: 'token rejected: exp claim missing' });
    });

    it('is refused when aud is an array that contains the audience', async () => {
      const token = await craft(typ, { aud: [AUD[typ], 'someone-else'] }, 600);
      expect(await refusal(verifyToken(SECRET, typ, token))).toEqual({ code: 'invalid_token', status: 401, message: 'token rejected: aud claim invalid' });
    });

    it('is refused when aud is an array of just the audience', async () => {
      const token = await craft(typ, { aud: [AUD[typ]] }, 600);
      expect(await refusal(verifyToken(SECRET, typ, token))).toEqual({ code: 'invalid_token', status: 401, message: 'token rejected: aud claim invalid' });
    });
  });

  it('past exp is token_expired', async () => {
    const token = await signToken({ secret: SECRET, typ: 'user', sub: 'u', ttlSeconds: 60, now: Date.now() - 3_600_000 });
    expect(await refusal(verifyToken(SECRET, 'user', token))).toMatchObject({ code: 'token_expired', status: 401 });
  });
});

describe('signToken', () => {
  it('always sets exp', async () => {
    const token = await signToken({ secret: SECRET, typ: 'agent', sub: 'agt_1', ttlSeconds: 90 * 86_400 });
    const { payload } = await verifyToken(SECRET, 'agent', token);
    expect(payload.exp! - payload.iat!).toBe(90 * 86_400);
  });

  it('refuses to sign a token that would never expire', async () => {
    await expect(signToken({ secret: SECRET, typ: 'agent', sub: 'agt_1', ttlSeconds: undefined as unknown as number })).rejects.toThrow(
      'signToken: ttlSeconds must be a positive integer',
    );
  });
});
