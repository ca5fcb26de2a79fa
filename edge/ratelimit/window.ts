/**
 * Fixed-window request counting, the logic behind RateLimiterDO.
 *
 * Each (client, bucket) pair has a window that opens with its first request
 * and lasts `windowMs`; up to `max` requests pass in it, and the next request
 * after it closes opens a fresh one. A request may spend from several buckets
 * at once (every /api call spends "api"; register and login also spend
 * "auth"): it passes only if every bucket has room, and a refused request
 * spends nothing, so hammering a closed window does not push anything back.
 *
 * Fixed rather than sliding: `RateLimit-Reset` is then an exact moment the
 * client can rely on, and the state is two integers per bucket. The cost is
 * that a client can send up to 2×max across a window boundary.
 *
 * Plain module: no Worker types; the unit tests drive it with a fake clock.
 */
export interface RateLimitRule {
  /** Name of the budget, e.g. "api" or "auth". */
  readonly bucket: string;
  readonly max: number;
  readonly windowMs: number;
}

export interface WindowState {
  /** When the window opened (ms since the epoch). */
  readonly start: number;
  /** Requests that passed in it. */
  readonly count: number;
}

export interface Decision {
  readonly bucket: string;
  readonly allowed: boolean;
  readonly limit: number;
  readonly remaining: number;
  /** When the current window closes (ms since the epoch). */
  readonly resetAt: number;
}

/** The window in force at `now`: the stored one if still open, else a fresh empty one. */
export function currentWindow(state: WindowState | undefined, rule: RateLimitRule, now: number): WindowState {
  if (!state || now >= state.start + rule.windowMs || state.start > now) return { start: now, count: 0 };
  return state;
}

export interface ConsumeResult {
  /** One per rule, in the rules' order. */
  readonly decisions: Decision[];
  /** New state per bucket, to store. */
  readonly states: Map<string, WindowState>;
  readonly allowed: boolean;
}

/** Spends one request from every rule's bucket, or from none when any is full. */
export function consume(
  rules: readonly RateLimitRule[],
  stored: ReadonlyMap<string, WindowState>,
  now: number,
): ConsumeResult {
  const windows = rules.map((rule) => currentWindow(stored.get(rule.bucket), rule, now));
  const allowed = rules.every((rule, i) => windows[i]!.count < rule.max);
  const states = new Map<string, WindowState>();
  const decisions = rules.map((rule, i) => {
    const w = windows[i]!;
    const count = allowed ? w.count + 1 : w.count;
    states.set(rule.bucket, { start: w.start, count });
    return {
      bucket: rule.bucket,
      allowed: w.count < rule.max,
      limit: rule.max,
      remaining: Math.max(0, rule.max - count),
      resetAt: w.start + rule.windowMs,
    };
  });
  return { decisions, states, allowed };
}

/**
 * The decision the client is told about: when refused, the full bucket that
 * reopens last (waiting for it is enough); when allowed, the bucket with the
 * fewest requests left.
 */
export function bindingDecision(decisions: readonly Decision[]): Decision | undefined {
  const refused = decisions.filter((d) => !d.allowed);
  if (refused.length > 0) return refused.reduce((a, b) => (b.resetAt > a.resetAt ? b : a));
  return decisions.reduce<Decision | undefined>(
    (a, b) => (!a || b.remaining < a.remaining || (b.remaining === a.remaining && b.resetAt > a.resetAt) ? b : a),
    undefined,
  );
}

/** `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` (seconds until the window closes), and `Retry-After` on refusal. */
export function rateLimitHeaders(decision: Decision, now: number): Record<string, string> {
  const resetSeconds = Math.max(0, Math.ceil((decision.resetAt - now) / 1000));
  const headers: Record<string, string> = {
    'RateLimit-Limit': String(decision.limit),
    'RateLimit-Remaining': String(decision.remaining),
    'RateLimit-Reset': String(resetSeconds),
  };
  if (!decision.allowed) headers['Retry-After'] = String(Math.max(1, resetSeconds));
  return headers;
}
