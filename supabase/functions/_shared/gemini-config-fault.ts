/**
 * A Gemini configuration fault (a model Google does not serve, a key it
 * refuses, billing off), recorded where dispatch and `npm run status` read
 * it. An OCR task that meets one (at start, models.get; or mid-job) records
 * it and exits (RUNNER_EXIT_CODES.configuration); dispatch then starts no OCR
 * task of that environment while the record lasts, so a bad key costs one
 * task, not a fleet that each fail the same way. The record expires by
 * itself (a duration, never an absolute time): after it, dispatch starts one
 * task, whose start-up check either finds the fault fixed or records it
 * again. Per environment: each environment has its own key and settings.
 */
import type { Redis } from "@upstash/redis";

/** How long a recorded fault holds OCR dispatch before a fresh task checks again. */
export const GEMINI_CONFIG_FAULT_HOLD_MS = 10 * 60_000;

/** The key, under REDIS_KEY_PREFIX like every shared budget (redis-keys.ts). */
export function geminiConfigFaultKey(redisKeyPrefix: string, environment: string): string {
  return `${redisKeyPrefix}gemini:config-fault:${environment}`;
}

export interface GeminiConfigFaultRecord {
  /** What is wrong and what to fix, as the runner wrote it (never a secret). */
  readonly reason: string;
  /** Milliseconds the hold still lasts. */
  readonly remainingMs: number;
}

export class GeminiConfigFault {
  readonly #redis: Redis;
  readonly #key: string;

  constructor(redis: Redis, redisKeyPrefix: string, environment: string) {
    this.#redis = redis;
    this.#key = geminiConfigFaultKey(redisKeyPrefix, environment);
  }

  /** Records the fault for `holdMs` from now. */
  async record(reason: string, holdMs = GEMINI_CONFIG_FAULT_HOLD_MS): Promise<void> {
    if (!Number.isInteger(holdMs) || holdMs < 1) throw new RangeError(`holdMs must be a whole number ≥ 1, got ${holdMs}`);
    await this.#redis.set(this.#key, reason.slice(0, 500), { px: holdMs });
  }

  /** Forgets the fault (a start-up check that passed). */
  async clear(): Promise<void> {
    await this.#redis.del(this.#key);
  }

  /** The fault in force, or null. */
  async read(): Promise<GeminiConfigFaultRecord | null> {
    const [reason, left] = await Promise.all([this.#redis.get<unknown>(this.#key), this.#redis.pttl(this.#key)]);
    if (reason === null || left <= 0) return null;
    return { reason: typeof reason === "string" ? reason : JSON.stringify(reason), remainingMs: left };
  }
}
