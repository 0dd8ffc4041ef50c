/**
 * How a runner waits before trying again: exponential backoff with full
 * jitter, so a fleet of runners that lost the database at the same moment
 * does not come back in lockstep, and sleeps that end early on shutdown.
 */
import { setTimeout as delay } from "node:timers/promises";

export interface BackoffOptions {
  /** Upper bound of the first wait, in ms. @default 500 */
  baseMs?: number;
  /** No wait is longer than this, in ms. @default 30000 */
  capMs?: number;
  /** @default Math.random */
  random?: () => number;
}

/** A random wait in [0, min(cap, base · 2^(failures − 1))] ms ("full jitter"). */
export function jitteredBackoffMs(failures: number, options: BackoffOptions = {}): number {
  const { baseMs = 500, capMs = 30_000, random = Math.random } = options;
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.max(0, Math.min(failures - 1, 30)));
  return Math.round(random() * ceiling);
}

/** Waits `ms`, or less if `signal` aborts first; never rejects. */
export async function sleepUnlessAborted(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted || ms <= 0) return;
  try {
    await delay(ms, undefined, { signal });
  } catch {
    // Aborted: the caller checks the signal to learn why it woke.
  }
}

/** Waits `ms`; if `signal` aborts first, rejects with its reason, as a handler's waits must (run-runner.ts). */
export async function delayUnlessAborted(ms: number, signal: AbortSignal): Promise<void> {
  try {
    await delay(ms, undefined, { signal });
  } catch (error) {
    throw signal.aborted ? signal.reason : error;
  }
}
