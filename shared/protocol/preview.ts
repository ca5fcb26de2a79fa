/**
 * Preview traffic on a session's data socket (edge Session DO ⇄ agent).
 * The agent only ever connects to the session's own container address and a
 * port that is declared for the session or detected listening in it; nothing
 * the browser sends chooses a host.
 *
 *   DO → agent  req   http.request {streamBase, port, method, path, headers, hasBody}
 *                     The request body (if hasBody) follows as HttpBody frames on streamBase
 *                     (End flag last). The agent answers res {status, headers} once the
 *                     container's response head arrives; the response body follows as
 *                     HttpBody frames on streamBase + 1 (End flag last). Both directions
 *                     use the byte-stream acks of ./byte-streams.ts.
 *   DO → agent  req   ws.open {streamBase, port, path, headers, protocols}
 *                     → {protocol} once the container accepted the upgrade. Messages then flow
 *                     as WsMessage frames: client → container on streamBase, container → client
 *                     on streamBase + 1 (Text flag for text messages; offset counts messages).
 *   either      event ws.close {streamBase, code, reason}
 *   DO → agent  req   ports.list {} → {ports: [{port, declared, open}]}
 *   DO → agent  req   ports.wait {port, timeoutMs} → {port} once it accepts connections
 *   agent → DO  event port {port, state: "open"|"close"} when a listening port appears or goes
 *   DO → agent  req   ports.declare {ports} (the session's declared ports, sent on attach)
 */
import { z } from 'zod';

const Port = z.number().int().min(1).max(65535);
const Headers = z.array(z.tuple([z.string().min(1).max(256), z.string().max(16_384)])).max(256);

export const HttpRequestParams = z.object({
  streamBase: z.number().int().nonnegative(),
  port: Port,
  method: z.string().regex(/^[A-Z]{1,16}$/),
  path: z.string().min(1).max(16_384).startsWith('/'),
  headers: Headers,
  hasBody: z.boolean(),
});
export type HttpRequestParams = z.infer<typeof HttpRequestParams>;
export const HttpResponseHead = z.object({ status: z.number().int().min(100).max(599), headers: Headers });
export type HttpResponseHead = z.infer<typeof HttpResponseHead>;

export const WsOpenParams = z.object({
  streamBase: z.number().int().nonnegative(),
  port: Port,
  path: z.string().min(1).max(16_384).startsWith('/'),
  headers: Headers,
  protocols: z.array(z.string().max(256)).max(32),
});
export type WsOpenParams = z.infer<typeof WsOpenParams>;
export const WsCloseEvent = z.object({ streamBase: z.number().int().nonnegative(), code: z.number().int().min(1000).max(4999), reason: z.string().max(123) });

export const PortsDeclareParams = z.object({ ports: z.array(Port).max(10) });
export const PortsWaitParams = z.object({ port: Port, timeoutMs: z.number().int().positive().max(300_000) });
export const PortEvent = z.object({ port: Port, state: z.enum(['open', 'close']) });
export type PortEvent = z.infer<typeof PortEvent>;
