/**
 * Headers between the Session DO and a dev server in the container, handled
 * as a proxy must (RFC 9110 §7.6.1): hop-by-hop headers, and any header the
 * `Connection` header names, describe one connection and never cross the
 * relay in either direction. The dev server sees `Host: localhost:<port>`,
 * the form dev servers accept by default (Vite refuses other hosts), unless
 * the DO passes the host to use in `x-mominai-host`. The host is only ever a
 * header value: the agent connects to the container's address whatever the
 * headers say. Headers internal to the edge and agent (`x-mominai-*`,
 * `x-session-call`, `x-preview-info`, `x-user-id`, `x-agent-*`, `x-file-*`)
 * never reach the dev server, even if a DO bug or a forged frame carried one.
 */
import { AppError, ErrorCode } from '../../../shared/errors';

export type HeaderList = Array<[string, string]>;

export const HOST_OVERRIDE_HEADER = 'x-mominai-host';

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'te', 'trailer', 'trailers', 'transfer-encoding', 'upgrade']);

/** The DO's response schema (shared/protocol/preview.ts): at most 256 headers, names ≤ 256, values ≤ 16 KiB. */
const MAX_HEADERS = 256;
const MAX_NAME = 256;
const MAX_VALUE = 16_384;

// RFC 9110 token characters; values may hold tab, visible ASCII and obs-text, never CR, LF or NUL.
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const BAD_VALUE = /[^\t\x20-\x7e\x80-\xff]/;
const HOST_VALUE = /^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

const INTERNAL = new Set(['x-session-call', 'x-preview-info', 'x-user-id']);
const INTERNAL_PREFIXES = ['x-mominai-', 'x-agent-', 'x-file-'];

/** A header the edge or agent uses between their parts: never the dev server's business. */
export function isInternalHeader(name: string): boolean {
  return INTERNAL.has(name) || INTERNAL_PREFIXES.some((p) => name.startsWith(p));
}

function isHopByHop(name: string, named: ReadonlySet<string>): boolean {
  return HOP_BY_HOP.has(name) || name.startsWith('proxy-') || named.has(name);
}

function connectionNamed(headers: Iterable<readonly [string, string]>): Set<string> {
  const named = new Set<string>();
  for (const [k, v] of headers) {
    if (k.toLowerCase() !== 'connection') continue;
    for (const token of v.split(',')) if (token.trim()) named.add(token.trim().toLowerCase());
  }
  return named;
}

export interface UpstreamHeaders {
  /** Lower-case names, Host included, in the order received. */
  headers: HeaderList;
  /** The Host value the dev server sees. */
  host: string;
}

/**
 * Request headers for the dev server. Refuses names and values a server could
 * misparse (the DO's come from a parsed request, so this only trips on a bug
 * or a forged frame). Drops `expect`: a relay that already holds the body
 * cannot honour `100-continue`. `extraDrop` lists more names to leave out.
 */
export function upstreamRequestHeaders(incoming: HeaderList, port: number, extraDrop: (name: string) => boolean = () => false): UpstreamHeaders {
  const named = connectionNamed(incoming);
  const headers: HeaderList = [];
  let override: string | undefined;
  for (const [rawName, value] of incoming) {
    if (!TOKEN.test(rawName)) throw new AppError(ErrorCode.ValidationFailed, `invalid header name ${JSON.stringify(rawName.slice(0, 64))}`);
    if (BAD_VALUE.test(value)) throw new AppError(ErrorCode.ValidationFailed, `invalid value for header ${rawName}`);
    const name = rawName.toLowerCase();
    if (name === HOST_OVERRIDE_HEADER) {
      if (!HOST_VALUE.test(value)) throw new AppError(ErrorCode.ValidationFailed, `${HOST_OVERRIDE_HEADER} must be host[:port]`);
      override = value;
      continue;
    }
    if (name === 'host' || name === 'expect' || isHopByHop(name, named) || isInternalHeader(name) || extraDrop(name)) continue;
    headers.push([name, value]);
  }
  const host = override ?? `localhost:${port}`;
  headers.unshift(['host', host]);
  return { headers, host };
}

/** Request headers as undici takes them: a flat [name, value, name, value, ...] list keeps repeated names. */
export function flatten(headers: HeaderList): string[] {
  return headers.flat();
}

/** Request headers as Node's http (under `ws`) takes them: repeated names become arrays. */
export function toNodeHeaders(headers: HeaderList): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of headers) {
    const prev = out[k];
    out[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
  }
  return out;
}

/**
 * Response headers for the DO, hop-by-hop ones removed, each value of a
 * repeated header (Set-Cookie) as its own entry. Whatever the DO's schema
 * would refuse is dropped and counted, so one odd header cannot fail a page.
 */
export function responseHeaders(raw: Record<string, string | string[] | undefined>): { headers: HeaderList; dropped: number } {
  const entries: HeaderList = [];
  for (const [k, v] of Object.entries(raw)) {
    if (v === undefined) continue;
    for (const value of Array.isArray(v) ? v : [v]) entries.push([k.toLowerCase(), value]);
  }
  const named = connectionNamed(entries);
  const headers: HeaderList = [];
  let dropped = 0;
  for (const [name, value] of entries) {
    if (isHopByHop(name, named)) continue;
    if (headers.length >= MAX_HEADERS || name.length > MAX_NAME || value.length > MAX_VALUE) {
      dropped++;
      continue;
    }
    headers.push([name, value]);
  }
  return { headers, dropped };
}

/**
 * The Origin a relayed WebSocket carries to the dev server. The edge has
 * already refused an upgrade whose Origin is not the preview's own, so what
 * arrives is that origin or none. The preview's own origin (from the edge's
 * `x-forwarded-proto` and `x-forwarded-host`) becomes `http://<host>`, the
 * origin of the Host the dev server sees, so servers that check Origin
 * against their host (Vite's HMR socket) accept it; no Origin stays none (a
 * non-browser client), and any other Origin passes unchanged, so the dev
 * server can refuse a cross-site socket too.
 */
export function upstreamOrigin(incoming: HeaderList, host: string): string | undefined {
  const get = (n: string) => incoming.find(([k]) => k.toLowerCase() === n)?.[1];
  const origin = get('origin');
  if (origin === undefined) return undefined;
  const proto = get('x-forwarded-proto');
  const fwdHost = get('x-forwarded-host');
  if (proto && fwdHost && origin.toLowerCase() === `${proto}://${fwdHost}`.toLowerCase()) return `http://${host}`;
  return origin;
}
