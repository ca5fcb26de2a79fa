/**
 * Listening ports of a session for the preview service: read by the
 * session's daemon from /proc/net/tcp{,6} when it has one (no exec, so the
 * per-second poll costs dockerd nothing), else through `fallback` (an exec of
 * `cat` in the container). Loopback-only sockets are left out: the preview
 * connects to the container's own address.
 */
import { parseProcNetTcp } from '../../services/preview/proc-net';
import type { Runtime } from '../runtime';

export function daemonListListening(runtime: Runtime, sessionId: string, fallback: () => Promise<number[]>): () => Promise<number[]> {
  const read = runtime.procNetTcp?.bind(runtime);
  if (!read) return fallback;
  return async () => {
    const text = await read(sessionId);
    return text === null ? fallback() : parseProcNetTcp(text, { includeLoopback: false });
  };
}
