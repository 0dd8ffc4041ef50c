/** A fixed-width text bar for `used` of `total`, e.g. `[█████░░░░░]  5.5 / 6.4 (86 %)`. */
export function bar(used: number, total: number, width = 20): string {
  const fraction = total > 0 ? Math.min(1, Math.max(0, used / total)) : used > 0 ? 1 : 0;
  const filled = Math.round(fraction * width);
  return `[${"█".repeat(filled)}${"░".repeat(width - filled)}]`;
}

/** `used` of `total` as a whole percent (0 when nothing is available). */
export function percent(used: number, total: number): number {
  return total > 0 ? Math.round((used / total) * 100) : 0;
}
