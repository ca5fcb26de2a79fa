/**
 * Fakes at the process manager's seams: a Runtime whose processes are
 * PassThrough streams the test writes to, and a DataSink that records what
 * the manager hands it, in order.
 */
import { PassThrough } from 'node:stream';
import { decodeBinaryFrame, type BinaryFrame } from '../../../shared/protocol/binary';
import type { ExecSpec, ExitInfo, ProcessHandle, Runtime } from '../../../agent/runtime/runtime';
import type { DataSink } from '../../../agent/services/processes/types';

export class FakeProcess implements ProcessHandle {
  readonly stdout = new PassThrough();
  readonly stderr: PassThrough | null;
  readonly stdin: Buffer[] = [];
  stdinClosed = false;
  readonly resizes: Array<[number, number]> = [];
  readonly kills: NodeJS.Signals[] = [];
  readonly exited: Promise<ExitInfo>;
  private resolveExit!: (info: ExitInfo) => void;

  constructor(
    readonly spec: ExecSpec,
    /** What a kill does; by default the process dies of the signal. */
    private readonly onKill: (p: FakeProcess, signal: NodeJS.Signals) => void = (p, s) => p.exit({ exitCode: null, signal: s, reason: 'killed' }),
  ) {
    this.stderr = spec.tty ? null : new PassThrough();
    this.exited = new Promise((r) => (this.resolveExit = r));
  }
  get tty(): boolean {
    return this.spec.tty === true;
  }
  write(data: Uint8Array | string): void {
    this.stdin.push(Buffer.from(data));
  }
  closeStdin(): void {
    this.stdinClosed = true;
  }
  async resize(cols: number, rows: number): Promise<void> {
    this.resizes.push([cols, rows]);
  }
  async kill(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    this.kills.push(signal);
    this.onKill(this, signal);
  }
  /** Ends the output streams and reports the exit. */
  exit(info: ExitInfo = { exitCode: 0, reason: 'exit' }): void {
    this.stdout.end();
    this.stderr?.end();
    this.resolveExit(info);
  }
}

export class FakeRuntime implements Runtime {
  readonly mode = 'local' as const;
  readonly procs: FakeProcess[] = [];
  onKill: ((p: FakeProcess, s: NodeJS.Signals) => void) | undefined;
  failNext: Error | undefined;

  async exec(sessionId: string, s: ExecSpec): Promise<ProcessHandle> {
    if (sessionId !== 'ses_1') throw new Error('unexpected session');
    if (this.failNext) {
      const err = this.failNext;
      this.failNext = undefined;
      throw err;
    }
    const p = new FakeProcess(s, this.onKill);
    this.procs.push(p);
    return p;
  }
  get last(): FakeProcess {
    const p = this.procs.at(-1);
    if (!p) throw new Error('no process yet');
    return p;
  }
  probe = async () => ({ available: false });
  list = async () => [];
  create = () => Promise.reject(new Error('not faked'));
  start = () => Promise.reject(new Error('not faked'));
  stop = () => Promise.reject(new Error('not faked'));
  remove = async () => undefined;
  stats = async () => null;
  close = async () => undefined;
}

export type Sent = { type: 'binary'; frame: BinaryFrame } | { type: 'event'; event: string; data: any };

export class FakeSink implements DataSink {
  readonly sent: Sent[] = [];
  open = true;
  bufferedAmount = 0;

  sendBinary(bytes: Uint8Array): boolean {
    if (!this.open) return false;
    const frame = decodeBinaryFrame(bytes);
    this.sent.push({ type: 'binary', frame: { ...frame, payload: Uint8Array.from(frame.payload) } });
    return true;
  }
  sendEvent(event: string, data: unknown): boolean {
    if (!this.open) return false;
    this.sent.push({ type: 'event', event, data: structuredClone(data) });
    return true;
  }
  frames(streamId?: number): BinaryFrame[] {
    return this.sent.flatMap((s) => (s.type === 'binary' && (streamId === undefined || s.frame.streamId === streamId) ? [s.frame] : []));
  }
  events(name?: string): any[] {
    return this.sent.flatMap((s) => (s.type === 'event' && (name === undefined || s.event === name) ? [s.data] : []));
  }
  /** The bytes of a stream, checking that frames are contiguous from `from` (no gap, no overlap). */
  stream(streamId: number, from = 0): Buffer {
    let next = from;
    const parts: Buffer[] = [];
    for (const f of this.frames(streamId)) {
      if (f.offset !== next) throw new Error(`stream ${streamId}: frame at ${f.offset}, expected ${next}`);
      parts.push(Buffer.from(f.payload));
      next += f.payload.byteLength;
    }
    return Buffer.concat(parts);
  }
  text(streamId: number, from = 0): string {
    return this.stream(streamId, from).toString('utf8');
  }
}

/** The suites here wait with the shared helper; it is re-exported beside the fakes they import. */
export { until } from '../../helpers/wait';

/** Lets stream events already queued run (PassThrough delivers data on the next ticks). */
export const settle = () => new Promise((r) => setImmediate(r));
