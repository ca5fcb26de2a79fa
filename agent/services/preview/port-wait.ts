/**
 * Waits until a port in the session accepts TCP connections: what
 * `ports.wait` (and behind it `start_preview`) answers on. A successful
 * connect is the only proof a dev server is ready; a LISTEN line in
 * /proc/net/tcp may belong to a socket bound only to the container's loopback.
 */
import net from 'node:net';
import { AppError, ErrorCode } from '../../../shared/errors';

export interface WaitForPortOptions {
  port: number;
  timeoutMs: number;
  /** The session's address now, or undefined while it has none (stopped, restarting). */
  address: () => Promise<string | undefined>;
  signal: AbortSignal;
  /** Pause between attempts (default 200 ms). */
  intervalMs?: number;
}

export async function waitForPort({ port, timeoutMs, address, signal, intervalMs = 200 }: WaitForPortOptions): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (signal.aborted) throw new AppError(ErrorCode.AgentUnavailable, 'the preview relay stopped');
    // A lookup that fails for a moment (the engine is busy) is retried; a refusal is final.
    const addr = await address().catch((err: unknown) => {
      if (err instanceof AppError) throw err;
      return undefined;
    });
    const left = deadline - Date.now();
    if (addr !== undefined && left > 0 && (await connects(addr, port, Math.min(left, 2_000), signal))) return;
    const wait = Math.min(intervalMs, deadline - Date.now());
    if (wait <= 0) throw new AppError(ErrorCode.Timeout, `port ${port} did not accept connections within ${timeoutMs} ms`, { port });
    await sleep(wait, signal);
  }
}

/** One connect attempt; true once the handshake completes. The socket is closed at once. */
function connects(host: string, port: number, timeoutMs: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (ok: boolean) => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      socket.destroy();
      resolve(ok);
    };
    const onAbort = () => done(false);
    const timer = setTimeout(() => done(false), timeoutMs);
    signal.addEventListener('abort', onAbort, { once: true });
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(finish, ms);
    function finish() {
      clearTimeout(timer);
      signal.removeEventListener('abort', finish);
      resolve();
    }
    signal.addEventListener('abort', finish, { once: true });
  });
}
