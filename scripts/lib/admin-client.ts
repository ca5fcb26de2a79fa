/**
 * The operator's side of `/api/admin/agents`, for `npm start`, `npm run
 * agent:token`, `npm run agent:revoke` and the end-to-end tests. The edge
 * keeps the agent registry in its own D1 and mints agent tokens itself, so
 * these need only its URL and OPERATOR_TOKEN (never AGENT_SECRET), and work
 * the same against a local edge and a deployed one. Answers are checked
 * with zod.
 */
import { z } from 'zod';

export const RegisteredAgent = z.object({
  id: z.string(),
  name: z.string(),
  createdAt: z.string(),
  expiresAt: z.string(),
  revokedAt: z.string().nullable(),
});
export type RegisteredAgent = z.infer<typeof RegisteredAgent>;

const ErrorBody = z.object({ error: z.object({ code: z.string(), message: z.string() }) });

export class AdminError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface AdminTarget {
  /** The edge's HTTP(S) URL, e.g. http://127.0.0.1:3001. */
  edgeUrl: string;
  operatorToken: string;
}

async function call<S extends z.ZodType>(target: AdminTarget, method: string, path: string, schema: S, body?: unknown): Promise<z.infer<S>> {
  let res: Response;
  try {
    res = await fetch(new URL(path, target.edgeUrl), {
      method,
      headers: { Authorization: `Bearer ${target.operatorToken}`, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(30_000),
    });
  } catch (err) {
    throw new AdminError(0, 'unreachable', `cannot reach the edge at ${target.edgeUrl}: ${err instanceof Error ? err.message : String(err)}`);
  }
  const json: unknown = await res.json().catch(() => null);
  if (!res.ok) {
    const e = ErrorBody.safeParse(json);
    throw new AdminError(res.status, e.success ? e.data.error.code : 'http_error', e.success ? e.data.error.message : `HTTP ${res.status}`);
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) throw new AdminError(res.status, 'bad_answer', `unexpected answer from ${path}`);
  return parsed.data;
}

/** Registers an agent (or renews `id`) and returns it with its join token. `ttl` is seconds or e.g. "90d". */
export function registerAgent(target: AdminTarget, input: { name: string; id?: string; ttl?: string | number }): Promise<{ agent: RegisteredAgent; token: string }> {
  return call(target, 'POST', '/api/admin/agents', z.object({ agent: RegisteredAgent, token: z.string() }), input);
}

/** Revokes the agent with this id, or every agent with this name. */
export function revokeAgent(target: AdminTarget, idOrName: string): Promise<{ revoked: RegisteredAgent[] }> {
  return call(target, 'POST', `/api/admin/agents/${encodeURIComponent(idOrName)}/revoke`, z.object({ revoked: z.array(RegisteredAgent) }));
}

/** Where the scripts find the edge: EDGE_URL (the agent's setting; ws → http), else 127.0.0.1:$PORT. */
export function edgeHttpUrl(env: NodeJS.ProcessEnv = process.env): string {
  const given = env.EDGE_URL;
  if (given) return given.replace(/^ws(s?):/, 'http$1:');
  return `http://127.0.0.1:${env.PORT || 3001}`;
}
