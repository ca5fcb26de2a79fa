import { describe, expect, it } from 'vitest';
import { ByteStreams } from '../../../agent/services/streams/byte-streams';
import { FrameKind } from '../../../shared/protocol/binary';

const sink = { sendBinary: () => true, sendEvent: () => true, bufferedAmount: 0 };

describe('agent ByteStreams: aborted uploads', () => {
  it('fails the reader of an aborted stream', async () => {
    const streams = new ByteStreams();
    streams.attach(sink);
    const body = streams.receive(7);
    streams.onBinary({ kind: FrameKind.File, flags: 0, streamId: 7, offset: 0, payload: new Uint8Array([1, 2, 3]) });
    streams.abortIncoming(7);
    await expect((async () => {
      for await (const _ of body) void _;
    })()).rejects.toThrow('upload interrupted');
  });

  it('does not raise an uncaught error when nobody reads the aborted stream', async () => {
    const streams = new ByteStreams();
    streams.attach(sink);
    const uncaught: unknown[] = [];
    const onUncaught = (err: unknown) => uncaught.push(err);
    process.on('uncaughtException', onUncaught);
    try {
      const body = streams.receive(9);
      streams.abortIncoming(9);
      await new Promise<void>((resolve) => body.once('close', () => resolve()));
      await new Promise((r) => setImmediate(r));
      expect(body.destroyed).toBe(true);
      expect(uncaught).toEqual([]);
    } finally {
      process.off('uncaughtException', onUncaught);
    }
  });
});
