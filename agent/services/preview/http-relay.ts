/**
 * Plain HTTP requests to a session's dev server, through one undici Agent per
 * session that keeps connections to the container alive between requests.
 * Request bodies stream in from the DO and response bodies stream back out;
 * neither is ever held whole (see ../streams/byte-streams.ts for the window).
 */
import type { Readable } from 'node:stream';
import { Agent } from 'undici';
import { AppError, ErrorCode } from '../../../shared/errors';
import type { HttpRequestParams, HttpResponseHead } from '../../../shared/protocol/preview';
import type { Logger } from '../../logger';
import { flatten, responseHeaders, upstreamRequestHeaders } from './headers';

export interface HttpRelayOptions {
  logger: Logger;
  /** Longest wait for the response head (default 60 s). */
  headersTimeoutMs?: number;
  /**
   * Longest silence between two body chunks while the relay is reading
   * (default 300 s). It does not run while the relay waits for the DO's acks.
   */
  bodyTimeoutMs?: number;
  /** TCP connect limit (default 10 s; a container answers in well under one). */
  connectTimeoutMs?: number;
  /** Connections kept per container port (default 32). */
  connectionsPerPort?: number;
}

export interface UpstreamResponse {
  head: HttpResponseHead;
  /** The response body; the caller must consume or destroy it, or the connection stays taken. */
  body: Readable;
}

// The request-target is origin-form only: printable ASCII, no spaces, so it cannot carry
// a second request line or turn into an absolute URL naming another host.
const ORIGIN_FORM = /^\/[\x21-\x7e]*$/;

export class HttpRelay {
  private agent: Agent | undefined;
  private readonly headersTimeoutMs: number;

  constructor(private readonly opts: HttpRelayOptions) {
    this.headersTimeoutMs = opts.headersTimeoutMs ?? 60_000;
  }

  /** The pool, made on first use so a relay that was closed can serve again after a restart. */
  private pool(): Agent {
    this.agent ??= new Agent({
      connections: this.opts.connectionsPerPort ?? 32,
      headersTimeout: this.headersTimeoutMs,
      bodyTimeout: this.opts.bodyTimeoutMs ?? 300_000,
      connectTimeout: this.opts.connectTimeoutMs ?? 10_000,
    });
    return this.agent;
  }

  /**
   * Sends the request to `address:port` and resolves with the response head
   * and a body stream once the head arrives. `body` is the request body, read
   * as the dev server takes it.
   */
  async request(p: HttpRequestParams, address: string, body: Readable | undefined): Promise<UpstreamResponse> {
    if (!ORIGIN_FORM.test(p.path)) throw new AppError(ErrorCode.ValidationFailed, 'path must be an origin-form request target (/path?query)');
    if (p.method === 'CONNECT') throw new AppError(ErrorCode.MethodNotAllowed, 'CONNECT is not relayed to a preview');
    // Without a body, a Content-Length would announce bytes that never come; with one, it
    // must be a single decimal (undici checks it against the bytes sent).
    const { headers } = upstreamRequestHeaders(p.headers, p.port, (name) => name === 'content-length' && !p.hasBody);
    const lengths = headers.filter(([k]) => k === 'content-length');
    if (lengths.length > 1 || (lengths[0] && !/^\d{1,15}$/.test(lengths[0][1]))) {
      throw new AppError(ErrorCode.ValidationFailed, 'content-length must be a single decimal number');
    }
    try {
      const res = await this.pool().request({
        origin: `http://${address.includes(':') ? `[${address}]` : address}:${p.port}`,
        path: p.path,
        method: p.method,
        headers: flatten(headers),
        body: body ?? null,
      });
      const { headers: out, dropped } = responseHeaders(res.headers);
      if (dropped > 0) this.opts.logger.warn('preview response headers dropped (over the relay limits)', { port: p.port, dropped });
      return { head: { status: res.statusCode, headers: out }, body: res.body };
    } catch (err) {
      body?.destroy();
      throw upstreamFailure(err, p.port, this.headersTimeoutMs);
    }
  }

  /** Aborts every request in flight and closes every connection. */
  async close(): Promise<void> {
    const agent = this.agent;
    this.agent = undefined;
    await agent?.destroy().catch(() => undefined);
  }
}

/**
 * What a failed upstream request means to the DO. The caller may see
 * `agent_unavailable` (503) for a port nothing listens on: the session is
 * there, its server is not (yet), and a retry after it starts succeeds.
 */
export function upstreamFailure(err: unknown, port: number, headersTimeoutMs = 60_000): AppError {
  if (err instanceof AppError) return err;
  const code = (err as { code?: unknown } | null)?.code;
  switch (code) {
    case 'ECONNREFUSED':
      return new AppError(ErrorCode.AgentUnavailable, `nothing is listening on port ${port} in the session`);
    case 'UND_ERR_HEADERS_TIMEOUT':
      return new AppError(ErrorCode.Timeout, `the server on port ${port} sent no response head within ${headersTimeoutMs / 1000} s`);
    case 'UND_ERR_CONNECT_TIMEOUT':
    case 'ETIMEDOUT':
      return new AppError(ErrorCode.Timeout, `connecting to port ${port} in the session timed out`);
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return new AppError(ErrorCode.AgentUnavailable, "the session's container is not reachable (stopped or restarting)");
    case 'UND_ERR_SOCKET':
    case 'ECONNRESET':
    case 'EPIPE':
      return new AppError(ErrorCode.AgentUnavailable, `the server on port ${port} closed the connection`);
    case 'UND_ERR_ABORTED':
    case 'UND_ERR_DESTROYED':
    case 'UND_ERR_CLOSED':
      return new AppError(ErrorCode.AgentUnavailable, 'the preview relay closed');
    case 'UND_ERR_INVALID_ARG':
    case 'UND_ERR_NOT_SUPPORTED':
      return new AppError(ErrorCode.ValidationFailed, `request refused by the relay: ${(err as Error).message}`);
    case 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH':
      return new AppError(ErrorCode.BadRequest, 'the request body does not match its content-length');
    default:
      return new AppError(ErrorCode.AgentUnavailable, `the request to port ${port} failed`);
  }
}
