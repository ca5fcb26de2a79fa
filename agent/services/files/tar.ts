/**
 * Tree sync: a folder in, a folder out, as tar streams (`extractTar` in
 * ./tar-extract.ts, `packTar` in ./tar-pack.ts; FileService wraps both).
 * This file holds what they share: limits, gzip detection, and the rules for
 * names inside an archive.
 */
import { createGunzip } from 'node:zlib';
import { Readable, pipeline } from 'node:stream';
import { AppError, ErrorCode } from '../../../shared/errors';
import { outside, parseWorkspacePath } from './workspace-path';

export interface ExtractLimits {
  /** Entries an archive may hold. */
  maxEntries: number;
  /** Bytes of file content an archive may hold, all files together. */
  maxTotalBytes: number;
}

export const DEFAULT_EXTRACT_LIMITS: ExtractLimits = Object.freeze({
  maxEntries: 100_000,
  maxTotalBytes: 2 * 1024 * 1024 * 1024,
});

/** An archive: bytes in memory, a stream, or chunks (an array of Buffers will do). */
export type ByteSource = Uint8Array | Readable | AsyncIterable<Uint8Array | string> | Iterable<Uint8Array>;

/**
 * The source's bytes, gunzipped when they start with the gzip magic bytes
 * (1f 8b). Leaving the loop early ends the source too.
 */
export async function* maybeGunzip(source: ByteSource): AsyncGenerator<Buffer> {
  const it = toBuffers(source)[Symbol.asyncIterator]();
  try {
    let head = Buffer.alloc(0);
    while (head.length < 2) {
      const next = await it.next();
      if (next.done) break;
      head = Buffer.concat([head, next.value]);
    }
    async function* rest(): AsyncGenerator<Buffer> {
      if (head.length > 0) yield head;
      for (;;) {
        const next = await it.next();
        if (next.done) return;
        yield next.value;
      }
    }
    if (head[0] === 0x1f && head[1] === 0x8b) {
      const gunzip = pipeline(Readable.from(rest()), createGunzip(), () => undefined);
      for await (const chunk of gunzip) yield chunk as Buffer;
    } else {
      yield* rest();
    }
  } finally {
    await it.return?.(undefined);
  }
}

async function* toBuffers(source: ByteSource): AsyncGenerator<Buffer> {
  if (source instanceof Uint8Array) {
    yield Buffer.from(source.buffer, source.byteOffset, source.byteLength);
    return;
  }
  for await (const chunk of source) {
    yield typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
  }
}

/**
 * Names below the extraction folder for an archive entry. Absolute names and
 * any `..` are refused outright (even a `..` that would stay inside), the
 * rest follows the same rules as client paths.
 */
export function parseEntryName(raw: string): string[] {
  if (raw.startsWith('/')) throw outside(raw);
  if (raw.split('/').includes('..')) throw outside(raw);
  if (raw.replace(/^(\.\/)+/, '') === '' || raw === '.') return [];
  return parseWorkspacePath(raw);
}

/**
 * Refuses a symlink whose target, read as the container would from where the
 * link will live (`linkDir`, names below the root), leaves the workspace.
 */
export function checkLinkTarget(target: string, linkDir: readonly string[], shown: string): void {
  if (target.length === 0 || target.includes('\0')) throw new AppError(ErrorCode.InvalidPath, `bad symlink target in ${shown}`);
  if (target.startsWith('/')) {
    parseWorkspacePath(target); // throws unless it is /workspace or below
    return;
  }
  const names = [...linkDir];
  for (const n of target.split('/')) {
    if (n === '' || n === '.') continue;
    if (n === '..') {
      if (names.length === 0) throw outside(shown);
      names.pop();
    } else {
      names.push(n);
    }
  }
}

interface DrainableStream {
  destroyed: boolean;
  once(ev: 'drain' | 'close', fn: () => void): unknown;
  off(ev: 'drain' | 'close', fn: () => void): unknown;
}

/** Resolves when a streamx writable wants more, or once it is destroyed. */
export function drained(stream: DrainableStream): Promise<void> {
  if (stream.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      stream.off('drain', done);
      stream.off('close', done);
      resolve();
    };
    stream.once('drain', done);
    stream.once('close', done);
  });
}
