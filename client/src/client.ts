/**
 * MominaiClient: the typed entry point to the API. REST calls go through
 * the platform `fetch`; `connect(sessionId)` opens a SessionConnection over
 * `globalThis.WebSocket` or the `WebSocket` constructor passed in options
 * (Node 20 has none built in: pass `ws`'s).
 */
import type { z } from 'zod';
import type { CreateContainerBody, ExecBody, ExecResult, SessionView } from '../../shared/api/containers';
import type { LoginRequest, PublicUser, RegisterRequest } from '../../shared/api/auth';
import { ClientErrorCode, MominaiError } from './errors';
import { Http, type FetchLike } from './http';
import { SessionFiles } from './files';
import { SessionConnection, type ConnectOptions, type WebSocketConstructor } from './connection';
import { AuthEnvelope, DeletedSession, ExecResultSchema, MeEnvelope, PreviewLink, SessionEnvelope, SessionsEnvelope } from './protocol';

export interface MominaiClientOptions {
  /** The edge's origin, e.g. `https://api.example.com` or `http://127.0.0.1:3001`. */
  baseUrl: string;
  /** A user token from register/login, if you have one already. */
  token?: string;
  fetch?: FetchLike;
  /** A WebSocket constructor (default `globalThis.WebSocket`). */
  WebSocket?: WebSocketConstructor;
  /** Time limit of one REST call that does not stream a body (ms, default 60 s). */
  timeoutMs?: number;
}

export type PreviewLinkInfo = z.infer<typeof PreviewLink>;

export class MominaiClient {
  readonly baseUrl: string;
  private tokenNow: string | undefined;
  readonly http: Http;
  private readonly WebSocketImpl: WebSocketConstructor | undefined;

  constructor(opts: MominaiClientOptions) {
    this.baseUrl = opts.baseUrl.replace(/\/+$/, '');
    this.tokenNow = opts.token;
    const f = opts.fetch ?? ((input: string, init?: RequestInit) => globalThis.fetch(input, init));
    this.http = new Http({ baseUrl: this.baseUrl, fetch: f, token: () => this.tokenNow, timeoutMs: opts.timeoutMs ?? 60_000 });
    this.WebSocketImpl = opts.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  }

  get token(): string | undefined {
    return this.tokenNow;
  }

  setToken(token: string | undefined): void {
    this.tokenNow = token;
  }

  /* ---- accounts ---- */

  /** Creates an account and keeps its token for the calls that follow. */
  async register(body: RegisterRequest): Promise<{ token: string; user: PublicUser }> {
    const r = await this.http.json('/api/auth/register', { json: body }, AuthEnvelope);
    this.tokenNow = r.token;
    return { token: r.token, user: r.user };
  }

  async login(body: LoginRequest): Promise<{ token: string; user: PublicUser }> {
    const r = await this.http.json('/api/auth/login', { json: body }, AuthEnvelope);
    this.tokenNow = r.token;
    return { token: r.token, user: r.user };
  }

  async me(): Promise<PublicUser> {
    return (await this.http.json('/api/auth/me', {}, MeEnvelope)).user;
  }

  /* ---- sessions ---- */

  readonly sessions = {
    create: async (body: CreateContainerBody = {}): Promise<SessionView> => (await this.http.json('/api/containers', { json: body }, SessionEnvelope)).session,
    list: async (): Promise<SessionView[]> => (await this.http.json('/api/containers', {}, SessionsEnvelope)).sessions,
    get: async (id: string): Promise<SessionView> => (await this.http.json(this.sessionPath(id), {}, SessionEnvelope)).session,
    start: async (id: string): Promise<SessionView> => (await this.http.json(`${this.sessionPath(id)}/start`, { method: 'POST' }, SessionEnvelope)).session,
    stop: async (id: string): Promise<SessionView> => (await this.http.json(`${this.sessionPath(id)}/stop`, { method: 'POST' }, SessionEnvelope)).session,
    delete: async (id: string): Promise<void> => void (await this.http.json(this.sessionPath(id), { method: 'DELETE' }, DeletedSession)),
    /** Runs a short command to completion (without `args`, `command` is a shell line). */
    exec: async (id: string, body: ExecBody): Promise<ExecResult> => this.http.json(`${this.sessionPath(id)}/exec`, { json: body, streaming: (body.timeoutMs ?? 0) > 50_000 }, ExecResultSchema),
  };

  private sessionPath(id: string): string {
    return `/api/containers/${encodeURIComponent(id)}`;
  }

  /** A session's files through REST (any size, streamed). */
  files(sessionId: string): SessionFiles {
    return new SessionFiles(this.http, sessionId);
  }

  /**
   * A short-lived signed link to a session's preview (`port` or the
   * session's preview port): opening it sets the preview cookie and lands on
   * the clean preview URL, so it works as it is in a browser tab or iframe.
   */
  async previewUrl(sessionId: string, port?: number): Promise<PreviewLinkInfo> {
    return this.http.json(`${this.sessionPath(sessionId)}/preview-url${port === undefined ? '' : `?port=${port}`}`, {}, PreviewLink);
  }

  /** Opens a port's preview to anyone (`public`) or to the owner only (`private`, the default). */
  async setPortVisibility(sessionId: string, port: number, visibility: 'public' | 'private'): Promise<void> {
    await this.http.json(`${this.sessionPath(sessionId)}/ports/${port}`, { json: { visibility } });
  }

  /** A session connection that reconnects by itself; resolves once the edge said `ready`. */
  async connect(sessionId: string, opts: ConnectOptions = {}): Promise<SessionConnection> {
    const WS = this.WebSocketImpl;
    if (!WS) throw new MominaiError(ClientErrorCode.NetworkError, 'no WebSocket implementation: pass one as the `WebSocket` option (in Node 20, `ws`)');
    const output = opts.output ?? 'binary';
    const url = () => {
      const u = new URL('/ws', this.baseUrl.replace(/^http/, 'ws'));
      u.searchParams.set('token', this.tokenNow ?? '');
      u.searchParams.set('sessionId', sessionId);
      u.searchParams.set('output', output);
      return u.toString();
    };
    const conn = new SessionConnection(sessionId, url, WS, opts);
    const limitMs = opts.requestTimeoutMs ?? 30_000;
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new MominaiError('timeout', `the session WebSocket did not open within ${limitMs} ms`)), limitMs);
        // A browser cannot see why an upgrade was refused: when a socket closes before `ready`, REST says (401, 403, 404).
        const offClose = conn.on('close', () => {
          this.sessions.get(sessionId).then(
            (s) => {
              if (s.status === 'destroyed') reject(new MominaiError('not_found', 'the session was deleted'));
            },
            (err: unknown) => {
              if (err instanceof MominaiError && !err.retryable && err.status >= 400) reject(err);
            },
          );
        });
        conn.ready().then(resolve, reject);
        const settle = () => {
          clearTimeout(timer);
          offClose();
        };
        conn.ready().then(settle, settle);
      });
    } catch (err) {
      conn.close();
      throw err;
    }
    return conn;
  }
}
