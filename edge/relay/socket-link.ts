/**
 * A request/response link over one agent socket: `req` frames whose answers
 * settle through PendingRequests, plus raw binary and event sends.
 */
import { AppError, ErrorCode } from '../../shared/errors';
import type { EdgeToAgentFrame } from '../../shared/protocol/tunnel';
import type { AgentLink } from '../session/process-relay';
import type { PendingRequests } from './pending';
import { trySend } from './socket';

export function socketLink(socket: WebSocket, pending: PendingRequests, owner = 'agent'): AgentLink {
  return {
    request: async (method, params, timeoutMs = 30_000) => {
      const { id, result } = pending.open(owner, timeoutMs, method);
      if (!trySend(socket, JSON.stringify({ type: 'req', id, method, params } satisfies EdgeToAgentFrame))) {
        pending.fail(id, new AppError(ErrorCode.AgentUnavailable, "the session's agent is not connected"));
      }
      return result;
    },
    sendBinary: (bytes) => trySend(socket, bytes),
    sendEvent: (event, data) => trySend(socket, JSON.stringify({ type: 'event', event, data } satisfies EdgeToAgentFrame)),
  };
}

/** Waits until one of `waiters` is called (its slot is pushed here) or `ms` pass. */
export function waitOrTimeout(waiters: Array<() => void>, ms: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      resolve();
    }
    waiters.push(done);
  });
}
