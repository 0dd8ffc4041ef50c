import { Ratelimit } from "@upstash/ratelimit";
import type { Redis } from "@upstash/redis";
import type { GeminiLimits } from "./capacity-config.ts";

/**
 * The Gemini quota as one budget for every worker in every environment:
 * requests per window and tokens per window (token-weighted), on
 * `@upstash/ratelimit`, plus a shared cooldown that a 429 sets.
 *
 * Algorithm: `fixedWindow`, the one of the library's three whose every
 * request is counted (INCRBY) before its verdict and admitted only if the
 * new total fits (`used <= limit`). So the tokens admitted in one window never
 * exceed the limit, however many callers race, and a charge made after the
 * call always lands. (`slidingWindow` admits a request as long as the window
 * is not yet full, whatever its size; `tokenBucket` drops a charge that does
 * not fit.) The price of fixed windows: a burst at the end of one window and
 * another at the start of the next may together exceed the limit within a
 * span shorter than a window; the 80 % defaults and the 429 cooldown absorb
 * that. Windows are aligned on the callers' clocks, like every
 * `@upstash/ratelimit` algorithm.
 *
 * A refused attempt has been counted too; it is refunded (a negative rate)
 * while its window is still current, so the count never falls below what
 * was admitted. Near the window's end the refund is skipped: the window
 * and its over-count expire together.
 */

/** Sets the shared cooldown to at least `delay` ms and returns the cooldown left (ms). */
export const recordRateLimitedScript = `
local cooldownKey = KEYS[1]           -- string whose TTL is the cooldown left
local strikesKey  = KEYS[2]           -- 429s without retryDelay in a row; expires after a quiet spell
local retryDelay  = tonumber(ARGV[1]) -- ms from the 429's RetryInfo.retryDelay, or -1 when it had none
local backoff     = tonumber(ARGV[2]) -- first fallback cooldown, ms; doubles with each strike
local maxBackoff  = tonumber(ARGV[3]) -- longest fallback cooldown, ms

local delay = retryDelay
if delay < 0 then
  local strikes = redis.call("INCR", strikesKey)
  redis.call("PEXPIRE", strikesKey, maxBackoff * 2)
  delay = math.min(backoff * 2 ^ (strikes - 1), maxBackoff)
end
delay = math.floor(delay)

-- Never shorten a cooldown another worker set from a longer retryDelay.
local left = redis.call("PTTL", cooldownKey)
if delay > 0 and left < delay then
  redis.call("SET", cooldownKey, "429", "PX", delay)
  left = delay
end
if left < 0 then left = 0 end
return left
`;

export type GeminiBudgetName = "cooldown" | "rpm" | "tpm";

export type Admission =
  | {
      readonly admitted: true;
      /** End of the window the request was counted in (ms since epoch). */
      readonly windowEndsAt: number;
    }
  | {
      readonly admitted: false;
      readonly blockedBy: GeminiBudgetName;
      /** How long until trying again can succeed (end of the window, or of the cooldown). */
      readonly retryInMs: number;
      /** What was short, for error messages and logs. */
      readonly detail: string;
    };

export interface BudgetUse {
  readonly limit: number;
  readonly used: number;
  readonly remaining: number;
}

export interface GeminiBudgetStatus {
  readonly windowMs: number;
  /** End of the current window (ms since epoch). */
  readonly windowEndsAt: number;
  readonly rpm: BudgetUse;
  readonly tpm: BudgetUse;
  /** While above 0, no Gemini call is admitted and no OCR task should start. */
  readonly cooldownRemainingMs: number;
}

export interface GeminiRateBudgetOptions {
  /** Prefix of the budget's keys; one budget per prefix. @default "gemini" */
  keyPrefix?: string;
  /** Length of one window, ms; the limits count per window. @default 60_000 (Gemini's quotas are per minute) */
  windowMs?: number;
  /** Cooldown after a 429 that carries no retryDelay, ms; doubles with each such 429 in a row. @default 5_000 */
  backoffMs?: number;
  /** Longest cooldown the fallback backoff reaches, ms. @default 120_000 */
  maxBackoffMs?: number;
}

/** Every counter is global: one identifier for all workers and all environments. */
const SHARED = "all";

/** A refund this close to the window's end might land in the next window; skip it. */
const REFUND_MARGIN_MS = 100;

interface BudgetScript {
  exec(keys: string[], args: string[]): Promise<unknown>;
}

export class GeminiRateBudget {
  readonly limits: GeminiLimits;
  readonly windowMs: number;
  readonly #redis: Redis;
  readonly #rpm: Ratelimit;
  readonly #tpm: Ratelimit;
  readonly #cooldownKey: string;
  readonly #strikesKey: string;
  readonly #backoffMs: number;
  readonly #maxBackoffMs: number;
  readonly #recordRateLimited: BudgetScript;

