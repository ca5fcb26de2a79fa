/**
 * SessionConnection at its seam: a scripted server behind a fake WebSocket
 * constructor (the `WebSocket` option), through the package's public entry
 * point. It pins down, frame by frame, what the real-stack suites can only
 * sample: held output before `process_started`, acks after reading, the
 * exact resume after a drop, duplicates cut, gaps, foreign processes,
 * requests lost with their socket, and watches caught up in order.
 */
import { describe, expect, it } from 'vitest';
import { MominaiClient, type ConnectionEvents, type FileChange, type GapInfo, type WebSocketLike } from '@mominai/client';
import { encodeBinaryFrame, FrameKind } from '../../shared/protocol/binary';
import { until } from '../helpers/wait';

const SESSION = {
  id: 'ses_0123456789abcdef01234567',
  name: 's',
  image: 'i',
  status: 'running',
  ports: [3000],
  agentId: 'agt_01',
  createdAt: '2026-01-01T00:00:00.000Z',
  lastActiveAt: '2026-01-01T00:00:00.000Z',
  limits: { cpu: 0.5, memory: 536870912 },
  previewPort: null,
  publicPorts: [],
};
const P1 = 'prc_00000000000000000000aa01';
const P2 = 'prc_00000000000000000000bb02';

class FakeSocket implements WebSocketLike {
  static all: FakeSocket[] = [];
  binaryType = 'blob';
  readyState = 1;
  readonly sent: Array<{ type: string; id?: string; payload?: Record<string, unknown> }> = [];
  onopen: ((ev: unknown) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  constructor(readonly url: string) {
    FakeSocket.all.push(this);
  }
  send(data: string): void {
    this.sent.push(JSON.parse(data));
  }
  close(): void {
    this.drop();
  }
  drop(): void {
    if (this.readyState === 3) return;
    this.readyState = 3;
    this.onclose?.({ code: 1006, reason: '' });
  }
  json(frame: { type: string; id?: string; payload?: unknown }): void {
    this.onmessage?.({ data: JSON.stringify(frame) });
  }
  output(streamId: number, offset: number, text: string): void {
    const bytes = encodeBinaryFrame({ kind: FrameKind.Output, flags: 0, streamId, offset, payload: new TextEncoder().encode(text) });
    this.onmessage?.({ data: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) });
  }
  /** The last frame of `type` this client sent. */
  last(type: string) {
    return [...this.sent].reverse().find((f) => f.type === type);
  }
  static latest(): FakeSocket {
    return FakeSocket.all[FakeSocket.all.length - 1]!;
  }
}

async function open() {
  FakeSocket.all = [];
  const client = new MominaiClient({ baseUrl: 'http://edge.test', token: 'tok', WebSocket: FakeSocket, fetch: () => Promise.reject(new Error('no REST here')) });
  const connecting = client.connect(SESSION.id, { backoff: { baseMs: 1, capMs: 2 } });
  FakeSocket.latest().json({ type: 'ready', payload: { session: SESSION } });
  const conn = await connecting;
  return { client, conn };
}

async function readText(stream: ReadableStream<Uint8Array>): Promise<string> {
  return new TextDecoder().decode(new Uint8Array(await new Response(stream).arrayBuffer()));
}

