/**
 * The session daemon: our small program inside every session container whose
 * image has Node ≥ 18, run by the container's init as its main process, as
 * the container's user. It replaces a `docker exec` per command and per port
 * poll, and keeps processes and their output while the agent is away (an
 * upgrade, a crash): a restarted agent reconnects, lists what runs and
 * resumes each stream at the offset the edge last acknowledged.
 *
 * It reads its secret from <run dir>/secret and unlinks it before it
 * listens, so no process of the session (they all start later) can read it;
 * then it listens on <run dir>/daemon.sock, in a host folder of this session
 * alone (never the workspace, no network port). The wire is ./protocol.ts.
 *
 * Usage: node daemon.cjs [run dir]   (default /run/mominai)
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import {
  AgentMessage,
  DAEMON_PROTOCOL_VERSION,
  DAEMON_RUN_DIR,
  DAEMON_SOCKET_NAME,
  encodeJson,
  encodeOutput,
  FrameReader,
  mac,
  parseMessage,
  Requests,
  SECRET_FILE_NAME,
  type Method,
} from './protocol';
import { onPath, procNetTcp } from './proc-tools';
import { ProcessTable, type DaemonProcess } from './process-table';

const CHUNK = 256 * 1024;
/** Relative working folders are inside the workspace: the folder the daemon starts in (the container's WorkingDir). */
const WORKSPACE = process.cwd();
const AUTH_TIMEOUT_MS = 5_000;

function log(level: 'info' | 'warn' | 'error', msg: string, extra: Record<string, unknown> = {}): void {
  process.stderr.write(JSON.stringify({ time: new Date().toISOString(), level, component: 'session-daemon', msg, ...extra }) + '\n');
}

class Daemon {
  private active: net.Socket | undefined;
  private blocked = false;
  private readonly table: ProcessTable;

  constructor(
    private readonly secret: Buffer,
    private readonly pty: string | undefined,
  ) {
    this.table = new ProcessTable({ flush: (p) => this.flush(p) }, pty);
  }

  accept(sock: net.Socket): void {
    const reader = new FrameReader();
    const nonce = randomBytes(16).toString('hex');
    let authed = false;
    const timer = setTimeout(() => sock.destroy(), AUTH_TIMEOUT_MS);
    sock.on('error', () => undefined);
    sock.write(encodeJson({ t: 'hello', version: DAEMON_PROTOCOL_VERSION, nonce, pty: this.pty !== undefined }));
    sock.on('data', (chunk: Buffer) => {
      let frames;
      try {
        frames = reader.push(chunk);
      } catch (err) {
        log('warn', 'bad frame from the agent; closing', { error: String(err) });
        return void sock.destroy();
      }
      for (const f of frames) {
        if (!authed) {
          const m = f.type === 'json' ? parseMessage(AgentMessage, f.text) : undefined;
          if (m?.t !== 'auth' || !this.check(m.mac, nonce)) return void sock.destroy();
          authed = true;
          clearTimeout(timer);
          this.take(sock, m.nonce);
          continue;
        }
        if (sock !== this.active) return void sock.destroy();
        if (f.type === 'input') this.table.get(f.ref)?.child?.stdin?.write(f.payload);
        else if (f.type === 'json') this.onMessage(sock, f.text);
      }
    });
    sock.on('close', () => {
      clearTimeout(timer);
      if (sock !== this.active) return;
      this.active = undefined;
      this.table.detachAll();
    });
  }

  private check(got: string, nonce: string): boolean {
    const want = Buffer.from(mac(this.secret, 'agent', nonce), 'hex');
    const given = Buffer.from(got, 'hex');
    return given.byteLength === want.byteLength && timingSafeEqual(given, want);
  }

  /** The newest authenticated agent wins: an older connection is a previous agent process. */
  private take(sock: net.Socket, agentNonce: string): void {
    const old = this.active;
    this.active = sock;
    this.blocked = false;
    this.table.detachAll();
    old?.destroy();
    sock.on('drain', () => {
      if (sock !== this.active) return;
      this.blocked = false;
      for (const p of this.table.procs.values()) this.flush(p);
    });
    sock.write(encodeJson({ t: 'welcome', mac: mac(this.secret, 'daemon', agentNonce) }));
  }

