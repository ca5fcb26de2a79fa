/**
 * The process manager over the real local runtime: real child processes,
 * real pipes, a real `script` PTY. The edge side is a small in-memory journal
 * that keeps bytes by offset (dropping duplicates, failing on a gap) and acks
 * what it stored, as the Session DO does.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Dispatcher } from '../../../agent/connection/dispatcher';
import { memoryLogger } from '../../../agent/logger';
import { LocalRuntime } from '../../../agent/runtime/local/local-runtime';
import { ProcessManager } from '../../../agent/services/processes/process-manager';
import type { ProcessManagerOptions } from '../../../agent/services/processes/types';
import { FakeSink, until } from './fakes';

const SESSION = 'ses_1';
const KiB = 1024;

/** An edge that journals each stream by offset and acks what it stored. */
class JournalEdge extends FakeSink {
  readonly journal = new Map<number, Buffer[]>();
  readonly have = new Map<number, number>();
  constructor(private readonly pm: ProcessManager) {
    super();
  }
  override sendBinary(bytes: Uint8Array): boolean {
    if (!super.sendBinary(bytes)) return false;
    const s = this.sent.at(-1)!;
    if (s.type !== 'binary') return true;
    const { streamId, offset, payload } = s.frame;
    const have = this.have.get(streamId) ?? 0;
    if (offset > have) throw new Error(`gap on stream ${streamId}: have ${have}, got ${offset}`);
    const fresh = payload.subarray(have - offset);
    if (fresh.byteLength > 0) {
      this.journal.set(streamId, [...(this.journal.get(streamId) ?? []), Buffer.from(fresh)]);
      this.have.set(streamId, have + fresh.byteLength);
      setImmediate(() => this.open && this.pm.onAck(streamId, have + fresh.byteLength));
    }
    return true;
  }
  override text(streamId: number): string {
    return Buffer.concat(this.journal.get(streamId) ?? []).toString('utf8');
  }
}

/** Live processes (not zombies) whose environment carries `mark`. */
function processesMarked(mark: string): number[] {
  const pids: number[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) continue;
      if (fs.readFileSync(`/proc/${name}/environ`, 'utf8').split('\0').includes(mark)) pids.push(Number(name));
    } catch {
      // gone, or not ours to read
    }
  }
  return pids;
}

