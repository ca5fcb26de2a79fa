import { afterEach, describe, expect, it } from 'vitest';
import { Dispatcher } from '../../../agent/connection/dispatcher';
import { memoryLogger } from '../../../agent/logger';
import type { Runtime } from '../../../agent/runtime/runtime';
import { ProcessManager } from '../../../agent/services/processes/process-manager';
import { DEFAULT_CHUNK_BYTES, type ProcessManagerOptions } from '../../../agent/services/processes/types';
import { FrameFlag, FrameKind } from '../../../shared/protocol/binary';
import { FakeProcess, FakeRuntime, FakeSink, settle, until } from './fakes';

const KiB = 1024;
const managers: ProcessManager[] = [];
afterEach(async () => {
  for (const pm of managers.splice(0)) await pm.close();
});

function setup(opts: Partial<ProcessManagerOptions> = {}) {
  const runtime = new FakeRuntime();
  const logger = memoryLogger();
  const pm = new ProcessManager({ runtime, sessionId: 'ses_1', logger, ...opts });
  managers.push(pm);
  const dispatcher = new Dispatcher(logger);
  pm.register(dispatcher);
  let n = 0;
  const call = (method: string, params: unknown) => dispatcher.handle({ type: 'req', id: String(++n), method, params });
  const spawn = async (processId: string, streamBase: number, extra: Record<string, unknown> = {}) => {
    const res = await call('proc.spawn', { processId, streamBase, command: ['sh', '-c', 'x'], tty: false, ...extra });
    expect(res).toMatchObject({ ok: true, result: { processId } });
    return runtime.last;
  };
  return { runtime, pm, call, spawn, logger };
}

const P1 = 'prc_00000001';
const P2 = 'prc_00000002';

