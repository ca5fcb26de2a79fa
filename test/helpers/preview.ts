/**
 * Previews on the real stack: a session running a dev server with its
 * preview ready, and the signed preview links that set the preview cookie.
 */
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'vitest';
import { rawRequest, TestSocket, type Frame, type TestUser } from './client';
import { createSession } from './sessions';
import type { TestStack } from './stack';

/** The dev server stand-in most preview suites run (HTTP routes and a WebSocket echo). */
const FIXTURE_SERVER = path.resolve(__dirname, '../fixtures/preview-server.cjs');

/**
 * A session of `user` (the node test image, port 3000 declared) running
 * `node server.cjs` (the fixture server, or the source given) with the
 * preview of port 3000 ready. Returns the session's id, its open socket and
 * the `preview_ready` frame.
 */
export async function sessionWithPreview(stack: TestStack, user: TestUser, opts: { server?: string } = {}): Promise<{ id: string; sock: TestSocket; ready: Frame }> {
  const id = await createSession(stack, user, { image: 'mominai/node:test', ports: [3000] });
  const file = path.join(stack.stateDir, 'workspaces', user.id, id, 'server.cjs');
  if (opts.server === undefined) fs.copyFileSync(FIXTURE_SERVER, file);
  else fs.writeFileSync(file, opts.server);
  const sock = await TestSocket.open(stack, user.token, id);
  await sock.waitFor((f) => f.type === 'ready');
  const started = await sock.request('container_command', { command: 'node server.cjs' });
  expect(started.type, JSON.stringify(started)).toBe('process_started');
  const ready = await sock.request('start_preview', { port: 3000 }, 120_000);
  expect(ready.type, JSON.stringify(ready)).toBe('preview_ready');
  return { id, sock, ready };
}

/** Follows a signed preview link once, on the host it names, expecting its 302; returns the Set-Cookie it answered with, whole. */
export async function followPreviewLink(stack: TestStack, link: string): Promise<string> {
  const u = new URL(link);
  const res = await rawRequest(stack.port, { path: u.pathname + u.search, host: u.host });
  expect(res.status).toBe(302);
  return String(res.headers['set-cookie']?.[0] ?? '');
}

/** The preview cookie (`name=value`, ready for a Cookie header) a signed preview link sets. */
export async function previewCookie(stack: TestStack, link: string): Promise<string> {
  return (await followPreviewLink(stack, link)).split(';')[0]!;
}
