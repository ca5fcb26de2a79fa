/**
 * The request a Worker hands to a Durable Object for a WebSocket upgrade:
 * the upgrade headers and the identity the Worker established, and nothing
 * else of the client's, so no client can smuggle in `X-User-Id` or
 * `X-Agent-Id` of its own.
 */
export function internalUpgrade(original: Request, identity: Record<string, string>): Request {
  const headers = new Headers();
  for (const name of ['Upgrade', 'Connection', 'Sec-WebSocket-Key', 'Sec-WebSocket-Version', 'Sec-WebSocket-Protocol', 'Sec-WebSocket-Extensions']) {
    const v = original.headers.get(name);
    if (v !== null) headers.set(name, v);
  }
  for (const [k, v] of Object.entries(identity)) headers.set(k, v);
  return new Request(original.url, { method: 'GET', headers });
}
