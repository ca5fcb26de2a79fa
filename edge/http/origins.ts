/**
 * Matching a browser's Origin against CORS_ORIGINS patterns. Plain module (no
 * Worker types) so the rule can be tested on its own.
 */

/** Whether `origin` matches one of the patterns: an exact origin, `scheme://host:*` (any port, or none), or `*`. */
export function originAllowed(origin: string, patterns: readonly string[]): boolean {
  if (!origin || origin === 'null') return false;
  for (const pattern of patterns) {
    if (pattern === '*' || pattern === origin) return true;
    if (pattern.endsWith(':*')) {
      const base = pattern.slice(0, -2);
      if (origin === base || (origin.startsWith(`${base}:`) && /^\d{1,5}$/.test(origin.slice(base.length + 1)))) return true;
    }
  }
  return false;
}
