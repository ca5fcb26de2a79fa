/**
 * The start most real-stack suites share: the edge with one agent it reports
 * connected, and sessions created through the API.
 */
import { expect } from 'vitest';
import { api, type TestUser } from './client';
import { ensureTestImage, type TestImage } from './images';
import type { TestAgent, TestStack } from './stack';

/**
 * Starts the stack's edge and one agent named `agentName` (with `agentEnv`
 * added to its environment); resolves once /health shows it connected.
 * `image` is built first when missing.
 */
export async function startEdgeWithAgent(stack: TestStack, opts: { agentName: string; agentEnv?: Record<string, string>; image?: TestImage }): Promise<TestAgent> {
  if (opts.image) await ensureTestImage(opts.image);
  await stack.startEdge();
  const agent = await stack.startAgent({ name: opts.agentName, ...(opts.agentEnv ? { env: opts.agentEnv } : {}) });
  await stack.health((h) => h.agents.some((a) => a.id === agent.id && a.connected));
  return agent;
}

/** Creates a session for `user` (POST /api/containers with `body`), expecting 201; returns its id. */
export async function createSession(stack: TestStack, user: TestUser, body: Record<string, unknown> = {}): Promise<string> {
  const res = await api<{ session: { id: string } }>(stack, 'POST', '/api/containers', { token: user.token, body });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.session.id;
}
