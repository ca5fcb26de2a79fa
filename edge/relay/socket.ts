/**
 * Sending on and closing Durable Object WebSockets without caring whether the
 * peer is already gone: a socket that is closing throws, and its close
 * handler does the bookkeeping, so these never throw.
 */
export function trySend(ws: WebSocket, data: string | ArrayBuffer | Uint8Array): boolean {
  try {
    ws.send(data);
    return true;
  } catch {
    return false;
  }
}

/** Sends a value as one JSON text frame. */
export function sendJson(ws: WebSocket, frame: unknown): void {
  trySend(ws, JSON.stringify(frame));
}

export function safeClose(ws: WebSocket, code: number, reason: string): void {
  try {
    ws.close(code, reason.slice(0, 120));
  } catch {
    // Already closed.
  }
}