  private onMessage(sock: net.Socket, text: string): void {
    const m = parseMessage(AgentMessage, text);
    if (!m || m.t === 'auth') return log('warn', 'unreadable message from the agent');
    if (m.t === 'ack') {
      const proc = this.table.get(m.ref);
      const s = proc?.stream(m.stream);
      if (proc && s) this.table.ack(proc, s, m.offset);
      return;
    }
    void this.request(m.m, m.p).then(
      (r) => {
        sock.write(encodeJson({ t: 'res', id: m.id, ok: true, r }));
        const spawned = m.m === 'spawn' ? this.table.get((r as { ref: number }).ref) : undefined;
        if (spawned) {
          spawned.announced = true;
          this.flush(spawned);
        }
      },
      (err: unknown) => sock.write(encodeJson({ t: 'res', id: m.id, ok: false, error: errorBody(err) })),
    );
  }

  private async request(method: Method, raw: unknown): Promise<unknown> {
    const parsed = Requests[method].safeParse(raw);
    if (!parsed.success) throw new DaemonError('validation_failed', `bad ${method} parameters: ${parsed.error.issues[0]?.message ?? ''}`);
    const proc = (ref: number): DaemonProcess => {
      const p = this.table.get(ref);
      if (!p) throw new DaemonError('not_found', `no process ${ref}`);
      return p;
    };
    switch (method) {
      case 'spawn': {
        const p = Requests.spawn.parse(raw);
        const created = this.table.spawn({ ...p, cwd: path.posix.resolve(WORKSPACE, p.cwd) });
        // A spawn that fails at once reports its exit on the next tick: not before the answer.
        created.announced = false;
        // Output of a process spawned on this connection starts at offset 0.
        for (const s of created.streams) s.sent = 0;
        return { ref: created.ref };
      }
      case 'list':
        return { processes: [...this.table.procs.values()].map((p) => p.entry()) };
      case 'attach': {
        const p = Requests.attach.parse(raw);
        const target = proc(p.ref);
        for (const s of target.streams) s.sent = Math.min(Math.max(p.from[s.name] ?? s.acked, s.ring.start), s.ring.end);
        target.exitSent = false;
        queueMicrotask(() => this.flush(target));
        return {};
      }
      case 'kill': {
        const p = Requests.kill.parse(raw);
        proc(p.ref).kill(p.signals as NodeJS.Signals[]);
        return {};
      }
      case 'resize': {
        const p = Requests.resize.parse(raw);
        await proc(p.ref).resize(p.cols, p.rows);
        return {};
      }
      case 'closeStdin':
        proc(Requests.closeStdin.parse(raw).ref).child?.stdin?.end();
        return {};
      case 'ports':
        return { text: procNetTcp() };
    }
  }

  /** Sends what the agent may have of a process now; its exit once every byte went. */
  private flush(proc: DaemonProcess): void {
    const sock = this.active;
    if (!sock || this.blocked || !proc.announced) return;
    for (const s of proc.streams) {
      if (s.sent === undefined) continue;
      while (s.sent < s.ring.end) {
        if (s.sent < s.ring.start) s.sent = s.ring.start;
        const to = Math.min(s.ring.end, s.sent + CHUNK);
        const ok = sock.write(encodeOutput(proc.ref, s.name, s.sent, s.ring.read(s.sent, to)));
        s.sent = to;
        if (!ok) {
          this.blocked = true;
          return;
        }
      }
    }
    if (proc.exit && !proc.exitSent && proc.allSent) {
      proc.exitSent = true;
      sock.write(encodeJson({ t: 'exit', ref: proc.ref, ends: proc.ends(), ...proc.exit }));
    }
  }
}

class DaemonError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

function errorBody(err: unknown): { code: string; message: string } {
  if (err instanceof DaemonError) return { code: err.code, message: err.message };
  return { code: 'internal_error', message: (err instanceof Error ? err.message : String(err)).slice(0, 4000) };
}

function main(): void {
  const dir = process.argv[2] || DAEMON_RUN_DIR;
  const secretFile = path.join(dir, SECRET_FILE_NAME);
  let secret: Buffer;
  try {
    secret = Buffer.from(fs.readFileSync(secretFile, 'utf8').trim(), 'hex');
    fs.unlinkSync(secretFile);
  } catch (err) {
    log('error', 'no secret to start with', { error: String(err) });
    process.exit(2);
  }
  if (secret.byteLength < 16) {
    log('error', 'the secret is too short');
    process.exit(2);
  }
  const sockPath = path.join(dir, DAEMON_SOCKET_NAME);
  fs.rmSync(sockPath, { force: true });
  const daemon = new Daemon(secret, onPath('script'));
  const server = net.createServer((sock) => daemon.accept(sock));
  server.listen(sockPath, () => {
    fs.chmodSync(sockPath, 0o600);
    log('info', 'listening', { socket: sockPath, node: process.versions.node });
  });
  // The container is stopping: its processes end with it, and the agent reports them lost.
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(sig, () => process.exit(0));
}

main();
