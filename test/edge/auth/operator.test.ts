/** The operator credential: OPERATOR_TOKEN (constant-time) or a `typ: operator` JWT. */
import { describe, expect, it } from 'vitest';
import { constantTimeEqual, verifyOperator } from '../../../edge/auth/operator';
import { signToken } from '../../../edge/auth/tokens';

const jwtSecret = 'j'.repeat(40);
const operatorToken = 'o'.repeat(40);

describe('verifyOperator', () => {
  it('accepts OPERATOR_TOKEN', async () => {
    await expect(verifyOperator({ operatorToken, jwtSecret }, operatorToken)).resolves.toBeUndefined();
  });

  it('accepts an operator JWT, with or without OPERATOR_TOKEN set', async () => {
    const token = await signToken({ secret: jwtSecret, typ: 'operator', sub: 'ops', ttlSeconds: 600 });
    await expect(verifyOperator({ operatorToken, jwtSecret }, token)).resolves.toBeUndefined();
    await expect(verifyOperator({ operatorToken: null, jwtSecret }, token)).resolves.toBeUndefined();
  });

  it.each([
    ['a near miss', operatorToken.slice(0, -1) + 'p', 'not the operator token'],
    ['a prefix', operatorToken.slice(0, 10), 'not the operator token'],
    ['empty', '', 'not the operator token'],
  ])('refuses %s with 401 invalid_token', async (_n, token, message) => {
    await expect(verifyOperator({ operatorToken, jwtSecret }, token)).rejects.toMatchObject({ code: 'invalid_token', status: 401, message });
  });

  it('refuses a user JWT and an operator JWT signed with another secret', async () => {
    const user = await signToken({ secret: jwtSecret, typ: 'user', sub: 'usr_1', ttlSeconds: 600 });
    await expect(verifyOperator({ operatorToken, jwtSecret }, user)).rejects.toMatchObject({ code: 'invalid_token', message: 'token rejected: typ claim invalid' });
    const forged = await signToken({ secret: 'x'.repeat(40), typ: 'operator', sub: 'ops', ttlSeconds: 600 });
    await expect(verifyOperator({ operatorToken, jwtSecret }, forged)).rejects.toMatchObject({ code: 'invalid_token', message: 'token signature invalid' });
  });

  it('refuses everything but a JWT when no OPERATOR_TOKEN is set', async () => {
    await expect(verifyOperator({ operatorToken: null, jwtSecret }, 'anything-at-all')).rejects.toMatchObject({ code: 'invalid_token' });
  });
});

describe('constantTimeEqual', () => {
  it('compares whole strings of any length', async () => {
    expect(await constantTimeEqual('abc', 'abc')).toBe(true);
    expect(await constantTimeEqual('abc', 'abd')).toBe(false);
    expect(await constantTimeEqual('abc', 'abcd')).toBe(false);
  });
});
