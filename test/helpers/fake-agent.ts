/**
 * A scripted agent on a raw control socket, for tests of the edge's side of
 * the tunnel: it says hello with whatever it is told (name, mode, capacity,
 * host name), heartbeats, records every `req` the edge sends, and answers
 * each with a handler the test sets (or not at all). Real agents are used
 * everywhere else; this one can misbehave on purpose (forged answers,
 * inflated capacity, a second socket).
 */
import WebSocket from 'ws';
import { PROTOCOL_VERSION } from '../../shared/protocol/version';
import type { TestStack } from './stack';

export interface FakeAgentOptions {
  token: string;
  name?: string;
  mode?: 'docker' | 'local';
  maxSessions?: number;
  hostname?: string;
  /** Skip the hello (a socket that never says who it is). */
  hello?: boolean;
  heartbeatMs?: number;
}

export interface EdgeRequest {
  id: string;
  method: string;
  params: Record<string, unknown>;
}

type Answer = { ok: true; result: unknown } | { ok: false; error: { code: string; message: string } } | null;

export class FakeAgent {
  readonly requests: EdgeRequest[] = [];
  readonly frames: Array<Record<string, unknown>> = [];
  /** What to answer to a request; null leaves it unanswered. */
  answer: (req: EdgeRequest) => Answer = () => null;
  closed: Promise<{ code: number; reason: string }>;
  private heartbeat: ReturnType<typeof setInterval> | undefined;
  private readonly waiters = new Set<() => void>();

  private constructor(
    readonly ws: WebSocket,
    private readonly opts: FakeAgentOptions,
  ) {
    this.closed = new Promise((resolve) => ws.once('close', (code, r) => resolve({ code, reason: r.toString() })));
    void this.closed.then(() => clearInterval(this.heartbeat));
    ws.on('message', (data) => {
      const frame = JSON.parse(data.toString()) as Record<string, unknown>;
      this.frames.push(frame);
      if (frame.type === 'req') {
        const req: EdgeRequest = { id: String(frame.id), method: String(frame.method), params: (frame.params ?? {}) as Record<string, unknown> };
        this.requests.push(req);
        const answer = this.answer(req);
        if (answer) this.send({ type: 'res', id: req.id, ...answer });
      }
      for (const w of this.waiters) w();
    });
  }

  static open(stack: TestStack, opts: FakeAgentOptions): Promise<FakeAgent> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`${stack.wsUrl}/agent/connect`, { headers: { Authorization: `Bearer ${opts.token}` } });
      ws.once('open', () => {
        const agent = new FakeAgent(ws, opts);
        if (opts.hello !== false) agent.sayHello();
        resolve(agent);
      });
      ws.once('unexpected-response', (_req, res) => reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode })));
      ws.once('error', reject);
    });
  }

  system() {
    return { hostname: this.opts.hostname ?? 'fake-host', platform: 'linux', arch: 'x64', cpus: 1, loadavg: [0, 0, 0], memTotal: 1, memFree: 1, uptime: 1 };
  }

  sayHello(): void {
    this.send({
      type: 'hello',
      protocolVersion: PROTOCOL_VERSION,
      agent: {
        name: this.opts.name ?? 'fake',
        version: 'fake-1.0',
        mode: this.opts.mode ?? 'docker',
        capacity: { maxSessions: this.opts.maxSessions ?? 5 },
        docker: { available: (this.opts.mode ?? 'docker') === 'docker', version: '20.10.99' },
        system: this.system(),
      },
      sessions: [],
    });
    let seq = 0;
    this.heartbeat = setInterval(() => this.beat(seq++), this.opts.heartbeatMs ?? 300);
  }

  /** One heartbeat, optionally reporting containers. */
  beat(seq: number, containers: Array<{ sessionId: string; state: 'running' | 'stopped' | 'missing' }> = this.containers): void {
    this.send({ type: 'heartbeat', seq, system: this.system(), activeSessions: containers.length, activePreviews: 0, containers });
  }

  /** What heartbeats report. */
  containers: Array<{ sessionId: string; state: 'running' | 'stopped' | 'missing' }> = [];

  send(frame: unknown): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(frame));
  }

  /** Resolves with the first frame (past or future) that matches. */
  waitFor(pred: (f: Record<string, unknown>) => boolean, timeoutMs = 20_000): Promise<Record<string, unknown>> {
    const found = this.frames.find(pred);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`fake agent: no matching frame within ${timeoutMs} ms; got ${JSON.stringify(this.frames.slice(-5))}`));
      }, timeoutMs);
      const check = () => {
        const f = this.frames.find(pred);
        if (!f) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve(f);
      };
      this.waiters.add(check);
    });
  }

  /** Resolves with the first request of a method the edge sent. */
  async request(method: string, timeoutMs = 20_000): Promise<EdgeRequest> {
    await this.waitFor((f) => f.type === 'req' && f.method === method, timeoutMs);
    return this.requests.find((r) => r.method === method)!;
  }

  close(): void {
    clearInterval(this.heartbeat);
    this.ws.close();
  }
}
