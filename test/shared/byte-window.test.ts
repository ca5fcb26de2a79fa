/** The byte streams' state machine that the edge and the agent both wrap (shared/protocol/byte-window.ts). */
import { describe, expect, it } from 'vitest';
import { AppError, ErrorCode } from '../../shared/errors';
import { FrameFlag } from '../../shared/protocol/binary';
import { BYTE_STREAM_CHUNK } from '../../shared/protocol/byte-streams';
import { ByteWindows, type AckPolicy, type IncomingPort } from '../../shared/protocol/byte-window';

const EDGE: AckPolicy = { every: BYTE_STREAM_CHUNK, afterEnd: false };
const AGENT: AckPolicy = { every: 1, afterEnd: true };

/** Settles every promise callback queued so far (no timers involved). */
const settle = () => new Promise<void>((r) => setImmediate(r));

interface Outcome {
  state: 'pending' | 'resolved' | 'rejected';
  error?: unknown;
}

/** Tracks a promise's outcome without awaiting it. */
function watch(p: Promise<void>): Outcome {
  const outcome: Outcome = { state: 'pending' };
  p.then(
    () => {
      outcome.state = 'resolved';
    },
    (err: unknown) => {
      outcome.state = 'rejected';
      outcome.error = err;
    },
  );
  return outcome;
}

class Port implements IncomingPort {
  readonly failures: AppError[] = [];
  fail(err: AppError): void {
    this.failures.push(err);
  }
}

const frame = (offset: number, bytes: number, flags = 0) => ({ offset, flags, payload: new Uint8Array(bytes) });

describe('ByteWindows', () => {
  describe('sending', () => {
    it('has room up to one byte short of the window and blocks at exactly the window size', async () => {
      const windows = new ByteWindows(EDGE, 10);
      const o = windows.openOutgoing(1);
      const below = watch(o.room(9));
      const at = watch(o.room(10));
      await settle();
      expect(below.state).toBe('resolved');
      expect(at.state).toBe('pending');
    });

    it('releases a waiting sender once an ack makes room, and ignores an older ack', async () => {
      const windows = new ByteWindows(EDGE, 10);
      const o = windows.openOutgoing(1);
      const waiting = watch(o.room(20));
      expect(windows.onAck(1, 10)).toBe(true);
      await settle();
      expect(waiting.state).toBe('pending'); // 20 - 10 is still a whole window
      expect(windows.onAck(1, 11)).toBe(true);
      await settle();
      expect(waiting.state).toBe('resolved');
      windows.onAck(1, 3); // out of order: the window does not shrink back
      const next = watch(o.room(20));
      await settle();
      expect(next.state).toBe('resolved');
    });

    it('takes acks only for streams still being sent', () => {
      const windows = new ByteWindows(EDGE, 10);
      expect(windows.onAck(4, 1)).toBe(false);
      const o = windows.openOutgoing(4);
      windows.closeOutgoing(o);
      expect(windows.onAck(4, 1)).toBe(false);
      // A closed window does not take away a newer stream with the same id.
      const newer = windows.openOutgoing(4);
      windows.closeOutgoing(o);
      expect(windows.onAck(4, 1)).toBe(true);
      windows.closeOutgoing(newer);
    });

    it('fails a waiting sender with the abort\'s error, and tells the source to stop', async () => {
      const windows = new ByteWindows(EDGE, 10);
      const stopped: AppError[] = [];
      const o = windows.openOutgoing(2, (err) => stopped.push(err));
      const waiting = watch(o.room(10));
      const refused = new AppError(ErrorCode.BadRequest, 'refused');
      expect(windows.abortOutgoing(2, refused)).toBe(true);
      await settle();
      expect(waiting.state).toBe('rejected');
      expect(waiting.error).toBe(refused);
      expect(stopped).toEqual([refused]);
      // Failed for good: even a frame with room throws.
      await expect(o.room(0)).rejects.toMatchObject({ code: ErrorCode.BadRequest });
      expect(windows.abortOutgoing(3, refused)).toBe(false);
    });
  });

  describe('receiving', () => {
    it('takes frames only at the exact next offset, failing with a protocol error otherwise', () => {
      const windows = new ByteWindows(EDGE, 10);
      const w = windows.openIncoming(5, new Port());
      expect(w.accept(frame(0, 3))).toBeUndefined();
      const err = w.accept(frame(4, 2));
      expect(err).toBeInstanceOf(AppError);
      expect(err).toMatchObject({ code: ErrorCode.ProtocolError, message: 'stream 5: expected offset 3, got 4' });
      expect(w.received).toBe(3);
      expect(w.accept(frame(3, 2, FrameFlag.End))).toBeUndefined();
      expect([w.received, w.ended, w.complete]).toEqual([5, true, false]);
      w.deliver(5);
      expect(w.complete).toBe(true);
    });

    it('acknowledges in steps of a chunk and not after the End frame, with the edge\'s policy', () => {
      const windows = new ByteWindows(EDGE);
      const w = windows.openIncoming(6, new Port());
      const piece = 100 * 1024;
      for (let i = 0; i < 8; i++) expect(w.accept(frame(i * piece, piece))).toBeUndefined();
      const acks = [1, 2, 3, 4, 5, 6].map(() => w.deliver(piece));
      expect(acks).toEqual([undefined, undefined, 3 * piece, undefined, undefined, 6 * piece]);
      expect(w.accept(frame(8 * piece, 0, FrameFlag.End))).toBeUndefined();
      expect([w.deliver(piece), w.deliver(piece)]).toEqual([undefined, undefined]);
      expect(w.complete).toBe(true);
    });

    it('acknowledges every delivery, the last included, with the agent\'s policy', () => {
      const windows = new ByteWindows(AGENT);
      const w = windows.openIncoming(7, new Port());
      w.accept(frame(0, 10));
      w.accept(frame(10, 5, FrameFlag.End));
      expect([w.deliver(0), w.deliver(4), w.deliver(6), w.deliver(5)]).toEqual([undefined, 4, 10, 15]);
    });

    it('fails an aborted reader with the abort\'s error and forgets the stream', () => {
      const windows = new ByteWindows(EDGE);
      const port = new Port();
      const w = windows.openIncoming(8, port);
      const gone = new AppError(ErrorCode.AgentUnavailable, 'gone');
      expect(windows.abortIncoming(8, gone)).toBe(true);
      expect(port.failures).toEqual([gone]);
      expect([windows.isOpen(w), windows.incomingStream(8), windows.closeIncoming(w)]).toEqual([false, undefined, false]);
      expect(windows.abortIncoming(8, gone)).toBe(false);
    });
  });

  it('failAll fails every reader and every waiting sender with the socket\'s error, without stopping sources', async () => {
    const windows = new ByteWindows(EDGE, 10);
    const readers = [new Port(), new Port()];
    windows.openIncoming(1, readers[0]!);
    windows.openIncoming(2, readers[1]!);
    const stopped: AppError[] = [];
    const a = watch(windows.openOutgoing(3, (err) => stopped.push(err)).room(10));
    const b = watch(windows.openOutgoing(4).room(15));
    const closed = new AppError(ErrorCode.AgentUnavailable, 'socket closed');
    windows.failAll(closed);
    await settle();
    expect(readers.map((r) => r.failures)).toEqual([[closed], [closed]]);
    expect([a.state, b.state]).toEqual(['rejected', 'rejected']);
    expect([a.error, b.error]).toEqual([closed, closed]);
    expect(stopped).toEqual([]);
    expect([windows.incomingStream(1), windows.incomingStream(2)]).toEqual([undefined, undefined]);
  });
});