describe('ProcessManager', () => {
  describe('proc.spawn', () => {
    it('answers with the processId and streams stdout and stderr apart, offsets from 0', async () => {
      const { pm, spawn } = setup();
      const sink = new FakeSink();
      pm.attach(sink);
      const p = await spawn(P1, 8);
      p.stdout.write('hello ');
      p.stderr!.write('oops');
      p.stdout.write('world');
      await until(() => sink.text(8) === 'hello world' && sink.text(9) === 'oops', 'output');
      expect(sink.frames(8)[0]).toMatchObject({ kind: FrameKind.Output, offset: 0 });
      expect(p.spec).toEqual({ command: ['sh', '-c', 'x'], tty: false, tag: { processId: P1, streamBase: 8, command: ['sh', '-c', 'x'] } });
    });

    it('gives a TTY process one pty stream at streamBase + 2', async () => {
      const { pm, spawn } = setup();
      const sink = new FakeSink();
      pm.attach(sink);
      const p = await spawn(P1, 0, { tty: true, cols: 80, rows: 24, cwd: 'app', env: { A: '1' } });
      expect(p.spec).toEqual({ command: ['sh', '-c', 'x'], tty: true, cols: 80, rows: 24, cwd: 'app', env: { A: '1' }, tag: { processId: P1, streamBase: 0, command: ['sh', '-c', 'x'] } });
      p.stdout.write('$ ');
      await until(() => sink.text(2) === '$ ', 'pty output');
      expect(pm.list()[0]).toMatchObject({ processId: P1, tty: true, running: true, endOffsets: { pty: 2, stdout: 0 } });
    });

    it('refuses a duplicate processId or an overlapping streamBase with conflict', async () => {
      const { call, spawn } = setup();
      await spawn(P1, 0);
      const dup = await call('proc.spawn', { processId: P1, streamBase: 100, command: ['x'], tty: false });
      expect(dup).toMatchObject({ ok: false, error: { code: 'conflict' } });
      const overlap = await call('proc.spawn', { processId: P2, streamBase: 3, command: ['x'], tty: false });
      expect(overlap).toMatchObject({ ok: false, error: { code: 'conflict' } });
    });

    it('refuses a process past MAX_PROCESSES_PER_SESSION with limit_exceeded, and takes one again once a process exits', async () => {
      const { runtime, call, spawn } = setup({ maxRunning: 2 });
      const first = await spawn(P1, 0);
      await spawn(P2, 8);
      const third = await call('proc.spawn', { processId: 'prc_00000003', streamBase: 16, command: ['x'], tty: false });
      expect(third).toMatchObject({
        ok: false,
        error: { code: 'limit_exceeded', message: 'this session already runs 2 processes (MAX_PROCESSES_PER_SESSION)' },
      });
      expect(runtime.procs.length).toBe(2);
      first.exit({ exitCode: 0, reason: 'exit' });
      await settle();
      await spawn('prc_00000004', 24);
    });

    it('passes runtime AppErrors through and hides unknown ones', async () => {
      const { runtime, call } = setup();
      const { AppError } = await import('../../../shared/errors');
      runtime.failNext = new AppError('tty_unavailable', 'no pty here');
      const a = await call('proc.spawn', { processId: P1, streamBase: 0, command: ['x'], tty: true });
      expect(a).toMatchObject({ ok: false, error: { code: 'tty_unavailable', message: 'no pty here' } });
      runtime.failNext = new Error('/secret/path exploded');
      const b = await call('proc.spawn', { processId: P1, streamBase: 0, command: ['x'], tty: false });
      expect(b).toMatchObject({ ok: false, error: { code: 'internal_error' } });
      const c = await call('proc.spawn', { processId: 'nope', streamBase: 0, command: ['x'], tty: false });
      expect(c).toMatchObject({ ok: false, error: { code: 'validation_failed' } });
    });
  });

  describe('sending', () => {
    it('flushes an idle stream at once and batches output that follows closely', async () => {
      const { pm, spawn } = setup({ batchMs: 200 });
      const sink = new FakeSink();
      pm.attach(sink);
      const p = await spawn(P1, 0);
      p.stdout.write('a');
      await settle();
      expect(sink.frames(0).length).toBe(1);
      p.stdout.write('b');
      p.stdout.write('c');
      await settle();
      expect(sink.frames(0).length).toBe(1);
      await until(() => sink.text(0) === 'abc', 'the batch', 1_000);
      expect(sink.frames(0).map((f) => Buffer.from(f.payload).toString())).toEqual(['a', 'bc']);
    });

    it('cuts bulk output into contiguous chunks of at most chunkBytes', async () => {
      const { pm, spawn } = setup();
      const sink = new FakeSink();
      pm.attach(sink);
      const p = await spawn(P1, 0);
      const data = Buffer.alloc(1200 * KiB, 'x');
      for (let i = 0; i < data.length; i += 7 * KiB) p.stdout.write(data.subarray(i, i + 7 * KiB));
      await until(() => sink.stream(0).length === data.length, 'all bytes');
      expect(Math.max(...sink.frames(0).map((f) => f.payload.byteLength))).toBeLessThanOrEqual(DEFAULT_CHUNK_BYTES);
      expect(sink.frames(0).length).toBeGreaterThanOrEqual(Math.ceil(data.length / DEFAULT_CHUNK_BYTES));
    });

    it('keeps a character split across writes whole, and lets invalid bytes flow', async () => {
      const { pm, spawn } = setup({ batchMs: 0 });
      const sink = new FakeSink();
      pm.attach(sink);
      const p = await spawn(P1, 0);
      const smile = Buffer.from('ok 😀 done');
      p.stdout.write(smile.subarray(0, 5)); // "ok " + 2 of the emoji's 4 bytes
      await settle();
      expect(sink.text(0)).toBe('ok ');
      p.stdout.write(smile.subarray(5));
      await until(() => sink.text(0) === 'ok 😀 done', 'the rest');
      for (const f of sink.frames(0)) expect(() => new TextDecoder('utf-8', { fatal: true }).decode(f.payload)).not.toThrow();
      p.stdout.write(Buffer.from([0xff, 0x41]));
      await until(() => sink.stream(0).length === smile.length + 2, 'invalid bytes');
    });

    it('sends a held-back partial character when the process exits, before proc.exit', async () => {
      const { pm, spawn } = setup();
      const sink = new FakeSink();
      pm.attach(sink);
      const p = await spawn(P1, 0);
      p.stdout.write(Buffer.from([0x41, 0xf0, 0x9f]));
      await settle();
      expect(sink.stream(0)).toEqual(Buffer.from([0x41]));
      p.exit();
      await until(() => sink.events('proc.exit').length === 1, 'exit');
      expect(sink.stream(0)).toEqual(Buffer.from([0x41, 0xf0, 0x9f]));
      expect(sink.events('proc.exit')[0].endOffsets).toEqual({ stdout: 3, stderr: 0, pty: 0 });
    });

    it('waits while the socket has more than 1 MiB queued and shares it round-robin afterwards', async () => {
      const { pm, spawn } = setup({ chunkBytes: 4 * KiB });
      const sink = new FakeSink();
      sink.bufferedAmount = 2 * 1024 * KiB;
      pm.attach(sink);
      const a = await spawn(P1, 0);
      const b = await spawn(P2, 4);
      a.stdout.write(Buffer.alloc(16 * KiB, 'a'));
      b.stdout.write(Buffer.alloc(8 * KiB, 'b'));
      await settle();
      await new Promise((r) => setTimeout(r, 30));
      expect(sink.frames().length).toBe(0);
      sink.bufferedAmount = 0;
      await until(() => sink.frames().length === 6, 'six chunks');
      expect(sink.frames().map((f) => f.streamId)).toEqual([0, 4, 0, 4, 0, 0]);
    });

    it('survives a sink that throws, and carries on with the next socket', async () => {
      const { pm, spawn, logger } = setup();
      const bad = new FakeSink();
      bad.sendBinary = () => {
        throw new Error('socket exploded');
      };
      pm.attach(bad);
      const p = await spawn(P1, 0);
      p.stdout.write('still here');
      await settle();
      expect(logger.lines.some((l) => l.msg === 'handing output to the data socket failed')).toBe(true);
      const good = new FakeSink();
      pm.attach(good);
      expect(good.text(0)).toBe('still here');
    });
  });

  describe('flow control', () => {
    it('pauses the producer when the window is full without acks, and resumes on acks', async () => {
      const windowBytes = 64 * KiB;
      const { pm, spawn } = setup({ windowBytes, chunkBytes: 16 * KiB, ringBytes: 8 * KiB });
      const sink = new FakeSink();
      pm.attach(sink);
      const p = await spawn(P1, 0);
      const chunk = Buffer.alloc(8 * KiB, 'z');
      let written = 0;
      for (let i = 0; i < 200 && p.stdout.write(chunk); i++) {
        written += chunk.length;
        await settle();
      }
      written += chunk.length; // the write that returned false was still accepted
      expect(p.stdout.isPaused()).toBe(true);
      expect(written).toBeLessThan(200 * chunk.length);
      expect(sink.stream(0).length).toBe(windowBytes);
      // Acks let the rest through: ack whatever arrived until everything has.
      while (sink.stream(0).length < written) {
        pm.onAck(0, sink.stream(0).length);
        await settle();
      }
      expect(p.stdout.isPaused()).toBe(false);
      expect(sink.stream(0).length).toBe(written);
    });

    it('keeps reading into the ring while detached until the window is full, then blocks the process', async () => {
      const windowBytes = 32 * KiB;
      const { pm, spawn } = setup({ windowBytes, chunkBytes: 8 * KiB });
      const p = await spawn(P1, 0);
      let accepted = 0;
      while (p.stdout.write(Buffer.alloc(KiB, 'q'))) {
        accepted += KiB;
        await settle();
      }
      expect(p.stdout.isPaused()).toBe(true);
      expect(accepted).toBeGreaterThanOrEqual(windowBytes);
      expect(pm.list()[0]!.endOffsets.stdout).toBeGreaterThan(windowBytes);
      expect(pm.list()[0]!.endOffsets.stdout).toBeLessThanOrEqual(windowBytes + 8 * KiB + KiB);
    });
  });

  describe('detach and attach', () => {
    it('announces proc.state first, then resends from the acked offset with nothing duplicated past it', async () => {
      const { pm, spawn } = setup();
      const one = new FakeSink();
      pm.attach(one);
      const p = await spawn(P1, 0);
      p.stdout.write('0123456789');
      await until(() => one.text(0) === '0123456789', 'first output');
      pm.onAck(0, 4);
      pm.detach();
      p.stdout.write('abc');
      p.stderr!.write('E');
      await settle();
      expect(one.text(0)).toBe('0123456789');
      const two = new FakeSink();
      pm.attach(two);
      expect(two.sent[0]).toEqual({
        type: 'event',
        event: 'proc.state',
        data: { processes: [{ processId: P1, streamBase: 0, running: true, endOffsets: { stdout: 13, stderr: 1, pty: 0 } }] },
      });
      expect(two.frames(0)[0]!.offset).toBe(4);
      expect(two.text(0, 4)).toBe('456789abc');
      expect(two.text(1)).toBe('E');
      // An ack on the new socket past what it was sent skips ahead instead of resending.
      pm.onAck(0, 13);
      p.stdout.write('!');
      await until(() => two.text(0, 4) === '456789abc!', 'more output');
    });

    it('reports an exit that happened while detached on the next attach, after the resend', async () => {
      const { pm, spawn } = setup();
      const p = await spawn(P1, 0);
      p.stdout.write('done\n');
      p.exit({ exitCode: 3, reason: 'exit' });
      await until(() => pm.list()[0]!.running === false, 'exit recorded');
      const sink = new FakeSink();
      pm.attach(sink);
      expect(sink.sent.map((s) => (s.type === 'event' ? s.event : `bytes@${s.frame.streamId}`))).toEqual([
        'proc.state',
        'bytes@0',
        'proc.exit',
      ]);
      expect(sink.events('proc.state')[0].processes[0]).toMatchObject({ running: false, endOffsets: { stdout: 5 } });
      expect(sink.events('proc.exit')[0]).toEqual({ processId: P1, exitCode: 3, reason: 'exit', endOffsets: { stdout: 5, stderr: 0, pty: 0 } });
      // Every later socket hears it again (the edge treats proc.exit as idempotent), with only unacked bytes before it.
      pm.onAck(0, 5);
      const again = new FakeSink();
      pm.attach(again);
      expect(again.sent.map((s) => (s.type === 'event' ? s.event : 'bytes'))).toEqual(['proc.state', 'proc.exit']);
    });
  });

  describe('exit', () => {
    it('hands proc.exit to the sink only after every output frame of the process', async () => {
      const { pm, spawn } = setup({ windowBytes: 16 * KiB, chunkBytes: 4 * KiB });
      const sink = new FakeSink();
      pm.attach(sink);
      const p = await spawn(P1, 0);
      p.stdout.write(Buffer.alloc(40 * KiB, 'o'));
      p.stderr!.write('bye');
      p.exit({ exitCode: 0, reason: 'exit' });
      await until(() => pm.list()[0]!.running === false, 'exit recorded');
      expect(sink.events('proc.exit')).toEqual([]); // the window holds back the rest, so the exit waits too
      while (sink.events('proc.exit').length === 0) {
        pm.onAck(0, sink.stream(0).length);
        await settle();
      }
      const last = sink.sent.at(-1);
      expect(last).toMatchObject({ type: 'event', event: 'proc.exit', data: { endOffsets: { stdout: 40 * KiB, stderr: 3 } } });
      expect(sink.stream(0).length).toBe(40 * KiB);
      expect(sink.text(1)).toBe('bye');
    });

    it('kills the group after timeoutMs and reports reason "timeout"', async () => {
      const { pm, spawn } = setup();
      const sink = new FakeSink();
      pm.attach(sink);
      const p = await spawn(P1, 0, { timeoutMs: 30 });
      await until(() => sink.events('proc.exit').length === 1, 'timeout exit', 2_000);
      expect(p.kills).toEqual(['SIGKILL']);
      expect(sink.events('proc.exit')[0]).toMatchObject({ processId: P1, reason: 'timeout', signal: 'SIGKILL' });
    });

    it('reports the exit after a grace period when a left-behind child keeps the pipe open', async () => {
      const { pm, spawn, runtime } = setup({ exitGraceMs: 50 });
      const sink = new FakeSink();
      pm.attach(sink);
      await spawn(P1, 0);
      runtime.last.stdout.write('parent');
      // The process is gone but its stdout stays open (a background child holds it).
      (runtime.last as unknown as { resolveExit: (i: unknown) => void }).resolveExit({ exitCode: 0, reason: 'exit' });
      runtime.last.stderr!.end();
      await until(() => sink.events('proc.exit').length === 1, 'exit after grace', 2_000);
      expect(sink.events('proc.exit')[0].endOffsets.stdout).toBe(6);
    });

    it('keeps at most maxExited exited records, dropping fully acknowledged ones first', async () => {
      const { pm, spawn } = setup({ maxExited: 2 });
      const sink = new FakeSink();
      pm.attach(sink);
      for (const [i, id] of ['prc_000000a1', 'prc_000000a2', 'prc_000000a3'].entries()) {
        const p = await spawn(id, i * 4);
        p.stdout.write('x');
        p.exit();
        await until(() => sink.events('proc.exit').length === i + 1, 'exit');
        if (i === 1) pm.onAck(i * 4, 1); // only the second one is settled at the edge
      }
      expect(pm.list().map((p) => p.processId)).toEqual(['prc_000000a1', 'prc_000000a3']);
    });
  });

  describe('stdin', () => {
    it('writes each Input byte once by offset and closes stdin on the End flag', async () => {
      const { pm, spawn } = setup();
      const p = await spawn(P1, 12);
      const input = (offset: number, text: string, flags = 0) =>
        pm.onBinary({ kind: FrameKind.Input, flags, streamId: 12, offset, payload: Buffer.from(text) });
      input(0, 'ls');
      input(0, 'ls'); // duplicate after a reconnect
      input(1, 's -l'); // overlaps one byte
      input(5, '\n', FrameFlag.End);
      pm.onBinary({ kind: FrameKind.Input, flags: 0, streamId: 99, offset: 0, payload: Buffer.from('nobody') });
      pm.onBinary({ kind: FrameKind.Output, flags: 0, streamId: 12, offset: 6, payload: Buffer.from('wrong kind') });
      expect(Buffer.concat(p.stdin).toString()).toBe('ls -l\n');
      expect(p.stdinClosed).toBe(true);
    });
  });

  describe('proc.kill and proc.resize', () => {
    it('signals the group (SIGTERM by default), resizes, and answers not_found for unknown ids', async () => {
      const { call, spawn, runtime } = setup();
      runtime.onKill = () => undefined; // the process ignores signals
      const p = await spawn(P1, 0, { tty: true });
      expect(await call('proc.kill', { processId: P1 })).toMatchObject({ ok: true, result: {} });
      expect(await call('proc.kill', { processId: P1, signal: 'SIGINT' })).toMatchObject({ ok: true });
      expect(await call('proc.resize', { processId: P1, cols: 100, rows: 30 })).toMatchObject({ ok: true, result: {} });
      expect(p.kills).toEqual(['SIGTERM', 'SIGINT']);
      expect(p.resizes).toEqual([[100, 30]]);
      expect(await call('proc.kill', { processId: P2 })).toMatchObject({ ok: false, error: { code: 'not_found' } });
      expect(await call('proc.resize', { processId: P2, cols: 1, rows: 1 })).toMatchObject({ ok: false, error: { code: 'not_found' } });
      expect(await call('proc.kill', { processId: P1, signal: 'SIGSTOP' })).toMatchObject({ ok: false, error: { code: 'validation_failed' } });
      p.exit();
    });
  });

  describe('killAll', () => {
    it('SIGKILLs every running group, waits for the exits and leaves no timer behind', async () => {
      const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
      const baseline = timers();
      const { pm, spawn } = setup({ exitGraceMs: 10_000 });
      const sink = new FakeSink();
      pm.attach(sink);
      const a = await spawn(P1, 0, { timeoutMs: 60_000 });
      const b = await spawn(P2, 4);
      b.stdout.write(Buffer.alloc(1, 'b'));
      await pm.killAll();
      expect(a.kills).toEqual(['SIGKILL']);
      expect(b.kills).toEqual(['SIGKILL']);
      expect(pm.list().every((p) => !p.running)).toBe(true);
      expect(sink.events('proc.exit').map((e) => e.processId).sort()).toEqual([P1, P2]);
      pm.detach();
      expect(timers()).toBe(baseline);
    });
  });
});

