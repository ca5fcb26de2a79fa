/**
 * The client WebSocket (`GET /ws?token=<jwt>&sessionId=<id>`): JSON text
 * frames `{type, id?, payload}` both ways.
 *
 *   server → client on connect: `ready {session}`
 *   server → client on every status change: `container_status {status, session, reason?}`
 *   server → client before an idle stop: `idle_warning {stopAt, inMs}`
 *   client → server: a request `{type, id, payload}`; the reply echoes `id`.
 *   anything invalid or unknown → `{type: "error", id, payload: {code, message}}`,
 *   and the socket stays open.
 */
import { z } from 'zod';

export const ClientFrameId = z.union([z.string().min(1).max(128), z.number().int()]);

export const ClientFrame = z.object({
  type: z.string().min(1).max(64),
  id: ClientFrameId.optional(),
  payload: z.unknown().optional(),
});
export type ClientFrame = z.infer<typeof ClientFrame>;

export interface ServerFrame {
  type: string;
  id?: string | number;
  payload: unknown;
}
