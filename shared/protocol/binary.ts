/**
 * Binary frames carry bulk bytes (terminal output, file bodies, preview bodies)
 * without JSON or base64. Layout, big-endian, 16-byte header then payload:
 *
 *   0      1      2..3    4..7        8..15
 *   [ver]  [kind] [flags] [streamId]  [offset: u64]   [payload ≤ 1 MiB]
 *
 * `offset` is the byte position of the payload in its stream, so a receiver
 * can drop duplicates and detect gaps after a reconnect.
 */
import { MAX_FRAME_BYTES } from './version';

export const BINARY_FRAME_VERSION = 1;
export const BINARY_HEADER_BYTES = 16;
export const MAX_BINARY_PAYLOAD = MAX_FRAME_BYTES;

export const FrameKind = {
  /** Process output (stdout/stderr/pty), agent → edge → client. */
  Output: 1,
  /** Process input (stdin, keystrokes), client → edge → agent. */
  Input: 2,
  /** File body chunk, either direction. */
  File: 3,
  /** HTTP body chunk for a preview request or response. */
  HttpBody: 4,
  /** One message of a relayed preview WebSocket. */
  WsMessage: 5,
  /**
   * A preview response's head, agent → edge, on the response stream (streamBase + 1);
   * with End, the whole body rides along (see ./preview.ts encodeHttpHead).
   */
  HttpHead: 6,
} as const;
export type FrameKind = (typeof FrameKind)[keyof typeof FrameKind];
const kinds = new Set<number>(Object.values(FrameKind));

export const FrameFlag = {
  /** The last frame of its stream. */
  End: 1,
  /** Payload is text (for WsMessage). */
  Text: 2,
} as const;
const knownFlags = FrameFlag.End | FrameFlag.Text;

export interface BinaryFrame {
  kind: FrameKind;
  flags: number;
  streamId: number;
  offset: number;
  payload: Uint8Array;
}

export class FrameDecodeError extends Error {
  override readonly name = 'FrameDecodeError';
}

/**
 * The frame's bytes. `alloc` may hand out memory that is not zeroed (Node's
 * Buffer.allocUnsafe): every byte is written here.
 */
export function encodeBinaryFrame(frame: BinaryFrame, alloc: (size: number) => Uint8Array = zeroed): Uint8Array {
  return encodeBinaryFrameFromParts(frame, [frame.payload], alloc);
}

/**
 * One frame whose payload is `parts` joined (one copy, where joining and then
 * framing would copy every byte twice).
 */
export function encodeBinaryFrameFromParts(
  frame: Omit<BinaryFrame, 'payload'>,
  parts: readonly Uint8Array[],
  alloc: (size: number) => Uint8Array = zeroed,
): Uint8Array {
  let size = 0;
  for (const p of parts) size += p.byteLength;
  const out = alloc(BINARY_HEADER_BYTES + size);
  writeBinaryHeader(out, frame, size);
  let at = BINARY_HEADER_BYTES;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

function zeroed(size: number): Uint8Array {
  return new Uint8Array(size);
}

/**
 * Writes a frame's header into the first 16 bytes of `out`, for a payload of
 * `payloadBytes` that the caller has already put right after it (reading a
 * body straight into place saves copying every byte once more).
 */
export function writeBinaryHeader(out: Uint8Array, frame: Omit<BinaryFrame, 'payload'>, payloadBytes: number): void {
  if (!kinds.has(frame.kind)) throw new RangeError(`unknown frame kind ${frame.kind}`);
  if (!Number.isInteger(frame.streamId) || frame.streamId < 0 || frame.streamId > 0xffffffff)
    throw new RangeError('streamId must be a u32');
  if (!Number.isSafeInteger(frame.offset) || frame.offset < 0) throw new RangeError('offset must be a safe non-negative integer');
  if ((frame.flags & ~knownFlags) !== 0) throw new RangeError('unknown flags');
  if (payloadBytes > MAX_BINARY_PAYLOAD) throw new RangeError('payload over 1 MiB');
  if (out.byteLength < BINARY_HEADER_BYTES) throw new RangeError('no room for the header');
  const view = new DataView(out.buffer, out.byteOffset, BINARY_HEADER_BYTES);
  view.setUint8(0, BINARY_FRAME_VERSION);
  view.setUint8(1, frame.kind);
  view.setUint16(2, frame.flags);
  view.setUint32(4, frame.streamId);
  view.setBigUint64(8, BigInt(frame.offset));
}

/** Decodes and validates a frame; throws FrameDecodeError on anything malformed. */
export function decodeBinaryFrame(data: ArrayBuffer | ArrayBufferView): BinaryFrame {
  const bytes =
    data instanceof ArrayBuffer ? new Uint8Array(data) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (bytes.byteLength < BINARY_HEADER_BYTES) throw new FrameDecodeError('binary frame shorter than its header');
  if (bytes.byteLength > BINARY_HEADER_BYTES + MAX_BINARY_PAYLOAD) throw new FrameDecodeError('binary frame over 1 MiB');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint8(0);
  if (version !== BINARY_FRAME_VERSION) throw new FrameDecodeError(`unsupported binary frame version ${version}`);
  const kind = view.getUint8(1);
  if (!kinds.has(kind)) throw new FrameDecodeError(`unknown binary frame kind ${kind}`);
  const flags = view.getUint16(2);
  if ((flags & ~knownFlags) !== 0) throw new FrameDecodeError(`unknown binary frame flags ${flags}`);
  const offset = view.getBigUint64(8);
  if (offset > BigInt(Number.MAX_SAFE_INTEGER)) throw new FrameDecodeError('binary frame offset out of range');
  return {
    kind: kind as FrameKind,
    flags,
    streamId: view.getUint32(4),
    offset: Number(offset),
    payload: bytes.subarray(BINARY_HEADER_BYTES),
  };
}
