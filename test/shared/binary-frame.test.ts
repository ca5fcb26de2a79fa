import { describe, expect, it } from 'vitest';
import {
  BINARY_HEADER_BYTES,
  FrameDecodeError,
  FrameFlag,
  FrameKind,
  MAX_BINARY_PAYLOAD,
  decodeBinaryFrame,
  encodeBinaryFrame,
  encodeBinaryFrameFromParts,
  type BinaryFrame,
} from '../../shared/protocol/binary';
import { declaredContentLength, decodeHttpHead, encodeHttpHead } from '../../shared/protocol/preview';

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

    it('joins parts into one payload, and writes every byte of memory it is given unzeroed', () => {
      const parts = [new Uint8Array([1, 2]), new Uint8Array(0), new Uint8Array([3]), new Uint8Array([4, 5, 6])];
      const dirty = (n: number) => new Uint8Array(n).fill(0xee);
      const joined = decodeBinaryFrame(encodeBinaryFrameFromParts({ kind: FrameKind.HttpBody, flags: 0, streamId: 4, offset: 10 }, parts, dirty));
      expect(joined).toMatchObject({ kind: FrameKind.HttpBody, flags: 0, streamId: 4, offset: 10 });
      expect(Array.from(joined.payload)).toEqual([1, 2, 3, 4, 5, 6]);
      const single = decodeBinaryFrame(encodeBinaryFrame({ kind: FrameKind.File, flags: FrameFlag.End, streamId: 1, offset: 0, payload: new Uint8Array([9]) }, dirty));
      expect(single).toMatchObject({ kind: FrameKind.File, flags: FrameFlag.End, streamId: 1, offset: 0 });
      expect(Array.from(single.payload)).toEqual([9]);
    });

    it('carries a preview response head with or without its body (HttpHead)', () => {
      const head = { status: 201, headers: [['content-type', 'text/plain'], ['set-cookie', 'a=1']] as Array<[string, string]> };
      const withBody = decodeHttpHead(encodeHttpHead(head, new TextEncoder().encode('hé')));
      expect(withBody.head).toEqual(head);
      expect(new TextDecoder().decode(withBody.body)).toBe('hé');
      expect(decodeHttpHead(encodeHttpHead(head)).body.byteLength).toBe(0);
      const bad = encodeHttpHead(head);
      new DataView(bad.buffer).setUint32(0, bad.byteLength);
      expect(() => decodeHttpHead(bad)).toThrow(/length prefix/);
      expect(() => decodeHttpHead(encodeHttpHead({ status: 700, headers: [] }))).toThrow();
      expect(() => decodeHttpHead(new Uint8Array(2))).toThrow();
    });

    it('reads a declared Content-Length only when there is exactly one plain number', () => {
      expect(declaredContentLength([['content-type', 'x'], ['content-length', ' 42 ']])).toBe(42);
      expect(declaredContentLength([['content-type', 'x']])).toBeUndefined();
      expect(declaredContentLength([['content-length', '1'], ['content-length', '1']])).toBeUndefined();
      for (const bad of ['', '-1', '1e3', '0x10', '1,2', '9'.repeat(16)]) expect(declaredContentLength([['content-length', bad]])).toBeUndefined();
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
