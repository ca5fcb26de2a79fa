/**
 * The set-up real-stack suites share: the edge, one agent (waited for until
 * connected), a user and one session of the edge's DEFAULT_IMAGE; and its
 * end (the session deleted, the stack stopped).
 */
import { expect } from 'vitest';
import { api, registerUser, type TestUser } from './client';
import { ensureTestImage, type TestImage } from './images';
import type { TestAgent, TestStack } from './stack';

export interface OneSession {
  agent: TestAgent;
  user: TestUser;
  sessionId: string;
}

export async function startOneSession(
  stack: TestStack,
  opts: { image: TestImage; agentId: string; agentName: string; agentEnv?: Record<string, string>; userPrefix: string },
): Promise<OneSession> {
  await ensureTestImage(opts.image);
  await stack.startEdge();
  const agent = await stack.startAgent({ id: opts.agentId, name: opts.agentName, ...(opts.agentEnv ? { env: opts.agentEnv } : {}) });
  await stack.health((h) => h.agents.some((a) => a.id === opts.agentId && a.connected));
  const user = await registerUser(stack, opts.userPrefix);
  const res = await api<{ session: { id: string } }>(stack, 'POST', '/api/containers', { token: user.token, body: {} });
  expect(res.status).toBe(201);
  return { agent, user, sessionId: res.body.session.id };
}

export async function endOneSession(stack: TestStack, s: Partial<OneSession>): Promise<void> {
  if (s.sessionId && s.user) await api(stack, 'DELETE', `/api/containers/${s.sessionId}`, { token: s.user.token }).catch(() => undefined);
  await stack.stop();
}
