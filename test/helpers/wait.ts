/**
 * Waiting in tests without sleeping and hoping: check a condition until it
 * holds or a generous limit passes, then fail naming what was awaited.
 * Checks are spaced by timers, never a busy loop: the pause starts at 1 ms
 * (a unit test's fakes settle within a few timer turns) and doubles up to a
 * cap, so a long wait on the real stack costs one check per cap.
 *
 * - `until(holds, what)`: a synchronous predicate (fakes, logs, files).
 * - `poll(probe, what)`: a probe that may be asynchronous (HTTP, a socket
 *   request) and yields the value awaited, or `undefined` while not yet.
 */

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const timedOut = (timeoutMs: number, what: string, why = '') => new Error(`timed out after ${timeoutMs} ms waiting for ${what}${why}`);

/**
 * Resolves once `holds()` is true; rejects after `timeoutMs` (default 10 s:
 * only a failing test waits it out), naming `what`. A predicate that throws
 * fails the wait at once. Checks at most every 50 ms.
 */
export async function until(holds: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let ms = 1; !holds(); ms = Math.min(ms * 2, 50)) {
    if (Date.now() >= deadline) throw timedOut(timeoutMs, what);
    await sleep(ms);
  }
}

/**
 * Resolves with the first value `probe` yields other than `undefined`;
 * rejects after `timeoutMs` (default 30 s, for the real stack on two loaded
 * cores), naming `what`. A probe that throws counts as not yet (a server
 * still starting, or a probe saying why the value is not the one awaited):
 * the last error is quoted when the wait times out. Probes at most every 250 ms.
 */
export async function poll<T>(probe: () => T | undefined | Promise<T | undefined>, what: string, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (let ms = 1; ; ms = Math.min(ms * 2, 250)) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) throw timedOut(timeoutMs, what, lastError === undefined ? '' : `; last error: ${lastError instanceof Error ? lastError.message : String(lastError)}`);
    await sleep(ms);
  }
}
