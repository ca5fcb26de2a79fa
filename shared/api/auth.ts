/**
 * Request and response bodies of /api/auth/*. The edge validates requests
 * with these schemas; clients and tests may import the types.
 */
import { z } from 'zod';

/** 3–32 letters, digits, `_` or `-`; unique regardless of case. */
export const USERNAME_PATTERN = /^[A-Za-z0-9_-]{3,32}$/;
export const PASSWORD_MIN = 8;
export const PASSWORD_MAX = 128;
export const EMAIL_MAX = 254;

const email = z.email({ message: 'must be a valid email address' }).max(EMAIL_MAX);

export const RegisterRequest = z.object({
  email,
  password: z.string().min(PASSWORD_MIN).max(PASSWORD_MAX),
  username: z.string().regex(USERNAME_PATTERN, { message: 'must be 3-32 letters, digits, "_" or "-"' }),
});
export type RegisterRequest = z.infer<typeof RegisterRequest>;

export const LoginRequest = z.object({
  email,
  // Any length up to the maximum: a short password simply does not match.
  password: z.string().min(1).max(PASSWORD_MAX),
});
export type LoginRequest = z.infer<typeof LoginRequest>;

export interface PublicUser {
  id: string;
  email: string;
  username: string;
}

export interface AuthResponse {
  message: string;
  token: string;
  user: PublicUser;
}

export interface MeResponse {
  user: PublicUser;
}