  constructor(redis: Redis, limits: GeminiLimits, options: GeminiRateBudgetOptions = {}) {
    const { keyPrefix = "gemini", windowMs = 60_000, backoffMs = 5_000, maxBackoffMs = 120_000 } = options;
    if (!Number.isInteger(windowMs) || windowMs < 1) throw new RangeError(`windowMs must be a positive whole number of ms, got ${windowMs}`);
    this.limits = limits;
    this.windowMs = windowMs;
    this.#redis = redis;
    this.#backoffMs = backoffMs;
    this.#maxBackoffMs = maxBackoffMs;
    this.#cooldownKey = `${keyPrefix}:cooldown`;
    this.#strikesKey = `${keyPrefix}:cooldown-strikes`;
    this.#recordRateLimited = redis.createScript(recordRateLimitedScript);
    const common = {
      redis,
      // The in-process cache would keep refusing after a refund freed room.
      ephemeralCache: false,
      // The library's default (5 s) lets a request through when Redis is slow: fail-open is not a budget.
      timeout: 0,
      analytics: false,
      enableTelemetry: false,
    } as const;
    this.#rpm = new Ratelimit({ ...common, prefix: `${keyPrefix}:rpm`, limiter: Ratelimit.fixedWindow(limits.rpmLimit, `${windowMs} ms`) });
    this.#tpm = new Ratelimit({ ...common, prefix: `${keyPrefix}:tpm`, limiter: Ratelimit.fixedWindow(limits.tpmLimit, `${windowMs} ms`) });
  }

  /**
   * One attempt to admit a request that expects to use `estimatedTokens`:
   * counts one request and the tokens if both fit and no cooldown runs.
   * `withGeminiBudget` is the caller that waits and retries.
   */
  async tryAdmit(estimatedTokens: number): Promise<Admission> {
    if (!Number.isInteger(estimatedTokens) || estimatedTokens < 0) {
      throw new RangeError(`estimatedTokens must be a whole number ≥ 0, got ${estimatedTokens}`);
    }
    const cooldown = await this.cooldownRemainingMs();
    if (cooldown > 0) {
      return { admitted: false, blockedBy: "cooldown", retryInMs: cooldown, detail: `Gemini answered 429; cooling down for ${cooldown} ms more` };
    }
    const tokens = await this.#tpm.limit(SHARED, { rate: estimatedTokens });
    if (!tokens.success) {
      await this.#refund(this.#tpm, estimatedTokens, tokens.reset);
      return {
        admitted: false,
        blockedBy: "tpm",
        retryInMs: Math.max(0, tokens.reset - Date.now()),
        // `remaining` is clamped at 0 once this attempt was counted, so it cannot say how much was left.
        detail: `tokens budget: ${estimatedTokens} tokens do not fit in what is left of ${tokens.limit} per ${this.windowMs} ms`,
      };
    }
    const requests = await this.#rpm.limit(SHARED);
    if (!requests.success) {
      await Promise.all([this.#refund(this.#rpm, 1, requests.reset), this.#refund(this.#tpm, estimatedTokens, tokens.reset)]);
      return {
        admitted: false,
        blockedBy: "rpm",
        retryInMs: Math.max(0, requests.reset - Date.now()),
        detail: `requests budget: all ${requests.limit} requests per ${this.windowMs} ms used`,
      };
    }
    return { admitted: true, windowEndsAt: tokens.reset };
  }

  /** Counts tokens a call used beyond what was admitted for it. Always counted, even past the limit. */
  async charge(extraTokens: number): Promise<void> {
    if (extraTokens <= 0) return;
    await this.#tpm.limit(SHARED, { rate: Math.ceil(extraTokens) });
  }

  /**
   * Records a 429 from Gemini: every caller waits for `retryDelay` (Gemini's
   * RetryInfo, e.g. "53s"), or for a doubling backoff when there is none.
   * Returns the cooldown now in force, ms.
   */
  async recordRateLimited(retryDelay?: string): Promise<number> {
    const delayMs = retryDelay === undefined ? null : parseRetryDelay(retryDelay);
    const reply = await this.#recordRateLimited.exec(
      [this.#cooldownKey, this.#strikesKey],
      [String(delayMs ?? -1), String(this.#backoffMs), String(this.#maxBackoffMs)],
    );
    return Number(reply);
  }

  async cooldownRemainingMs(): Promise<number> {
    const left = await this.#redis.pttl(this.#cooldownKey);
    return left > 0 ? left : 0;
  }

  /** Requests and tokens used and left in the current window, and the cooldown left. */
  async budget(): Promise<GeminiBudgetStatus> {
    const [requests, tokens, cooldownRemainingMs] = await Promise.all([
      this.#rpm.getRemaining(SHARED),
      this.#tpm.getRemaining(SHARED),
      this.cooldownRemainingMs(),
    ]);
    return {
      windowMs: this.windowMs,
      windowEndsAt: tokens.reset,
      rpm: { limit: requests.limit, used: requests.limit - requests.remaining, remaining: requests.remaining },
      tpm: { limit: tokens.limit, used: tokens.limit - tokens.remaining, remaining: tokens.remaining },
      cooldownRemainingMs,
    };
  }

  async #refund(limiter: Ratelimit, amount: number, windowEndsAt: number): Promise<void> {
    if (amount <= 0 || windowEndsAt - Date.now() <= REFUND_MARGIN_MS) return;
    await limiter.limit(SHARED, { rate: -amount });
  }
}

/**
 * Gemini's `RetryInfo.retryDelay` is a protobuf Duration in its JSON form:
 * seconds with an `s` suffix ("53s", "1.5s", "0.000500s"). Returns ms, rounded
 * up, or null for anything else (the caller then backs off on its own).
 */
export function parseRetryDelay(retryDelay: string): number | null {
  const match = /^\s*(\d+(?:\.\d+)?)s\s*$/.exec(retryDelay);
  if (!match?.[1]) return null;
  return Math.ceil(Number(match[1]) * 1000);
}
