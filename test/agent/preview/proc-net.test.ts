import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { execListListening, parseProcNetTcp } from '../../../agent/services/preview/proc-net';
import type { ExecSpec, ExitInfo, ProcessHandle, Runtime } from '../../../agent/runtime/runtime';

// Read from a Linux host (x86-64, little-endian) with servers on 127.0.0.1:5173, 0.0.0.0:3000,
// [::]:8080 and [::1]:9229, plus established and TIME_WAIT sockets that must be ignored.
const TCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:AE6D 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 304317 1 00000000b88f6db8 100 0 0 10 0
  11: 00000000:0BB8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 305665 1 0000000042a8ed1e 100 0 0 10 0
  16: 0100007F:1435 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 305664 1 00000000157cfaf9 100 0 0 10 0
  17: 0100007F:98FC 0100007F:869D 01 00000000:00000000 00:00000000 00000000     0        0 303715 2 000000003318612b 20 4 0 17 -1
  20: 0100007F:D862 0100007F:B025 06 00000000:00000000 03:00000290 00000000     0        0 0 3 00000000c4035c74
  52: 0100007F:D1EE 0100007F:0BB8 01 00000000:00000000 00:00000000 00000000     0        0 305668 2 00000000931389b5 20 0 0 10 -1
`;
const TCP6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:240D 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 305667 1 0000000076712f2d 100 0 0 10 0
   1: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 305666 1 000000006ecaba13 100 0 0 10 0
   2: 0000000000000000FFFF00000100007F:1F91 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 305670 1 000000006ecaba14 100 0 0 10 0
`;

describe('parseProcNetTcp', () => {
  it('lists the local ports of LISTEN sockets in both tables, unique and ascending', () => {
    expect(parseProcNetTcp(TCP + TCP6)).toEqual([3000, 5173, 8080, 8081, 9229, 44653]);
  });

  it('leaves out sockets bound only to loopback when asked (127/8, ::1, ::ffff:127.x)', () => {
    expect(parseProcNetTcp(TCP + TCP6, { includeLoopback: false })).toEqual([3000, 8080]);
  });

  it('ignores headers, blank lines and garbage', () => {
    expect(parseProcNetTcp('')).toEqual([]);
    expect(parseProcNetTcp('not a table\n\n  0: zz\n')).toEqual([]);
  });
});

class FakeExec implements ProcessHandle {
  readonly stdout = new PassThrough();
  readonly stderr = new PassThrough();
  readonly tty = false;
  readonly exited: Promise<ExitInfo>;
  killed: NodeJS.Signals[] = [];
  private resolveExit!: (info: ExitInfo) => void;
  constructor() {
    this.exited = new Promise((r) => (this.resolveExit = r));
  }
  write(): void {}
  closeStdin(): void {}
  async resize(): Promise<void> {}
  async kill(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    this.killed.push(signal);
    this.finish('', { exitCode: null, signal, reason: 'killed' });
  }
  finish(out: string, info: ExitInfo = { exitCode: 0, reason: 'exit' }): void {
    this.stdout.end(out);
    this.stderr.end();
    this.resolveExit(info);
  }
}

function fakeRuntime(onExec: (p: FakeExec, spec: ExecSpec) => void): Runtime & { specs: ExecSpec[] } {
  const specs: ExecSpec[] = [];
  const reject = () => Promise.reject(new Error('not faked'));
  return {
    mode: 'local',
    specs,
    probe: async () => ({ available: false }),
    list: async () => [],
    create: reject,
    start: reject,
    stop: reject,
    remove: async () => undefined,
    stats: async () => null,
    close: async () => undefined,
    exec: async (_id, spec) => {
      specs.push(spec);
      const p = new FakeExec();
      setImmediate(() => onExec(p, spec));
      return p;
    },
  };
}

describe('execListListening', () => {
  it('cats both tables in the session and parses them', async () => {
    const runtime = fakeRuntime((p) => p.finish(TCP + TCP6));
    const list = execListListening(runtime, 'ses_1', { includeLoopback: false });
    expect(await list()).toEqual([3000, 8080]);
    expect(runtime.specs[0]).toMatchObject({ command: ['sh', '-c', 'cat /proc/net/tcp /proc/net/tcp6 2>/dev/null'], tty: false });
  });

  it('parses what cat could read when one table is missing (exit status 1)', async () => {
    const runtime = fakeRuntime((p) => p.finish(TCP, { exitCode: 1, reason: 'exit' }));
    expect(await execListListening(runtime, 'ses_1')()).toEqual([3000, 5173, 44653]);
  });

  it('fails when the image has no cat', async () => {
    const runtime = fakeRuntime((p) => p.finish('', { exitCode: 127, reason: 'exit' }));
    await expect(execListListening(runtime, 'ses_1')()).rejects.toMatchObject({ code: 'bad_request' });
  });

  it('kills an exec that hangs and fails with timeout', async () => {
    let proc: FakeExec | undefined;
    const runtime = fakeRuntime((p) => (proc = p));
    await expect(execListListening(runtime, 'ses_1', { timeoutMs: 50 })()).rejects.toMatchObject({ code: 'timeout' });
    expect(proc?.killed).toEqual(['SIGKILL']);
  });
});
