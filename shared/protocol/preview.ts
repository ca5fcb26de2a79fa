/**
 * Preview traffic on a session's data socket (edge Session DO ⇄ agent).
 * The agent only ever connects to the session's own container address and a
 * port that is declared for the session or detected listening in it; nothing
 * the browser sends chooses a host.
 *
 *   DO → agent  event http.request {streamBase, port, method, path, headers, hasBody}
 *                     The request body (if hasBody) follows as HttpBody frames on streamBase
 *                     (End flag last). The agent answers with exactly one of:
 *                     - an HttpHead frame on streamBase + 1 once the container's response head
 *                       arrives (payload: encodeHttpHead). With the End flag it carries the
 *                       whole body (a response of known length up to INLINE_BODY_MAX, or one
 *                       without a body): one message for a typical dev-server asset. Without
 *                       End, the body follows as HttpBody frames on streamBase + 1 from offset
 *                       0 (End flag last);
 *                     - event http.error {streamBase, error} when no response head came.
 *                     Both directions use the byte-stream acks of ./byte-streams.ts; a receiver
 *                     that gives up on a stream sends event stream.abort {streamId}.
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
import { WireError } from './tunnel';

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
export const HttpErrorEvent = z.object({ streamBase: z.number().int().nonnegative(), error: WireError });
export type HttpErrorEvent = z.infer<typeof HttpErrorEvent>;

/**
 * The body length a head declares: one Content-Length of plain decimal digits
 * (names lower-case, as both sides keep them), else undefined (none, several,
 * or malformed: the body's length is then unknown).
 */
export function declaredContentLength(headers: ReadonlyArray<readonly [string, string]>): number | undefined {
  let found: number | undefined;
  for (const [k, v] of headers) {
    if (k !== 'content-length') continue;
    const value = v.trim();
    if (found !== undefined || !/^\d{1,15}$/.test(value)) return undefined;
    found = Number(value);
  }
  return found;
}

/** Largest response body the agent sends inside its HttpHead frame (a known Content-Length up to this). */
export const INLINE_BODY_MAX = 256 * 1024;

/** HttpHead payload: [u32 length of the head's JSON][head JSON, UTF-8][body bytes, if inline]. */
export function encodeHttpHead(head: HttpResponseHead, body?: Uint8Array): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(head));
  const out = new Uint8Array(4 + json.byteLength + (body?.byteLength ?? 0));
  new DataView(out.buffer, out.byteOffset, 4).setUint32(0, json.byteLength);
  out.set(json, 4);
  if (body) out.set(body, 4 + json.byteLength);
  return out;
}

/** The head (validated) and the inline body bytes (a view, not a copy) of an HttpHead payload. */
export function decodeHttpHead(payload: Uint8Array): { head: HttpResponseHead; body: Uint8Array } {
  if (payload.byteLength < 4) throw new Error('HttpHead payload shorter than its length prefix');
  const length = new DataView(payload.buffer, payload.byteOffset, 4).getUint32(0);
  if (4 + length > payload.byteLength) throw new Error('HttpHead length prefix runs past the payload');
  const head = HttpResponseHead.parse(JSON.parse(new TextDecoder().decode(payload.subarray(4, 4 + length))));
  return { head, body: payload.subarray(4 + length) };
}

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
