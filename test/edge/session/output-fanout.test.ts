/** The output fanout: per-client windows, pauses, gaps, binary streams and the exit's place, without a stack. */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { clientAttachment } from '../../../edge/session/attachments';
import { OutputFanout, CLIENT_WINDOW_BYTES, JOURNAL_BYTES } from '../../../edge/session/output-fanout';
import { JournalStore } from '../../../edge/session/journal-store';
import { decodeBinaryFrame } from '../../../shared/protocol/binary';
import type { ProcExitEvent } from '../../../shared/protocol/session-data';
import { FakeSocket, MemoryClientStore, MemoryProcessStore } from '../../helpers/memory-stores';

const MiB = 1024 * 1024;
const P = 'prc_0000000000000001';

function setup(output: 'text' | 'binary' = 'text', withStorage = true) {
  const stored = new JournalStore(new MemoryProcessStore(), JOURNAL_BYTES);
  const socket = new FakeSocket({ role: 'client', userId: 'usr_1', output, origin: 'http://edge.test', sid: 's1' });
  let exit: ProcExitEvent | undefined;
  const gaps: number[] = [];
  const fanout = new OutputFanout({
    send: (ws, frame) => ws.send(JSON.stringify(frame)),
    sendBinary: (ws, bytes) => ws.send(bytes),
    clients: () => [socket.ws],
    socketInfo: (ws) => {
      const a = clientAttachment(ws);
      return a && { sid: a.sid, binary: a.output === 'binary' };
    },
    store: new MemoryClientStore(),
    backing: (p, s) => (withStorage ? stored.backing(p, s) : undefined),
    streamIdOf: () => 40,
    onGap: (_p, _s, offset) => void gaps.push(offset),
    exitOf: () => exit,
    streamsOf: () => ['stdout', 'stderr'],
  });
  const frames = () => socket.frames();
  const outputBytes = () => frames().filter((f) => f.type === 'command_output').reduce((n, f) => n + Number(f.payload.length), 0);
  return { socket, fanout, frames, outputBytes, gaps, setExit: (e: ProcExitEvent) => void (exit = e) };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('OutputFanout', () => {
  it('sends a client at most its window past its last ack, says flow_paused once, and goes on after an ack', () => {
    const t = setup();
    t.fanout.subscribe(t.socket.ws, P, {});
    for (let i = 0; i < 6; i++) t.fanout.ingest(P, 'stdout', i * MiB, new Uint8Array(MiB).fill(0x61));
    expect(t.outputBytes()).toBe(CLIENT_WINDOW_BYTES);
    expect(t.frames().filter((f) => f.type === 'flow_paused').map((f) => f.payload)).toEqual([{ processId: P, stream: 'stdout', offset: CLIENT_WINDOW_BYTES }]);
    t.fanout.ack(t.socket.ws, P, 'stdout', 2 * MiB);
    // The bytes past the window left memory meanwhile: they come back from storage, with no gap.
    expect(t.outputBytes()).toBe(6 * MiB);
    expect(t.frames().some((f) => f.type === 'gap')).toBe(false);
  });

  it('sends command_exit once, and only after all of the output', () => {
    const t = setup();
    t.fanout.subscribe(t.socket.ws, P, {});
    t.fanout.ingest(P, 'stdout', 0, new TextEncoder().encode('abc'));
    t.setExit({ processId: P, exitCode: 0, reason: 'exit', endOffsets: { stdout: 5, stderr: 0, pty: 0 } });
    t.fanout.pump(t.socket.ws, P);
    expect(t.frames().some((f) => f.type === 'command_exit')).toBe(false);
    t.fanout.ingest(P, 'stdout', 3, new TextEncoder().encode('de'));
    t.fanout.pump(t.socket.ws, P);
    expect(t.frames().map((f) => f.type)).toEqual(['command_output', 'command_output', 'command_exit']);
    expect(t.frames().at(-1)!.payload).toEqual({ processId: P, exitCode: 0, reason: 'exit' });
  });

  it('tells a client that falls behind the journal of the gap, then sends the oldest bytes held', () => {
    const t = setup('text', false);
    // Nobody follows yet, and no storage: the journal's 512 KiB tail keeps only the newest bytes.
    for (let i = 0; i < 4; i++) t.fanout.ingest(P, 'stdout', i * 256 * 1024, new Uint8Array(256 * 1024).fill(0x62));
    const start = t.fanout.journal(P, 'stdout').start;
    expect(start).toBeGreaterThan(0);
    t.fanout.subscribe(t.socket.ws, P, { stdout: 0 });
    const [first, second] = t.frames();
    expect(first).toEqual({ type: 'gap', payload: { processId: P, stream: 'stdout', fromOffset: 0, toOffset: start } });
    expect(second?.type).toBe('command_output');
    expect(second?.payload.offset).toBe(start);
  });

  it('reports bytes that skip ahead as a gap in the journal', () => {
    const t = setup();
    t.fanout.ingest(P, 'stdout', 0, new Uint8Array(10));
    t.fanout.ingest(P, 'stdout', 50, new Uint8Array(10));
    expect(t.gaps).toEqual([50]);
  });

  it('announces each stream once to a binary client, then sends raw frames at their offsets', () => {
    const t = setup('binary');
    t.fanout.subscribe(t.socket.ws, P, {});
    t.fanout.ingest(P, 'stdout', 0, new Uint8Array([0, 1, 2]));
    t.fanout.ingest(P, 'stdout', 3, new Uint8Array([3]));
    expect(t.frames()).toEqual([{ type: 'output_stream', payload: { processId: P, stream: 'stdout', streamId: 40 } }]);
    const bins = t.socket.sent.filter((d): d is Uint8Array => typeof d !== 'string').map((b) => decodeBinaryFrame(b));
    expect(bins.map((b) => [b.streamId, b.offset, [...b.payload]])).toEqual([
      [40, 0, [0, 1, 2]],
      [40, 3, [3]],
    ]);
  });

  it('does not cut a UTF-8 character between text frames', () => {
    const t = setup();
    t.fanout.subscribe(t.socket.ws, P, {});
    const text = 'é'.repeat(200 * 1024); // 400 KiB, more than one text frame
    t.fanout.ingest(P, 'stdout', 0, new TextEncoder().encode(text));
    const out = t.frames().filter((f) => f.type === 'command_output');
    expect(out.length).toBeGreaterThan(1);
    expect(out.map((f) => String(f.payload.data)).join('')).toBe(text);
    expect(out.some((f) => String(f.payload.data).includes('\ufffd'))).toBe(false);
  });

  it('joins chunks that arrived apart into one frame, a character split between two chunks included', () => {
    for (const output of ['text', 'binary'] as const) {
      const t = setup(output);
      const bytes = new TextEncoder().encode('aé€b'); // 61 c3 a9 e2 82 ac 62
      // Three chunks before the client subscribes; the cuts fall inside é and inside €.
      t.fanout.ingest(P, 'stdout', 0, bytes.subarray(0, 2));
      t.fanout.ingest(P, 'stdout', 2, bytes.subarray(2, 4));
      t.fanout.ingest(P, 'stdout', 4, bytes.subarray(4));
      t.fanout.subscribe(t.socket.ws, P, {});
      if (output === 'text') {
        expect(t.frames().filter((f) => f.type === 'command_output').map((f) => f.payload)).toEqual([
          { processId: P, stream: 'stdout', data: 'aé€b', offset: 0, length: 7 },
        ]);
      } else {
        const bins = t.socket.sent.filter((d): d is Uint8Array => typeof d !== 'string').map((b) => decodeBinaryFrame(b));
        expect(bins.map((b) => [b.streamId, b.offset, [...b.payload]])).toEqual([[40, 0, [...bytes]]]);
      }
    }
  });

  it('stops counting a client that has not acknowledged for 10 s as holding the stream back', () => {
    vi.useFakeTimers({ now: 1_000_000 });
    const t = setup();
    t.fanout.subscribe(t.socket.ws, P, {});
    t.fanout.ingest(P, 'stdout', 0, new Uint8Array(100));
    t.fanout.ack(t.socket.ws, P, 'stdout', 60);
    expect(t.fanout.slowestActive(P, 'stdout', Date.now())).toBe(60);
    expect(t.fanout.slowestActive(P, 'stdout', Date.now() + 10_001)).toBeUndefined();
  });
});
