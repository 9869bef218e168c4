/**
 * Exponential backoff with full jitter (AWS architecture blog, "Exponential
 * Backoff And Jitter"): a uniform draw in [0, min(cap, base * 2^attempt)).
 */
export function fullJitter(attempt: number, baseMs: number, capMs: number, random: () => number): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.max(0, attempt));
  return Math.floor(random() * ceiling);
}
