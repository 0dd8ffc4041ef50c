/**
 * The two ways the Gemini rate budget (gemini-rate-budget.ts) counts a
 * minute's requests or input tokens, behind one interface:
 *
 * - "slices" (the default): the minute cut into fixed slices, each admitting
 *   its share of the limit, counted by `@upstash/ratelimit`'s fixedWindow. A
 *   rolling minute holds at most (slices + 1) / slices of the limit. A call
 *   fits only in what is left of one slice, so calls near a slice's share
 *   leave slices part-used, and what an estimate overstated is given back
 *   only to a slice that may be over by then.
 * - "rolling": short slices again, but a call is admitted against the sum of
 *   the current slice and the slices before it that one minute plus one
 *   slice spans (rollingMinuteScript), and the limit is the minute's. Any
 *   minute of arrivals at Google (admission plus up to one slice of delay)
 *   then holds at most the limit; a call fits wherever the minute has room,
 *   and tokens given back to an earlier slice free room as long as that
 *   slice is in the minute. The steady rate it allows is slices / (slices + 2)
 *   of the limit.
 */
import { Ratelimit } from "@upstash/ratelimit";
import type { Redis } from "@upstash/redis";
import { rollingMinuteScript } from "./gemini-budget-scripts.ts";

export type MinuteAdmission = "slices" | "rolling";

export interface MinuteCount {
  readonly success: boolean;
  /** The limit the count was checked against: a slice's share, or the minute's. */
  readonly limit: number;
  /** End of the slice the count landed in (ms since epoch, the minute clock). */
  readonly reset: number;
}

export interface MinuteCounter {
  /** What a single call can never exceed. */
  readonly limit: number;
  /** Counts `amount` now (a charge lands even past the limit); `success` when it fits. */
  count(amount: number): Promise<MinuteCount>;
  /** What is counted now against `limit`, and the end of the current slice. */
  used(): Promise<{ readonly limit: number; readonly used: number; readonly reset: number }>;
  /** The key of the slice ending at `reset`, where a refund of that slice's count goes (refundWindowScript). */
  keyOf(reset: number): string;
}

/** Every counter is global: one identifier for all workers and all environments. */
const SHARED = "all";

/**
 * The clock of the minute windows. `@upstash/ratelimit` reads `Date.now()`
 * itself to pick a window (no option injects another clock), and the
 * rolling counter uses the same, so a slice's reset is only ever compared
 * with this clock, never with the budget's `now`, which decides the day.
 */
export const minuteWindowClock = (): number => Date.now();

/** `@upstash/ratelimit`'s fixedWindow over one slice, admitting the slice's share. */
export class SliceCounter implements MinuteCounter {
  readonly #limiter: Ratelimit;
  constructor(
    redis: Redis,
    readonly prefix: string,
    readonly limit: number,
    readonly sliceMs: number,
  ) {
    this.#limiter = new Ratelimit({
      redis,
      prefix,
      limiter: Ratelimit.fixedWindow(limit, `${sliceMs} ms`),
      // The in-process cache would keep refusing after a refund freed room.
      ephemeralCache: false,
      // The library's default (5 s) lets a request through when Redis is slow: fail-open is not a budget.
      timeout: 0,
      analytics: false,
      enableTelemetry: false,
    });
  }

  async count(amount: number): Promise<MinuteCount> {
    const { success, limit, reset } = await this.#limiter.limit(SHARED, { rate: amount });
    return { success, limit, reset };
  }

  async used(): Promise<{ limit: number; used: number; reset: number }> {
    const { limit, remaining, reset } = await this.#limiter.getRemaining(SHARED);
    return { limit, used: limit - remaining, reset };
  }

  /**
   * The key fixedWindow counted in for the slice ending at `reset`:
   * `<prefix>:<identifier>:<bucket>`, its `reset` being (bucket + 1) × window
   * (node_modules/@upstash/ratelimit 2.2.0, dist/index.mjs, `fixedWindow.limit`).
   */
  keyOf(reset: number): string {
    return `${this.prefix}:${SHARED}:${Math.round(reset / this.sliceMs) - 1}`;
  }
}

interface CounterScript {
  exec(keys: string[], args: string[]): Promise<unknown>;
}

/** The minute as the sum of its last slices (rollingMinuteScript). */
export class RollingMinuteCounter implements MinuteCounter {
  readonly #redis: Redis;
  readonly #script: CounterScript;
  /** Slices read per admission: the current one and those one minute plus one slice back span. */
  readonly #slicesRead: number;
  constructor(
    redis: Redis,
    readonly prefix: string,
    readonly limit: number,
    readonly sliceMs: number,
    slicesPerWindow: number,
  ) {
    this.#redis = redis;
    this.#script = redis.createScript(rollingMinuteScript);
    this.#slicesRead = slicesPerWindow + 2;
  }

  async count(amount: number): Promise<MinuteCount> {
    const bucket = Math.floor(minuteWindowClock() / this.sliceMs);
    const reply = await this.#script.exec(this.#keys(bucket), [String(this.limit), String(amount), String((this.#slicesRead + 1) * this.sliceMs)]);
    if (!Array.isArray(reply)) throw new Error(`unexpected reply from Redis: ${JSON.stringify(reply)}`);
    return { success: Number(reply[0]) === 1, limit: this.limit, reset: (bucket + 1) * this.sliceMs };
  }

  async used(): Promise<{ limit: number; used: number; reset: number }> {
    const bucket = Math.floor(minuteWindowClock() / this.sliceMs);
    const values = await this.#redis.mget<(number | string | null)[]>(...this.#keys(bucket));
    return { limit: this.limit, used: values.reduce<number>((sum, value) => sum + Number(value ?? 0), 0), reset: (bucket + 1) * this.sliceMs };
  }

  keyOf(reset: number): string {
    return `${this.prefix}:${SHARED}:${Math.round(reset / this.sliceMs) - 1}`;
  }

  #keys(bucket: number): string[] {
    return Array.from({ length: this.#slicesRead }, (_, back) => `${this.prefix}:${SHARED}:${bucket - back}`);
  }
}
