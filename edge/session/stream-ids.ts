/**
 * Stream ids on a session's data socket come from two ranges that never meet:
 *   [0, 2^31)       processes' streams, counted in the Session DO's storage,
 *                   because a process (and its journal) outlives the DO's memory;
 *   [2^31, 2^32)    one-shot streams (file bodies, preview requests and
 *                   sockets), counted in memory: they die with the DO's
 *                   memory anyway, and a storage write per preview request
 *                   would cost a commit (and hold the response behind it).
 * The one-shot counter starts at a random point, so a DO that restarted while
 * the agent still sends on an old stream does not hand that id out again.
 */
export const ONE_SHOT_BASE = 0x8000_0000;
const U32_END = 0x1_0000_0000;

/** Throws once the persistent counter would reach the one-shot range (after 2^29 processes). */
export function checkProcessStreamBase(base: number, width: number): number {
  if (base + width > ONE_SHOT_BASE) throw new RangeError('this session has used up its process stream ids');
  return base;
}

export class OneShotStreamIds {
  private next: number;

  constructor(random: () => number = Math.random) {
    this.next = ONE_SHOT_BASE + Math.floor(random() * ONE_SHOT_BASE);
  }

  /** `width` consecutive ids, all in the one-shot range. */
  take(width: number): number {
    if (this.next + width > U32_END) this.next = ONE_SHOT_BASE;
    const base = this.next;
    this.next += width;
    return base;
  }
}
