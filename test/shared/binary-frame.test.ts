import { describe, expect, it } from 'vitest';
import {
  BINARY_HEADER_BYTES,
  FrameDecodeError,
  FrameFlag,
  FrameKind,
  MAX_BINARY_PAYLOAD,
  decodeBinaryFrame,
  encodeBinaryFrame,
  type BinaryFrame,
} from '../../shared/protocol/binary';

const kinds = Object.values(FrameKind);

describe('binary frame codec', () => {
  describe('round trips', () => {
    it.each(kinds)('keeps every field of a kind-%i frame', (kind) => {
      const payload = new Uint8Array([0, 1, 2, 254, 255]);
      const frame: BinaryFrame = { kind, flags: FrameFlag.End, streamId: 0xfffffffe, offset: 2 ** 40 + 7, payload };
      const decoded = decodeBinaryFrame(encodeBinaryFrame(frame));
      expect(decoded).toEqual({ ...frame, payload: expect.any(Uint8Array) });
      expect(Array.from(decoded.payload)).toEqual(Array.from(payload));
    });

    it('carries an empty payload and a full 1 MiB payload', () => {
      for (const size of [0, MAX_BINARY_PAYLOAD]) {
        const payload = new Uint8Array(size).fill(0xab);
        const bytes = encodeBinaryFrame({ kind: FrameKind.File, flags: 0, streamId: 1, offset: 0, payload });
        expect(bytes.byteLength).toBe(BINARY_HEADER_BYTES + size);
        expect(decodeBinaryFrame(bytes).payload.byteLength).toBe(size);
      }
    });

    it('decodes from a view into a larger buffer (as ws delivers Buffers)', () => {
      const inner = encodeBinaryFrame({ kind: FrameKind.Output, flags: 0, streamId: 9, offset: 42, payload: new Uint8Array([7, 8]) });
      const big = new Uint8Array(inner.byteLength + 10);
      big.set(inner, 5);
      const view = big.subarray(5, 5 + inner.byteLength);
      const f = decodeBinaryFrame(view);
      expect(f.streamId).toBe(9);
      expect(f.offset).toBe(42);
      expect(Array.from(f.payload)).toEqual([7, 8]);
    });

    it('keeps the Text flag for WebSocket messages', () => {
      const f = decodeBinaryFrame(
        encodeBinaryFrame({ kind: FrameKind.WsMessage, flags: FrameFlag.Text | FrameFlag.End, streamId: 3, offset: 0, payload: new Uint8Array() }),
      );
      expect(f.flags & FrameFlag.Text).toBeTruthy();
      expect(f.flags & FrameFlag.End).toBeTruthy();
    });
  });

  describe('encoding refuses', () => {
    const ok: BinaryFrame = { kind: FrameKind.Output, flags: 0, streamId: 1, offset: 0, payload: new Uint8Array() };
    it.each([
      ['an unknown kind', { ...ok, kind: 99 as FrameKind }],
      ['a negative stream id', { ...ok, streamId: -1 }],
      ['a stream id over u32', { ...ok, streamId: 2 ** 32 }],
      ['a fractional offset', { ...ok, offset: 1.5 }],
      ['a negative offset', { ...ok, offset: -1 }],
      ['an unsafe offset', { ...ok, offset: 2 ** 60 }],
      ['unknown flags', { ...ok, flags: 0x80 }],
      ['a payload over 1 MiB', { ...ok, payload: new Uint8Array(MAX_BINARY_PAYLOAD + 1) }],
    ])('%s', (_name, frame) => {
      expect(() => encodeBinaryFrame(frame)).toThrow(RangeError);
    });
  });

  describe('decoding refuses', () => {
    const good = encodeBinaryFrame({ kind: FrameKind.Output, flags: 0, streamId: 1, offset: 0, payload: new Uint8Array([1]) });
    const mutate = (f: (b: Uint8Array) => void) => {
      const b = good.slice();
      f(b);
      return b;
    };
    it.each([
      ['an empty buffer', new Uint8Array()],
      ['a truncated header', good.subarray(0, BINARY_HEADER_BYTES - 1)],
      ['another codec version', mutate((b) => (b[0] = 2))],
      ['kind 0', mutate((b) => (b[1] = 0))],
      ['kind 200', mutate((b) => (b[1] = 200))],
      ['unknown flags', mutate((b) => (b[3] = 0x40))],
      ['an offset beyond 2^53', mutate((b) => (b[8] = 0xff))],
      ['a frame over 1 MiB', new Uint8Array(BINARY_HEADER_BYTES + MAX_BINARY_PAYLOAD + 1).fill(1)],
    ])('%s', (_name, bytes) => {
      expect(() => decodeBinaryFrame(bytes)).toThrow(FrameDecodeError);
    });
  });

  it('never throws anything but FrameDecodeError on random bytes (fuzz, 20,000 inputs)', () => {
    let seed = 12345;
    const rand = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
    let accepted = 0;
    for (let i = 0; i < 20_000; i++) {
      const len = Math.floor(rand() * 64);
      const bytes = new Uint8Array(len);
      for (let j = 0; j < len; j++) bytes[j] = Math.floor(rand() * 256);
      // Half the inputs get a plausible header so the decoder's deeper checks run too.
      if (rand() < 0.5 && len >= 16) {
        bytes[0] = 1;
        bytes[1] = 1 + Math.floor(rand() * 5);
        bytes[2] = 0;
        bytes[3] = Math.floor(rand() * 4);
        bytes[8] = 0;
        bytes[9] = 0;
      }
      try {
        const f = decodeBinaryFrame(bytes);
        accepted++;
        // Whatever decodes must re-encode to the same bytes.
        expect(Array.from(encodeBinaryFrame(f))).toEqual(Array.from(bytes));
      } catch (err) {
        expect(err).toBeInstanceOf(FrameDecodeError);
      }
    }
    expect(accepted).toBeGreaterThan(0);
  });
});
