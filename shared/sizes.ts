/**
 * Sizes as settings write them: bytes, or a number with k, m or g (powers of
 * 1024, an optional trailing b, any case): "512m", "2g", "1.5G", "4096".
 * The edge and the agent read MAX_FILE_SIZE the same way through this.
 */
const multipliers: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/** The size in whole bytes, or undefined when `text` is not a size. */
export function parseSize(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*([kmg]?)b?$/i.exec(text.trim());
  if (!m?.[1]) return undefined;
  return Math.floor(Number(m[1]) * (multipliers[(m[2] ?? '').toLowerCase()] ?? 1));
}
