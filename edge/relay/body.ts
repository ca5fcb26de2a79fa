/**
 * Request bodies the edge refuses. Answering while the client is still
 * sending breaks the connection behind some HTTP proxies (wrangler dev's
 * among them: the next request on it may get `503 Your worker restarted
 * mid-request`), and reading a body after the response went out makes
 * workerd log `Can't read from request stream after response has been
 * sent`. So every early answer first reads and drops what is left of the
 * body, up to a bound, and cancels it past that.
 */

/** Bytes of an unwanted body read and dropped before giving up on it. */
export const DRAIN_LIMIT = 16 * 1024 * 1024;

/** Reads and discards the rest of a body from `reader`, up to `limit` bytes, then cancels it. */
export async function drain(reader: ReadableStreamDefaultReader<Uint8Array> | ReadableStreamBYOBReader, limit = DRAIN_LIMIT): Promise<void> {
  let dropped = 0;
  let scratch = new Uint8Array(64 * 1024);
  const readOne = async (): Promise<number | null> => {
    if (!isByob(reader)) {
      const { done, value } = await reader.read();
      return done ? null : value.byteLength;
    }
    const { done, value } = await reader.read(scratch);
    if (done || !value) return null;
    scratch = new Uint8Array(value.buffer); // the read moved the buffer
    return value.byteLength;
  };
  try {
    while (dropped < limit) {
      const n = await readOne();
      if (n === null) return;
      dropped += n;
    }
    await reader.cancel();
  } catch {
    // The body failed on its own: nothing left to drain.
  }
}

/** Drains a request's body if nobody has started reading it (a refusal that never looked at it). */
export async function discardBody(request: Request, limit = DRAIN_LIMIT): Promise<void> {
  if (!request.body || request.bodyUsed || request.body.locked) return;
  await drain(request.body.getReader(), limit);
}

function isByob(r: ReadableStreamDefaultReader<Uint8Array> | ReadableStreamBYOBReader): r is ReadableStreamBYOBReader {
  return 'readAtLeast' in r;
}
