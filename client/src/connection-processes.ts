/**
 * The processes one connection follows. The edge subscribes every connected
 * client to every new process, and its output can come before the
 * `process_started` that names it, so frames for a process nobody here
 * claimed yet are held while a start request of ours is unanswered; once
 * none is, unclaimed processes (another tab's) are acknowledged as they come
 * and otherwise ignored. `attach` follows any process from chosen offsets.
 */
import { ContainerCommandPayload, ExecCommandPayload, OpenTerminalPayload } from '../../shared/protocol/client';
import type { StreamName } from '../../shared/protocol/session-data';
import type { z } from 'zod';
import { utf8 } from './bytes';
import { ClientErrorCode, MominaiError } from './errors';
import { HistoryList, ProcessStarted, type ExitInfo, type GapInfo } from './protocol';
import { ProcessHandle, type ProcessExit, type ProcessLink } from './process';

type Held = { kind: 'data'; stream: StreamName; offset: number; bytes: Uint8Array } | { kind: 'exit'; exit: ProcessExit } | { kind: 'gap'; gap: GapInfo };

export type RunOptions = Omit<z.input<typeof ContainerCommandPayload>, 'command'>;
export type ExecOptions = Omit<z.input<typeof ExecCommandPayload>, 'command' | 'args'>;
export type TerminalOptions = z.input<typeof OpenTerminalPayload>;

interface Requester {
  request(type: string, payload?: unknown, timeoutMs?: number): Promise<{ type: string; payload: unknown }>;
  sendEvent(type: string, payload: unknown): void;
}

export class ConnectionProcesses {
  private readonly handles = new Map<string, ProcessHandle>();
  private readonly streams = new Map<number, { processId: string; stream: StreamName }>();
  private readonly held = new Map<string, Held[]>();
  private readonly ignored = new Set<string>();
  private starting = 0;

  constructor(
    private readonly conn: Requester,
    private readonly link: ProcessLink,
  ) {}

  run(command: string, opts: RunOptions = {}): Promise<ProcessHandle> {
    return this.start('container_command', ContainerCommandPayload.parse({ ...opts, command }), false);
  }

  exec(command: string, args: string[] = [], opts: ExecOptions = {}): Promise<ProcessHandle> {
    const payload = ExecCommandPayload.parse({ ...opts, command, args });
    return this.start('exec_command', payload, payload.tty);
  }

  openTerminal(opts: TerminalOptions = {}): Promise<ProcessHandle> {
    return this.start('open_terminal', OpenTerminalPayload.parse(opts), true);
  }

  /** Follows an existing process from `offsets` (default: its first byte). */
  async attach(processId: string, opts: { offsets?: Partial<Record<StreamName, number>> } = {}): Promise<ProcessHandle> {
    const existing = this.handles.get(processId);
    if (existing) return existing;
    const history = HistoryList.safeParse((await this.conn.request('history', { limit: 1000 })).payload);
    const info = history.success ? history.data.commands.find((c) => c.processId === processId) : undefined;
    if (!info) throw new MominaiError('not_found', 'no such process');
    this.ignored.delete(processId);
    this.held.delete(processId);
    const handle = new ProcessHandle(processId, info.tty, this.link, opts.offsets);
    this.handles.set(processId, handle);
    await this.conn.request('resume', this.resumePayload(handle));
    return handle;
  }

  private async start(type: string, payload: unknown, tty: boolean): Promise<ProcessHandle> {
    this.starting += 1;
    try {
      const reply = await this.conn.request(type, payload);
      const started = ProcessStarted.safeParse(reply.payload);
      if (reply.type !== 'process_started' || !started.success) throw new MominaiError(ClientErrorCode.BadResponse, `unexpected answer ${reply.type}`);
      const handle = new ProcessHandle(started.data.processId, started.data.tty ?? tty, this.link);
      this.handles.set(handle.processId, handle);
      for (const h of this.held.get(handle.processId) ?? []) this.feed(handle, h);
      this.held.delete(handle.processId);
      return handle;
    } finally {
      this.starting -= 1;
      if (this.starting === 0) this.ignoreUnclaimed();
    }
  }

  private ignoreUnclaimed(): void {
    for (const [processId, list] of this.held) {
      this.ignored.add(processId);
      for (const h of list) if (h.kind === 'data') this.conn.sendEvent('ack', { processId, stream: h.stream, offset: h.offset + h.bytes.byteLength });
    }
    this.held.clear();
  }

  private feed(handle: ProcessHandle, h: Held): void {
    if (h.kind === 'data') handle.receive(h.stream, h.offset, h.bytes);
    else if (h.kind === 'gap') handle.gap(h.gap);
    else handle.finish(h.exit);
  }

  private deliver(processId: string, h: Held): void {
    const handle = this.handles.get(processId);
    if (handle) return this.feed(handle, h);
    if (this.ignored.has(processId) || this.starting === 0) {
      this.ignored.add(processId);
      if (h.kind === 'data') this.conn.sendEvent('ack', { processId, stream: h.stream, offset: h.offset + h.bytes.byteLength });
      return;
    }
    const list = this.held.get(processId) ?? [];
    list.push(h);
    this.held.set(processId, list);
  }

  announce(processId: string, stream: StreamName, streamId: number): void {
    this.streams.set(streamId, { processId, stream });
  }

  onBinary(streamId: number, offset: number, bytes: Uint8Array): void {
    const t = this.streams.get(streamId);
    if (t) this.deliver(t.processId, { kind: 'data', stream: t.stream, offset, bytes });
  }

  onText(processId: string, stream: StreamName, offset: number, data: string): void {
    this.deliver(processId, { kind: 'data', stream, offset, bytes: utf8(data) });
  }

  onExit(e: ExitInfo): void {
    this.deliver(e.processId, { kind: 'exit', exit: { exitCode: e.exitCode, reason: e.reason, ...(e.signal ? { signal: e.signal } : {}) } });
  }

  onGap(g: GapInfo): void {
    this.deliver(g.processId, { kind: 'gap', gap: g });
  }

  /** After a reconnect: ask for every followed process from the next byte each stream expects. */
  resumeAll(): void {
    for (const h of this.handles.values()) {
      if (h.hasExited) continue;
      this.conn.request('resume', this.resumePayload(h)).catch(() => undefined);
    }
  }

  private resumePayload(h: ProcessHandle): unknown {
    const offsets = h.offsets();
    const stream: StreamName = h.tty ? 'pty' : 'stdout';
    return { processId: h.processId, stream, fromOffset: offsets[stream] ?? 0, offsets };
  }

  /** A handle whose process ended and whose output was read needs no resume. */
  forget(processId: string): void {
    this.handles.delete(processId);
    for (const [id, t] of this.streams) if (t.processId === processId) this.streams.delete(id);
  }

  closeAll(): void {
    for (const h of this.handles.values()) h.finish({ exitCode: null, reason: 'lost' });
    this.handles.clear();
  }
}
