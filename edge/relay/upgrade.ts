/**
 * Requests a Worker hands to a Session DO's `fetch`, which serves only
 * sockets (client, agent data socket, relayed preview socket) and preview
 * HTTP requests. What the Worker established (identity, the preview's
 * target) travels as one JSON descriptor in `X-Session-Call`, decoded with
 * zod by the DO; upgrades carry only the WebSocket headers of the client's
 * request besides it, so no client can smuggle in an identity of its own.
 */
import { z } from 'zod';
import { OutputFormat } from '../../shared/protocol/client';
import { PreviewRequestInfo } from '../session/preview-relay';

export const SESSION_CALL_HEADER = 'X-Session-Call';

export const SessionCall = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('client'), userId: z.string().min(1), origin: z.string(), output: OutputFormat }),
  z.object({ kind: z.literal('agent'), agentId: z.string().min(1) }),
  z.object({ kind: z.literal('preview'), info: PreviewRequestInfo }),
]);
export type SessionCall = z.infer<typeof SessionCall>;

const upgradeHeaders = ['Upgrade', 'Connection', 'Sec-WebSocket-Key', 'Sec-WebSocket-Version', 'Sec-WebSocket-Protocol', 'Sec-WebSocket-Extensions'];

/** The request a Worker hands to a Durable Object for a WebSocket upgrade: the upgrade headers and `identity`, nothing else of the client's. */
export function internalUpgrade(original: Request, identity: Record<string, string>): Request {
  const headers = new Headers();
  for (const name of upgradeHeaders) {
    const v = original.headers.get(name);
    if (v !== null) headers.set(name, v);
  }
  for (const [k, v] of Object.entries(identity)) headers.set(k, v);
  return new Request(original.url, { method: 'GET', headers });
}

/** A socket upgrade for a Session DO, described by `call`. */
export function sessionUpgrade(original: Request, call: SessionCall): Request {
  return internalUpgrade(original, { [SESSION_CALL_HEADER]: encodeURIComponent(JSON.stringify(call)) });
}

/** A preview request for a Session DO: the client's request as it came (headers, body), plus the descriptor. */
export function sessionPreview(original: Request, info: PreviewRequestInfo): Request {
  const headers = new Headers(original.headers);
  headers.set(SESSION_CALL_HEADER, encodeURIComponent(JSON.stringify({ kind: 'preview', info } satisfies SessionCall)));
  const hasBody = original.method !== 'GET' && original.method !== 'HEAD';
  return new Request(original.url, { method: original.method, headers, redirect: 'manual', ...(hasBody ? { body: original.body } : {}) });
}

/** The descriptor of a request the Worker made, or undefined when it has none that decodes. */
export function readSessionCall(request: Request): SessionCall | undefined {
  const raw = request.headers.get(SESSION_CALL_HEADER);
  if (raw === null) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(decodeURIComponent(raw));
  } catch {
    return undefined;
  }
  const parsed = SessionCall.safeParse(value);
  return parsed.success ? parsed.data : undefined;
}
