/** Reading dockerode's errors: the engine's HTTP status rides on `statusCode`. */

export function dockerStatus(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const code = (err as { statusCode?: unknown }).statusCode;
  return typeof code === 'number' ? code : undefined;
}

export const isNotFound = (err: unknown): boolean => dockerStatus(err) === 404;
/** 304: start of a running container, stop of a stopped one. */
export const isNotModified = (err: unknown): boolean => dockerStatus(err) === 304;
export const isConflict = (err: unknown): boolean => dockerStatus(err) === 409;

/** The engine's own words, without dockerode's "(HTTP code …)" prefix, bounded. */
export function dockerMessage(err: unknown): string {
  const json = (err as { json?: { message?: unknown } } | null)?.json;
  const raw = typeof json?.message === 'string' ? json.message : err instanceof Error ? err.message : String(err);
  return raw.replace(/^\(HTTP code \d+\)\s*[^-]*-\s*/, '').trim().slice(0, 500);
}
