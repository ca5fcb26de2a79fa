/**
 * Requests with bodies the edge refuses before reading them (another user's
 * session, no token, not JSON), each followed by ordinary requests on the
 * same keep-alive connection. An early answer that leaves the body unread
 * can break the connection behind a proxy (wrangler dev's answered the next
 * request with `503 Your worker restarted mid-request`); every status here
 * must be the expected one.
 */
import { Agent, fetch as undiciFetch } from 'undici';

export interface RefusalParty {
  token: string;
}

/** Runs `rounds` rounds and returns every request whose status was not the expected one ("label: got X, want Y"). */
export async function refusedBodiesThenNormal(baseUrl: string, owner: RefusalParty & { sessionId: string }, stranger: RefusalParty, rounds = 4): Promise<string[]> {
  // One connection for everything, so each request follows the refused one on the same socket.
  const dispatcher = new Agent({ connections: 1, pipelining: 1, keepAliveTimeout: 60_000 });
  const body = Buffer.alloc(512 * 1024, 0x61);
  const files = `${baseUrl}/api/containers/${owner.sessionId}`;
  const wrong: string[] = [];
  const send = async (label: string, want: number, path: string, init: { method: string; token?: string; type?: string; body?: Buffer | string }) => {
    const headers: Record<string, string> = {};
    if (init.token) headers.Authorization = `Bearer ${init.token}`;
    if (init.type) headers['Content-Type'] = init.type;
    const res = await undiciFetch(path, { method: init.method, headers, ...(init.body !== undefined ? { body: init.body } : {}), dispatcher });
    const text = await res.text();
    if (res.status !== want) wrong.push(`${label}: got ${res.status} ${text.slice(0, 200)}, want ${want}`);
  };
  try {
    for (let i = 0; i < rounds; i++) {
      await send('PUT on another user\'s session', 403, `${files}/files/refused-${i}.txt`, { method: 'PUT', token: stranger.token, type: 'application/octet-stream', body });
      await send('mkdir', 201, `${files}/mkdir`, { method: 'POST', token: owner.token, type: 'application/json', body: JSON.stringify({ path: `dir-${i}` }) });
      await send('PUT without a token', 401, `${files}/files/refused-${i}.txt`, { method: 'PUT', type: 'application/octet-stream', body });
      await send('rename', 200, `${files}/rename`, { method: 'POST', token: owner.token, type: 'application/json', body: JSON.stringify({ from: `dir-${i}`, to: `moved-${i}` }) });
      await send('create with a body that is not JSON', 415, `${baseUrl}/api/containers`, { method: 'POST', token: owner.token, type: 'text/plain', body });
      await send('DELETE', 200, `${files}/files/moved-${i}`, { method: 'DELETE', token: owner.token });
      await send('PUT to an unknown route', 404, `${baseUrl}/api/nowhere-${i}`, { method: 'PUT', token: owner.token, type: 'application/octet-stream', body });
      await send('PUT', 200, `${files}/files/kept-${i}.txt`, { method: 'PUT', token: owner.token, type: 'text/plain', body: `round ${i}` });
    }
  } finally {
    await dispatcher.close();
  }
  return wrong;
}
