/**
 * A benchmark's set-up and teardown in one place. `withStack(opts, run)`
 * starts the stack (lib.ts `startStack`: edge, one Docker agent, a user) and
 * hands `run` a scope; the sessions and sockets made through the scope are
 * remembered, and once `run` returns, throws or is interrupted the sockets
 * are closed, the sessions deleted (a few at a time, each delete bounded, a
 * failure logged) and the stack stopped, which also removes by label any
 * container a failed delete left.
 *
 *   await withStack({ agentEnv: { LOG_LEVEL: 'info' } }, async (scope) => {
 *     const id = (await scope.session()).id;
 *     const sock = await scope.socket(id);
 *     …
 *   });
 */
import path from 'node:path';
import { createSession, deleteSession, log, openSocket, startStack, stopStack, withTimeout, type BenchStack, type SessionView, type StackOptions, type TestSocket } from './lib';

/** A delete runs for a few seconds; this bounds one that hangs (an agent that lapsed under load). */
const DELETE_TIMEOUT_MS = 60_000;
const DELETES_AT_ONCE = 6;

export class StackScope {
  private readonly sessions = new Set<string>();
  private readonly sockets: TestSocket[] = [];
  private readonly cleanups: Array<() => Promise<void> | void> = [];

  constructor(readonly b: BenchStack) {}

  /** Creates a running session of the bench image (or as `body` says); deleted at the end. */
  async session(body: Record<string, unknown> = {}): Promise<SessionView> {
    const s = await createSession(this.b, body);
    this.sessions.add(s.id);
    return s;
  }

  /** A session the benchmark created itself (a timed create): deleted at the end unless deleted before. */
  adopt(sessionId: string): void {
    this.sessions.add(sessionId);
  }

  /** Deletes a session now (untimed, between measurements). */
  async deleteSession(sessionId: string): Promise<void> {
    await deleteSession(this.b, sessionId);
    this.sessions.delete(sessionId);
  }

  /** lib.ts `openSocket`; closed at the end. */
  async socket(sessionId: string, opts?: Parameters<typeof openSocket>[2]): Promise<TestSocket> {
    const sock = await openSocket(this.b, sessionId, opts);
    this.sockets.push(sock);
    return sock;
  }

  /** Runs `cleanup` at the end, after the sockets close and before the sessions are deleted; the last deferred runs first. */
  defer(cleanup: () => Promise<void> | void): void {
    this.cleanups.unshift(cleanup);
  }

  /** The session's workspace folder on this host (what its container sees as /workspace). */
  workspace(sessionId: string): string {
    return path.join(this.b.stack.stateDir, 'workspaces', this.b.user.id, sessionId);
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.close();
    for (const cleanup of this.cleanups) await Promise.resolve().then(cleanup).catch((err: unknown) => log(`cleaning up: ${String(err)}`));
    const queue = [...this.sessions];
    if (queue.length > 1) log(`deleting ${queue.length} sessions`);
    const worker = async () => {
      for (let id = queue.shift(); id; id = queue.shift()) {
        await withTimeout(deleteSession(this.b, id), DELETE_TIMEOUT_MS, `deleting session ${id}`).catch((err: unknown) => log(String(err)));
      }
    };
    await Promise.all(Array.from({ length: DELETES_AT_ONCE }, worker));
    this.sessions.clear();
  }
}

/** Starts the stack, runs `run` with a scope on it, and always tears down what the scope made and the stack. */
export async function withStack<T>(opts: StackOptions, run: (scope: StackScope) => Promise<T>): Promise<T> {
  // startStack stops whatever it had started when it fails half-way.
  const b = await startStack(opts);
  const scope = new StackScope(b);
  try {
    return await run(scope);
  } finally {
    await scope.close().finally(() => stopStack(b));
  }
}