describe('ProcessManager adopt (after an agent restart)', () => {
  it('announces an adopted process in proc.state, sends from the acknowledged offset and passes acks on to the runtime', async () => {
    const runtime: FakeRuntime & Pick<Runtime, 'adopt'> = new FakeRuntime();
    const acks: Array<[string, number]> = [];
    const proc = Object.assign(new FakeProcess({ command: ['sh'], tty: false }), {
      ack: (stream: 'stdout' | 'stderr' | 'pty', offset: number) => void acks.push([stream, offset]),
    });
    let resumed = 0;
    runtime.adopt = async (sessionId: string) => {
      expect(sessionId).toBe('ses_1');
      return [{ handle: proc, tag: { processId: P1, streamBase: 4, command: ['sh'] }, startedAt: 1234, offsets: { stdout: 100, stderr: 7 }, resume: async () => void resumed++ }];
    };
    const pm = new ProcessManager({ runtime, sessionId: 'ses_1', logger: memoryLogger() });
    managers.push(pm);
    await pm.adopt();
    expect(resumed).toBe(1);
    const sink = new FakeSink();
    pm.attach(sink);
    expect(sink.events('proc.state')).toEqual([{ processes: [{ processId: P1, streamBase: 4, running: true, endOffsets: { stdout: 100, stderr: 7, pty: 0 } }] }]);
    proc.stdout.write('rest');
    await until(() => sink.frames(4).length === 1, 'output');
    expect(sink.frames(4)[0]).toMatchObject({ kind: FrameKind.Output, offset: 100 });
    expect(sink.stream(4, 100).toString()).toBe('rest');
    pm.onAck(4, 104);
    expect(acks).toEqual([['stdout', 104]]);
    expect(pm.list()[0]).toMatchObject({ processId: P1, startedAt: 1234, running: true });
  });
});