describe('SessionConnection (scripted server)', () => {
  it('dials /ws with the token, the session and binary output', async () => {
    const { conn } = await open();
    const url = new URL(FakeSocket.latest().url);
    expect(`${url.protocol}//${url.host}${url.pathname}`).toBe('ws://edge.test/ws');
    expect(Object.fromEntries(url.searchParams)).toEqual({ token: 'tok', sessionId: SESSION.id, output: 'binary' });
    expect(FakeSocket.latest().binaryType).toBe('arraybuffer');
    conn.close();
  });

  it('keeps output that comes before process_started, acks what was read, resumes exactly after a drop and cuts duplicates', async () => {
    const { conn } = await open();
    const s1 = FakeSocket.latest();
    const starting = conn.run('printf x');
    await until(() => !!s1.last('container_command'), 'the start request');
    const req = s1.last('container_command')!;
    expect(req.payload).toEqual({ command: 'printf x' });
    // The edge subscribes every client at once: output may beat the reply.
    s1.json({ type: 'output_stream', payload: { processId: P1, stream: 'stdout', streamId: 4 } });
    s1.output(4, 0, 'hello ');
    s1.json({ type: 'process_started', id: req.id!, payload: { processId: P1 } });
    const proc = await starting;
    const gaps: GapInfo[] = [];
    proc.on('gap', (g) => gaps.push(g));
    const reader = proc.stdout.getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toBe('hello ');
    expect(s1.last('ack')!.payload).toEqual({ processId: P1, stream: 'stdout', offset: 6 });
    s1.output(4, 6, 'world');
    expect(new TextDecoder().decode((await reader.read()).value)).toBe('world');

    s1.drop();
    await until(() => FakeSocket.all.length === 2, 'a new socket');
    const s2 = FakeSocket.latest();
    s2.json({ type: 'ready', payload: { session: SESSION } });
    expect(s2.last('resume')!.payload).toEqual({ processId: P1, stream: 'stdout', fromOffset: 11, offsets: { stdout: 11, stderr: 0 } });
    s2.json({ type: 'output_stream', payload: { processId: P1, stream: 'stdout', streamId: 4 } });
    s2.output(4, 6, 'world!!'); // overlaps what was read: only "!!" is new
    s2.json({ type: 'gap', payload: { processId: P1, stream: 'stdout', fromOffset: 13, toOffset: 20 } });
    s2.output(4, 20, 'end');
    s2.json({ type: 'command_exit', payload: { processId: P1, exitCode: 0, reason: 'exit' } });
    reader.releaseLock();
    expect(await readText(proc.stdout.pipeThrough(new TransformStream()))).toBe('!!end');
    expect(gaps).toEqual([{ processId: P1, stream: 'stdout', fromOffset: 13, toOffset: 20 }]);
    expect(await proc.exit).toEqual({ exitCode: 0, reason: 'exit' });
    expect(conn.reconnects).toBe(1);
    conn.close();
  });

  it('acknowledges and ignores the output of a process another client started', async () => {
    const { conn } = await open();
    const s = FakeSocket.latest();
    s.json({ type: 'output_stream', payload: { processId: P2, stream: 'pty', streamId: 10 } });
    s.output(10, 0, 'not ours');
    expect(s.last('ack')!.payload).toEqual({ processId: P2, stream: 'pty', offset: 8 });
    conn.close();
  });

  it('fails a request whose socket dropped with a retryable connection_lost, and sends one made while offline on the next socket', async () => {
    const { conn } = await open();
    const s1 = FakeSocket.latest();
    const lost = conn.request('list_processes');
    await until(() => !!s1.last('list_processes'), 'the request');
    conn.disconnect();
    await expect(lost).rejects.toMatchObject({ code: 'connection_lost', status: 0, retryable: true });
    const waiting = conn.request('list_processes');
    conn.reconnect();
    const s2 = FakeSocket.latest();
    expect(s2).not.toBe(s1);
    s2.json({ type: 'ready', payload: { session: SESSION } });
    const sent = s2.last('list_processes')!;
    s2.json({ type: 'error', id: sent.id!, payload: { code: 'rate_limited', message: 'slow down' } });
    await expect(waiting).rejects.toMatchObject({ code: 'rate_limited', status: 429, retryable: true, message: 'slow down' });
    conn.close();
  });

  it('watches again after a reconnect and delivers missed changes before live ones, each once, in order', async () => {
    const { conn } = await open();
    const s1 = FakeSocket.latest();
    const got: FileChange[] = [];
    const watching = conn.files.watch('src', { recursive: true }, (c) => got.push(c));
    await until(() => !!s1.last('watch'), 'the watch');
    s1.json({ type: 'watching', id: s1.last('watch')!.id!, payload: { path: '/workspace/src', version: 5 } });
    await watching;
    s1.json({ type: 'file_changed', payload: { version: 6, event: 'add_file', path: '/workspace/src/a.ts' } });
    s1.json({ type: 'file_changed', payload: { version: 7, event: 'add_file', path: '/workspace/other/x.ts' } });
    s1.drop();
    await until(() => FakeSocket.all.length === 2, 'a new socket');
    const s2 = FakeSocket.latest();
    s2.json({ type: 'ready', payload: { session: SESSION } });
    expect(s2.last('watch')!.payload).toEqual({ path: '/workspace/src', recursive: true });
    s2.json({ type: 'watching', id: s2.last('watch')!.id!, payload: { path: '/workspace/src', version: 9 } });
    await until(() => !!s2.last('changes_since'), 'changes_since');
    expect(s2.last('changes_since')!.payload).toEqual({ version: 7 });
    // A live change overtakes the catch-up answer: it waits for it.
    s2.json({ type: 'file_changed', payload: { version: 10, event: 'change', path: '/workspace/src/a.ts' } });
    s2.json({
      type: 'changes',
      id: s2.last('changes_since')!.id!,
      payload: { version: 9, resync: false, changes: [
        { version: 8, event: 'remove_file', path: '/workspace/src/a.ts' },
        { version: 9, event: 'add_dir', path: '/workspace/src/lib' },
      ] },
    });
    await until(() => got.length === 4, 'four changes');
    expect(got.map((c) => c.version)).toEqual([6, 8, 9, 10]);
    conn.close();
  });

  it('falls back to one watch of the whole workspace when the edge refuses another watch, and filters here', async () => {
    const { conn } = await open();
    const s = FakeSocket.latest();
    const got: string[] = [];
    const watching = conn.files.watch('docs', { recursive: false }, (c) => got.push(c.path));
    await until(() => !!s.last('watch'), 'the watch');
    s.json({ type: 'error', id: s.last('watch')!.id!, payload: { code: 'conflict', message: 'at most 64 watches per socket' } });
    await until(() => s.sent.filter((f) => f.type === 'watch').length === 2, 'the fallback watch');
    expect(s.last('watch')!.payload).toEqual({ path: '/workspace', recursive: true });
    s.json({ type: 'watching', id: s.last('watch')!.id!, payload: { path: '/workspace', version: 1 } });
    await watching;
    s.json({ type: 'file_changed', payload: { version: 2, event: 'add_file', path: '/workspace/src/x.ts' } });
    s.json({ type: 'file_changed', payload: { version: 3, event: 'add_file', path: '/workspace/docs/deep/y.md' } });
    s.json({ type: 'file_changed', payload: { version: 4, event: 'add_file', path: '/workspace/docs/z.md' } });
    expect(got).toEqual(['/workspace/docs/z.md']);
    conn.close();
  });

  it('follows a process it did not start with attach, from the offsets given', async () => {
    const { conn } = await open();
    const s = FakeSocket.latest();
    const attaching = conn.attach(P2, { offsets: { pty: 100 } });
    await until(() => !!s.last('history'), 'the history request');
    s.json({ type: 'history', id: s.last('history')!.id!, payload: { commands: [{ processId: P2, command: 'bash', tty: true, startedAt: 'x', endedAt: null, running: true, exitCode: null, reason: null }] } });
    await until(() => !!s.last('resume'), 'the resume');
    expect(s.last('resume')!.payload).toEqual({ processId: P2, stream: 'pty', fromOffset: 100, offsets: { pty: 100 } });
    s.json({ type: 'resumed', id: s.last('resume')!.id!, payload: { processId: P2, from: { pty: 100 } } });
    const term = await attaching;
    expect(term.tty).toBe(true);
    s.json({ type: 'output_stream', payload: { processId: P2, stream: 'pty', streamId: 10 } });
    s.output(10, 100, '$ ');
    s.json({ type: 'command_exit', payload: { processId: P2, exitCode: null, signal: 'SIGHUP', reason: 'killed' } });
    expect(await readText(term.output)).toBe('$ ');
    expect(await term.exit).toEqual({ exitCode: null, signal: 'SIGHUP', reason: 'killed' });
    conn.close();
  });

  it('sends stdin in frames under 1 MiB: text as it is, bytes as base64', async () => {
    const { conn } = await open();
    const s = FakeSocket.latest();
    const starting = conn.exec('cat', [], { tty: true });
    await until(() => !!s.last('exec_command'), 'the start');
    expect(s.last('exec_command')!.payload).toEqual({ command: 'cat', args: [], tty: true });
    s.json({ type: 'process_started', id: s.last('exec_command')!.id!, payload: { processId: P1, tty: true } });
    const proc = await starting;
    const answer = async (n: number) => {
      await until(() => s.sent.filter((f) => f.type === 'stdin').length === n, `stdin frame ${n}`);
      s.json({ type: 'stdin_written', id: s.sent.filter((f) => f.type === 'stdin')[n - 1]!.id!, payload: {} });
    };
    const typed = proc.write('ls\n');
    await answer(1);
    await typed;
    const bytes = new Uint8Array(600 * 1024).fill(7);
    const pasted = proc.write(bytes);
    await answer(2);
    await answer(3);
    await pasted;
    const frames = s.sent.filter((f) => f.type === 'stdin').map((f) => f.payload!);
    expect(frames[0]).toEqual({ processId: P1, data: 'ls\n' });
    expect(frames.slice(1).map((f) => [f.encoding, Buffer.from(String(f.data), 'base64').byteLength])).toEqual([['base64', 512 * 1024], ['base64', 88 * 1024]]);
    conn.close();
  });

  it('reads command_output frames when asked for text output', async () => {
    FakeSocket.all = [];
    const client = new MominaiClient({ baseUrl: 'https://edge.test', token: 'tok', WebSocket: FakeSocket });
    const connecting = client.connect(SESSION.id, { output: 'text' });
    const s = FakeSocket.latest();
    expect(new URL(s.url).protocol).toBe('wss:');
    expect(new URL(s.url).searchParams.get('output')).toBe('text');
    s.json({ type: 'ready', payload: { session: SESSION } });
    const conn = await connecting;
    const starting = conn.run('echo é');
    await until(() => !!s.last('container_command'), 'the start');
    s.json({ type: 'process_started', id: s.last('container_command')!.id!, payload: { processId: P1 } });
    const proc = await starting;
    s.json({ type: 'command_output', payload: { processId: P1, stream: 'stdout', data: 'é\n', offset: 0, length: 3 } });
    s.json({ type: 'command_output', payload: { processId: P1, stream: 'stderr', data: 'warn\n', offset: 0, length: 5 } });
    s.json({ type: 'command_exit', payload: { processId: P1, exitCode: 0, reason: 'exit' } });
    const [out, err] = await Promise.all([readText(proc.stdout), readText(proc.stderr)]);
    expect([out, err]).toEqual(['é\n', 'warn\n']);
    conn.close();
  });

  it('answers start_preview with the preview_ready payload, and close() fails what is still waiting with closed', async () => {
    const { conn } = await open();
    const s = FakeSocket.latest();
    const preview = conn.startPreview(5173);
    await until(() => !!s.last('start_preview'), 'the request');
    expect(s.last('start_preview')!.payload).toEqual({ port: 5173 });
    s.json({ type: 'preview_ready', id: s.last('start_preview')!.id!, payload: { port: 5173, url: 'http://5173-x.preview.localhost/', pathUrl: 'http://edge.test/preview/x/' } });
    expect(await preview).toEqual({ port: 5173, url: 'http://5173-x.preview.localhost/', pathUrl: 'http://edge.test/preview/x/' });
    const waiting = conn.request('list_processes');
    conn.close();
    await expect(waiting).rejects.toMatchObject({ code: 'closed', status: 0, retryable: false });
    expect(conn.state).toBe('closed');
  });

  it('emits the connection events it documents', async () => {
    const { conn } = await open();
    const s = FakeSocket.latest();
    const seen: Array<keyof ConnectionEvents> = [];
    for (const e of ['port', 'server-ready', 'idle-warning', 'status', 'flow-paused'] as const) conn.on(e, () => seen.push(e));
    s.json({ type: 'port', payload: { port: 3000, state: 'open', url: 'http://3000-x.preview.localhost/' } });
    s.json({ type: 'server-ready', payload: { port: 3000, url: 'http://3000-x.preview.localhost/' } });
    s.json({ type: 'idle_warning', payload: { stopAt: '2026-01-01T00:00:00.000Z', inMs: 60000 } });
    s.json({ type: 'flow_paused', payload: { processId: P1, stream: 'stdout', offset: 4194304 } });
    s.json({ type: 'container_status', payload: { status: 'stopped', reason: 'idle' } });
    expect(seen).toEqual(['port', 'server-ready', 'idle-warning', 'flow-paused', 'status']);
    expect(conn.session?.status).toBe('stopped');
    conn.close();
  });
});

describe('REST calls (scripted fetch)', () => {
  it('sends a GET once more when its kept-alive connection was closed under it, but never a POST', async () => {
    const calls: string[] = [];
    let failNext = true;
    const fetch = async (url: string, init?: RequestInit): Promise<Response> => {
      calls.push(`${init?.method} ${new URL(url).pathname}`);
      if (failNext) {
        failNext = false;
        throw new TypeError('fetch failed', { cause: new Error('other side closed') });
      }
      return Response.json({ user: { id: 'usr_1', email: 'a@example.com', username: 'a' } });
    };
    const client = new MominaiClient({ baseUrl: 'http://edge.test', token: 'tok', fetch });
    expect(await client.me()).toEqual({ id: 'usr_1', email: 'a@example.com', username: 'a' });
    expect(calls).toEqual(['GET /api/auth/me', 'GET /api/auth/me']);
    failNext = true;
    await expect(client.sessions.create({})).rejects.toMatchObject({ code: 'network_error', status: 0, retryable: true });
    expect(calls.slice(2)).toEqual(['POST /api/containers']);
  });
});
