/**
 * `/api/auth`: sign up, sign in, and who am I. Register and login answer with
 * the seed's shape `{message, token, user: {id, email, username}}`; a wrong
 * password and an unknown email get the same 401 after the same PBKDF2 work.
 */
import { Hono } from 'hono';
import { LoginRequest, RegisterRequest, type AuthResponse, type MeResponse, type PublicUser } from '../../shared/api/auth';
import { AppError, ErrorCode } from '../../shared/errors';
import { DUMMY_PASSWORD_HASH, hashPassword, verifyPassword } from '../auth/password';
import { signToken } from '../auth/tokens';
import { loadConfig, type EdgeConfig } from '../config';
import type { AppEnv } from '../env';
import { log } from '../log';
import { requireUser } from '../middleware/auth';
import { jsonBody } from '../middleware/validate';
import { openUserStore } from '../users/store';

export const authRoutes = new Hono<AppEnv>();

function issueToken(config: EdgeConfig, userId: string): Promise<string> {
  return signToken({ secret: config.jwtSecret, typ: 'user', sub: userId, ttlSeconds: config.jwtTtlSeconds });
}

function publicUser(u: { id: string; email: string; username: string }): PublicUser {
  return { id: u.id, email: u.email, username: u.username };
}

authRoutes.post('/register', jsonBody(RegisterRequest), async (c) => {
  const config = loadConfig(c.env);
  const { email, password, username } = c.req.valid('json');
  const users = await openUserStore(c.env.DB);
  const user = await users.create({ email, username, passwordHash: await hashPassword(password) });
  log('info', 'user registered', { requestId: c.get('requestId'), userId: user.id });
  const body: AuthResponse = { message: 'User created successfully', token: await issueToken(config, user.id), user: publicUser(user) };
  return c.json(body, 201);
});

authRoutes.post('/login', jsonBody(LoginRequest), async (c) => {
  const config = loadConfig(c.env);
  const { email, password } = c.req.valid('json');
  const users = await openUserStore(c.env.DB);
  const user = await users.findByEmail(email);
  const matches = await verifyPassword(password, user?.passwordHash ?? DUMMY_PASSWORD_HASH);
  if (!user || !matches) {
    log('info', 'login refused', { requestId: c.get('requestId') });
    throw new AppError(ErrorCode.InvalidCredentials, 'invalid email or password');
  }
  const body: AuthResponse = { message: 'Login successful', token: await issueToken(config, user.id), user: publicUser(user) };
  return c.json(body);
});

authRoutes.get('/me', requireUser(), (c) => {
  const p = c.get('principal');
  const body: MeResponse = { user: { id: p.userId, email: p.email, username: p.username } };
  return c.json(body);
});