describe('ProcessManager on the local runtime', () => {
  let base: string;
  let runtime: LocalRuntime;
  const managers: ProcessManager[] = [];

  beforeEach(async () => {
    base = fs.mkdtempSync(path.join(os.tmpdir(), 'mominai-procs-'));
    runtime = new LocalRuntime({ logger: memoryLogger('warn'), workspaceBase: base });
    await runtime.create({
      sessionId: SESSION,
      userId: 'usr_1',
      image: 'local',
      env: [],
      ports: [],
      limits: { cpu: 1, memoryBytes: 512 * 1024 * KiB, pids: 256 },
    });
  });
  afterEach(async () => {
    for (const pm of managers.splice(0)) await pm.close();
    await runtime.remove(SESSION);
    await runtime.close();
    fs.rmSync(base, { recursive: true, force: true });
  });

  function setup(opts: Partial<ProcessManagerOptions> = {}) {
    const logger = memoryLogger('warn');
    const pm = new ProcessManager({ runtime, sessionId: SESSION, logger, ...opts });
    managers.push(pm);
    const dispatcher = new Dispatcher(logger);
    pm.register(dispatcher);
    let n = 0;
    const call = (method: string, params: unknown) => dispatcher.handle({ type: 'req', id: String(++n), method, params });
    return { pm, call };
  }

  it('delivers 2,000 numbered lines complete and in order through a detach and attach in the middle', async () => {
    const { pm, call } = setup({ windowBytes: 4 * KiB, chunkBytes: 1 * KiB });
    const one = new JournalEdge(pm);
    pm.attach(one);
    const res = await call('proc.spawn', {
      processId: 'prc_00000001',
      streamBase: 0,
      command: ['sh', '-c', 'for i in $(seq 1 2000); do echo line $i; done'],
      tty: false,
    });
    expect(res).toMatchObject({ ok: true });
    await until(() => (one.have.get(0) ?? 0) > 0, 'first output');
    one.open = false;
    pm.detach();
    const two = new JournalEdge(pm);
    // The new socket's edge has what the old one stored (the DO's journal survives the socket).
    two.journal.set(0, [...(one.journal.get(0) ?? [])]);
    two.have.set(0, one.have.get(0) ?? 0);
    pm.attach(two);
    expect(two.sent[0]).toMatchObject({ type: 'event', event: 'proc.state' });
    await until(() => two.events('proc.exit').length === 1, 'the exit', 10_000);
    const expected = Array.from({ length: 2000 }, (_, i) => `line ${i + 1}\n`).join('');
    expect(two.text(0)).toBe(expected);
    expect(two.events('proc.exit')[0]).toMatchObject({ exitCode: 0, reason: 'exit', endOffsets: { stdout: expected.length } });
    expect(two.sent.at(-1)).toMatchObject({ type: 'event', event: 'proc.exit' });
  });

  it('blocks a loud process while no socket is attached, with bounded buffering, and loses nothing', async () => {
    const windowBytes = 64 * KiB;
    const { pm, call } = setup({ windowBytes, ringBytes: 16 * KiB });
    await call('proc.spawn', { processId: 'prc_00000002', streamBase: 0, command: ['seq', '1', '300000'], tty: false });
    // Nothing is acked: the stream stops at the window (plus slack and one read) while the process waits.
    await until(() => (pm.list()[0]?.endOffsets.stdout ?? 0) > windowBytes, 'the window to fill');
    for (let i = 0; i < 10; i++) {
      await new Promise((r) => setTimeout(r, 20));
      expect(pm.list()[0]!.endOffsets.stdout).toBeLessThanOrEqual(windowBytes + 16 * KiB + 64 * KiB);
    }
    expect(pm.list()[0]!.running).toBe(true);
    const edge = new JournalEdge(pm);
    pm.attach(edge);
    await until(() => edge.events('proc.exit').length === 1, 'the exit', 20_000);
    const expected = Array.from({ length: 300000 }, (_, i) => `${i + 1}\n`).join('');
    expect(edge.text(0).length).toBe(expected.length);
    expect(edge.text(0) === expected).toBe(true);
  });

  it('keeps stdout and stderr apart without a TTY and reports the exit code', async () => {
    const { pm, call } = setup();
    const edge = new JournalEdge(pm);
    pm.attach(edge);
    await call('proc.spawn', {
      processId: 'prc_00000003',
      streamBase: 8,
      command: ['sh', '-c', 'printf out1; printf err1 >&2; printf out2; printf "err2 é" >&2; exit 3'],
      tty: false,
    });
    await until(() => edge.events('proc.exit').length === 1, 'the exit');
    expect(edge.text(8)).toBe('out1out2');
    expect(edge.text(9)).toBe('err1err2 é');
    expect(edge.events('proc.exit')[0]).toMatchObject({ exitCode: 3, reason: 'exit', endOffsets: { stdout: 8, stderr: 11, pty: 0 } });
  });

  it('runs a PTY that follows the size it was given and takes keystrokes', async () => {
    const { pm, call } = setup();
    const edge = new JournalEdge(pm);
    pm.attach(edge);
    await call('proc.spawn', {
      processId: 'prc_00000004',
      streamBase: 0,
      command: ['sh', '-c', 'stty size; read x; echo "got $x"'],
      tty: true,
      cols: 91,
      rows: 27,
    });
    await until(() => edge.text(2).includes('27 91'), 'stty size');
    pm.onBinary({ kind: 2, flags: 0, streamId: 0, offset: 0, payload: Buffer.from('hi\r') });
    await until(() => edge.events('proc.exit').length === 1, 'the exit');
    expect(edge.text(2)).toContain('got hi');
  });

  it('kill stops sh -c "sleep 1000 & sleep 1000" with all its children', async () => {
    const { pm, call } = setup();
    const edge = new JournalEdge(pm);
    pm.attach(edge);
    const mark = `MOMINAI_PM_TEST=${randomBytes(8).toString('hex')}`;
    const [key, value] = mark.split('=') as [string, string];
    await call('proc.spawn', {
      processId: 'prc_00000005',
      streamBase: 0,
      command: ['sh', '-c', 'sleep 1000 & sleep 1000'],
      env: { [key]: value },
      tty: false,
    });
    await until(() => processesMarked(mark).length >= 3, 'sh and both sleeps');
    expect(await call('proc.kill', { processId: 'prc_00000005' })).toMatchObject({ ok: true, result: {} });
    await until(() => edge.events('proc.exit').length === 1, 'the exit', 10_000);
    expect(edge.events('proc.exit')[0]).toMatchObject({ reason: 'killed', signal: 'SIGTERM' });
    await until(() => processesMarked(mark).length === 0, 'no process left', 5_000);
  });

  it('killAll ends every process group and reports each exit', async () => {
    const { pm, call } = setup();
    const edge = new JournalEdge(pm);
    pm.attach(edge);
    const mark = `MOMINAI_PM_TEST=${randomBytes(8).toString('hex')}`;
    const [key, value] = mark.split('=') as [string, string];
    for (const [i, cmd] of ['sleep 1000', 'sleep 1000 & wait', 'trap "" TERM; sleep 1000'].entries()) {
      await call('proc.spawn', { processId: `prc_0000001${i}`, streamBase: i * 4, command: ['sh', '-c', cmd], env: { [key]: value }, tty: false });
    }
    await until(() => processesMarked(mark).length >= 5, 'all started');
    await pm.killAll();
    expect(pm.list().every((p) => !p.running)).toBe(true);
    expect(edge.events('proc.exit')).toHaveLength(3);
    await until(() => processesMarked(mark).length === 0, 'no process left', 5_000);
  });
});
