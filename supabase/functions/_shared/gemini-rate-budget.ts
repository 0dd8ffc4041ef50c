import { Ratelimit } from "@upstash/ratelimit";
import type { Redis } from "@upstash/redis";
import { dailyWindow, GEMINI_DAY_TIME_ZONE, type DailyWindow } from "./gemini-daily-window.ts";
import type { ModelLimits } from "./gemini-config.ts";
import type { GeminiDayShares } from "./gemini-day-shares.ts";
import { ENVIRONMENTS } from "./environments.ts";

/**
 * The Gemini quota as Google counts it: per model, requests per minute (RPM),
 * input tokens per minute (TPM) and requests per day (RPD, the day ending at
 * midnight Pacific time), one budget for every worker in every environment,
 * plus a cooldown per model that a 429 sets.
 *
 * RPM and TPM: `@upstash/ratelimit`'s `fixedWindow`, the one of the
 * library's three whose every request is counted (INCRBY) before its verdict
 * and admitted only if the new total fits (`used <= limit`). So the tokens
 * admitted in one window never exceed the limit, however many callers race,
 * and a charge made after the call always lands. (`slidingWindow` admits a
 * request as long as the window is not yet full, whatever its size;
 * `tokenBucket` drops a charge that does not fit.) A refused attempt has been
 * counted too; it is refunded (a negative rate) while its window is still
 * current. Near the window's end the refund is skipped: the window and its
 * over-count expire together.
 *
 * Slices: fixed minute windows would let a burst at the end of one minute
 * and another at the start of the next put twice the limit into one rolling
 * minute, and Google does not say how its minute is counted. So the minute is
 * cut into `slicesPerWindow` fixed slices, each admitting its share of the
 * limit: a rolling minute overlaps at most slices + 1 of them, so it holds at
 * most (slices + 1) / slices of the configured limit. At the default 8 slices
 * and the 80 % defaults that is 90 % of Google's quota, whichever way Google
 * counts; 4 slices reached exactly 100 %, and the OCR benchmark then drew
 * 429s from a few ms of delay between admission and arrival. The price: one
 * slice's share (an eighth of the minute's tokens, 800K at the defaults) is
 * the largest call that fits.
 *
 * RPD: a counter per model and Pacific calendar day (`checkModelScript`,
 * `admitDailyScript`), counted last, once the minute budgets admitted.
 * The library's windows are fixed lengths aligned on the epoch, so a 24 h
 * window would reset at midnight UTC, and a Pacific day is 23 or 25 hours
 * twice a year. The day is computed from an injectable clock, so tests can
 * step into the next day without waiting for it.
 */

/** Sets a model's cooldown to at least `delay` ms and returns the cooldown left (ms). */
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

/**
 * The first look of an admission, read-only (it runs beside the minute
 * budgets, in the same round trip): {2, cooldown ms left} while the model
 * cools down after a 429, {0, -1} when a daily-quota 429 paused it for the
 * rest of the day, {0, used} when the day's requests are used up, {1, used}
 * when there is room.
 */
export const checkModelScript = `
local dayKey      = KEYS[1]           -- requests admitted for one model on one Pacific day
local pauseKey    = KEYS[2]           -- exists when Google answered 429 for that model's daily quota that day
local cooldownKey = KEYS[3]           -- string whose TTL is the model's 429 cooldown left
local limit       = tonumber(ARGV[1]) -- requests per day

local cooldown = redis.call("PTTL", cooldownKey)
if cooldown > 0 then return {2, cooldown} end
if redis.call("EXISTS", pauseKey) == 1 then return {0, -1} end
local used = tonumber(redis.call("GET", dayKey) or "0")
if used + 1 > limit then return {0, used} end
return {1, used}
`;

/**
 * The last step of an admission: counts one request against a model's day
 * if it fits. The day's count only ever grows by calls that are sent, so a
 * caller is never told the day is over while another's attempt is being
 * given back. Returns {1, used} when admitted, {0, used} when the day is
 * used up, {0, -1} when a daily-quota 429 paused the model.
 */
export const admitDailyScript = `
local dayKey   = KEYS[1]           -- requests admitted for one model on one Pacific day
local pauseKey = KEYS[2]           -- exists when Google answered 429 for that model's daily quota that day
local limit    = tonumber(ARGV[1]) -- requests per day
local ttl      = tonumber(ARGV[2]) -- ms the day's key lives from now: what is left of the day plus a margin, by the budget's clock
-- With day shares (gemini-day-shares.ts): KEYS[3], KEYS[4], … are, per
-- environment, its requests of the day and its "asked lately" key; ARGV[3]
-- is the asking environment's position (1-based), ARGV[4] how long asking
-- keeps an environment active (ms), ARGV[5], … each environment's share.
local own = tonumber(ARGV[3] or "0")
local environments = (#KEYS - 2) / 2
if own > 0 then
  redis.call("SET", KEYS[2 + 2 * own], "1", "PX", tonumber(ARGV[4]))
end

if redis.call("EXISTS", pauseKey) == 1 then return {0, -1} end
local used = tonumber(redis.call("GET", dayKey) or "0")
if used + 1 > limit then return {0, used} end
if own > 0 then
  -- What is left of the shares of the other environments that asked lately is theirs.
  local reserved = 0
  for i = 1, environments do
    if i ~= own and redis.call("EXISTS", KEYS[2 + 2 * i]) == 1 then
      local theirs = tonumber(redis.call("GET", KEYS[1 + 2 * i]) or "0")
      reserved = reserved + math.max(0, math.floor(tonumber(ARGV[4 + i]) * limit) - theirs)
    end
  end
  if used + 1 > limit - reserved then return {0, used, reserved} end
  redis.call("INCR", KEYS[1 + 2 * own])
  redis.call("PEXPIRE", KEYS[1 + 2 * own], ttl)
end
used = redis.call("INCR", dayKey)
redis.call("PEXPIRE", dayKey, ttl)
return {1, used}
`;

/** Adds one call's numbers to a model's statistics of the day. */
export const recordUsageScript = `
local statsKey    = KEYS[1]           -- hash: requests, inputTokens, outputTokens, rateLimited
local ttl         = tonumber(ARGV[1]) -- ms the statistics live from now: to a day after the day ends, so yesterday stays readable
local requests    = tonumber(ARGV[2])
local inputTokens = tonumber(ARGV[3])
local outputTokens = tonumber(ARGV[4])
local rateLimited = tonumber(ARGV[5])

redis.call("HINCRBY", statsKey, "requests", requests)
redis.call("HINCRBY", statsKey, "inputTokens", inputTokens)
redis.call("HINCRBY", statsKey, "outputTokens", outputTokens)
redis.call("HINCRBY", statsKey, "rateLimited", rateLimited)
redis.call("PEXPIRE", statsKey, ttl)
return 1
`;

export type GeminiBudgetName = "cooldown" | "rpm" | "tpm" | "rpd";

/** Which of Google's per-model quotas a 429 named: minute requests, minute input tokens, or the day. */
export type GeminiQuotaKind = "rpm" | "tpm" | "rpd" | "unknown";

/** A call named a model GEMINI_LIMITS does not list. Final: no retry will configure it. */
export class GeminiModelNotConfiguredError extends Error {
  override readonly name = "GeminiModelNotConfiguredError";
  readonly retryable = false;
  constructor(
    readonly model: string,
    configured: readonly string[],
  ) {
    super(`Gemini model "${model}" has no limits in GEMINI_LIMITS (configured: ${configured.join(", ")}); the call was not sent`);
  }
}

export interface AdmittedCall {
  readonly admitted: true;
  readonly model: string;
  /** Input tokens counted for the call, to reconcile with promptTokenCount after it. */
  readonly tokens: number;
  /** End of the minute window the call was counted in (ms since epoch). */
  readonly windowEndsAt: number;
  /** The Pacific day the request was counted in. */
  readonly day: string;
}

export type Admission =
  | AdmittedCall
  | {
      readonly admitted: false;
      readonly model: string;
      readonly blockedBy: GeminiBudgetName;
      /** How long until trying again can succeed (end of the window, of the cooldown, or of the day). */
      readonly retryInMs: number;
      /** What was short, for error messages and logs. */
      readonly detail: string;
      /** For "rpd": when the model's day resets (ms since epoch). */
      readonly resumesAt?: number;
    };

export interface BudgetUse {
  readonly limit: number;
  readonly used: number;
  readonly remaining: number;
  /** used / limit: the share of the quota spent in the current window. */
  readonly fraction: number;
}

export interface ModelBudgetStatus {
  readonly model: string;
  readonly limits: ModelLimits;
  /** Requests in the current slice of the minute, against the slice's share of RPM. */
  readonly rpm: BudgetUse;
  /** Input tokens in the current slice of the minute, against the slice's share of TPM. */
  readonly tpm: BudgetUse;
  /** Today's requests (Pacific day). */
  readonly rpd: BudgetUse;
  /** End of the current minute window (ms since epoch). */
  readonly windowEndsAt: number;
  /** While above 0, no call to this model is admitted. */
  readonly cooldownRemainingMs: number;
  /** When the model may be called again if today's requests are used up or Google said so (ms since epoch); null otherwise. */
  readonly pausedUntil: number | null;
  /** Today's statistics: output tokens are kept here, never in the TPM budget. */
  readonly today: { readonly requests: number; readonly inputTokens: number; readonly outputTokens: number; readonly rateLimited: number };
}

export interface GeminiBudgetStatus {
  /** Length of the window `rpm` and `tpm` count in: one slice of the minute. */
  readonly windowMs: number;
  /** Slices per minute: a slice's limits are the minute's divided by this. */
  readonly slicesPerWindow: number;
  /** The Pacific day the daily budgets count. */
  readonly day: string;
  /** When the daily budgets reset (ms since epoch). */
  readonly dayResetsAt: number;
  readonly models: Readonly<Record<string, ModelBudgetStatus>>;
}

export interface GeminiRateBudgetOptions {
  /** Prefix of the budget's keys; one budget per prefix. @default "gemini" */
  keyPrefix?: string;
  /** Length of the window the RPM/TPM limits are for, ms. @default 60_000 (Gemini's quotas are per minute) */
  windowMs?: number;
  /** Fixed slices the window is cut into, each admitting its share of the limits (see above). @default 8 */
  slicesPerWindow?: number;
  /** Cooldown after a 429 that carries no retryDelay, ms; doubles with each such 429 in a row. @default 5_000 */
  backoffMs?: number;
  /** Longest cooldown the fallback backoff reaches, ms. @default 120_000 */
  maxBackoffMs?: number;
  /** The clock that decides the day (ms since epoch). @default Date.now */
  now?: () => number;
  /** Where the daily quota resets at midnight. @default "America/Los_Angeles" (Google's reset) */
  dayTimeZone?: string;
  /** Each environment's share of the day (gemini-day-shares.ts). @default none: one pool */
  dayShares?: GeminiDayShares;
}

/** Every counter is global: one identifier for all workers and all environments. */
const SHARED = "all";

/** A refund this close to the window's end might land in the next window; skip it. */
const REFUND_MARGIN_MS = 100;

/** A day's keys outlive its end by this much: readable for a while, then gone on their own. */
const DAY_KEY_MARGIN_MS = 86_400_000;

/**
 * The clock of the minute windows. `@upstash/ratelimit` reads `Date.now()`
 * itself to pick a window and to compute its `reset` (no option injects
 * another clock), so a minute window's reset is only ever compared with this
 * clock, never with the budget's `now`, which decides the day.
 */
const minuteWindowClock = (): number => Date.now();

interface BudgetScript {
  exec(keys: string[], args: string[]): Promise<unknown>;
}

interface ModelBuckets {
  readonly limits: ModelLimits;
  /** What one slice admits. */
  readonly slice: { readonly rpm: number; readonly tpm: number };
  readonly rpm: Ratelimit;
  readonly tpm: Ratelimit;
  readonly keys: { readonly cooldown: string; readonly strikes: string; readonly day: (day: string) => string; readonly pause: (day: string) => string; readonly stats: (day: string) => string };
}

export class GeminiRateBudget {
  /** Length of one slice, the window the counters count in, ms. */
  readonly windowMs: number;
  readonly slicesPerWindow: number;
  readonly #redis: Redis;
  readonly #models: ReadonlyMap<string, ModelBuckets>;
  readonly #backoffMs: number;
  readonly #maxBackoffMs: number;
  readonly #now: () => number;
  readonly #timeZone: string;
  readonly #dayShares: GeminiDayShares | undefined;
  readonly #scripts: { readonly rateLimited: BudgetScript; readonly checkModel: BudgetScript; readonly admitDaily: BudgetScript; readonly usage: BudgetScript };

  constructor(redis: Redis, config: { readonly limits: Readonly<Record<string, ModelLimits>> }, options: GeminiRateBudgetOptions = {}) {
    const { keyPrefix = "gemini", windowMs = 60_000, slicesPerWindow = 8, backoffMs = 5_000, maxBackoffMs = 120_000, now = Date.now, dayTimeZone = GEMINI_DAY_TIME_ZONE } = options;
    if (!Number.isInteger(slicesPerWindow) || slicesPerWindow < 1) throw new RangeError(`slicesPerWindow must be a whole number ≥ 1, got ${slicesPerWindow}`);
    const sliceMs = Math.floor(windowMs / slicesPerWindow);
    if (!Number.isInteger(windowMs) || sliceMs < 1) throw new RangeError(`windowMs must be a whole number of ms, at least one per slice, got ${windowMs}`);
    this.windowMs = sliceMs;
    this.slicesPerWindow = slicesPerWindow;
    this.#redis = redis;
    this.#backoffMs = backoffMs;
    this.#maxBackoffMs = maxBackoffMs;
    this.#now = now;
    this.#timeZone = dayTimeZone;
    this.#dayShares = options.dayShares;
    dailyWindow(now(), dayTimeZone); // an unknown zone fails here, at start, not on the first call
    this.#scripts = {
      rateLimited: redis.createScript(recordRateLimitedScript),
      checkModel: redis.createScript(checkModelScript),
      admitDaily: redis.createScript(admitDailyScript),
      usage: redis.createScript(recordUsageScript),
    };
    const common = {
      redis,
      // The in-process cache would keep refusing after a refund freed room.
      ephemeralCache: false,
      // The library's default (5 s) lets a request through when Redis is slow: fail-open is not a budget.
      timeout: 0,
      analytics: false,
      enableTelemetry: false,
    } as const;
    const models = new Map<string, ModelBuckets>();
    for (const [model, limits] of Object.entries(config.limits)) {
      const base = `${keyPrefix}:${model}`;
      const slice = { rpm: Math.floor(limits.rpm / slicesPerWindow), tpm: Math.floor(limits.tpm / slicesPerWindow) };
      if (slice.rpm < 1 || slice.tpm < 1) {
        throw new RangeError(`${model}: rpm ${limits.rpm} and tpm ${limits.tpm} must each be at least ${slicesPerWindow}, one per slice of the minute`);
      }
      models.set(model, {
        limits,
        slice,
        rpm: new Ratelimit({ ...common, prefix: `${base}:rpm`, limiter: Ratelimit.fixedWindow(slice.rpm, `${sliceMs} ms`) }),
        tpm: new Ratelimit({ ...common, prefix: `${base}:tpm`, limiter: Ratelimit.fixedWindow(slice.tpm, `${sliceMs} ms`) }),
        keys: {
          cooldown: `${base}:cooldown`,
          strikes: `${base}:cooldown-strikes`,
          day: (day) => `${base}:rpd:${day}`,
          pause: (day) => `${base}:paused:${day}`,
          stats: (day) => `${base}:stats:${day}`,
        },
      });
    }
    this.#models = models;
  }

  /** The models this budget meters. */
  get models(): readonly string[] {
    return [...this.#models.keys()];
  }

  /** A model's limits; throws GeminiModelNotConfiguredError for a model with none. */
  limitsOf(model: string): ModelLimits {
    return this.#buckets(model).limits;
  }

  /** What one slice of the minute admits for a model: the largest call that can ever fit is `tpm` tokens. */
  sliceLimitsOf(model: string): { readonly rpm: number; readonly tpm: number } {
    return this.#buckets(model).slice;
  }

  /** The Pacific day now, by the budget's clock. */
  today(): DailyWindow {
    return dailyWindow(this.#now(), this.#timeZone);
  }

  /**
   * One attempt to admit a call to `model` that sends `inputTokens` prompt
   * tokens: counts one request of the minute and of the day and the tokens,
   * if all fit and no cooldown runs. `withGeminiBudget` is the caller that
   * waits and retries.
   */
  async tryAdmit(model: string, inputTokens: number): Promise<Admission> {
    const buckets = this.#buckets(model);
    if (!Number.isInteger(inputTokens) || inputTokens < 0) {
      throw new RangeError(`inputTokens must be a whole number ≥ 0, got ${inputTokens}`);
    }
    const window = this.today();
    const dayKey = buckets.keys.day(window.day);
    const pauseKey = buckets.keys.pause(window.day);
    // Round trip 1: the model's cooldown and day (read-only) beside both minute budgets (counted).
    const [check, tokens, requests] = await Promise.all([
      this.#scripts.checkModel.exec([dayKey, pauseKey, buckets.keys.cooldown], [String(buckets.limits.rpd)]),
      buckets.tpm.limit(SHARED, { rate: inputTokens }),
      buckets.rpm.limit(SHARED),
    ]);
    const [modelOpen, modelValue] = numbers(check);
    const giveBack = () => Promise.all([this.#refund(buckets.tpm, inputTokens, tokens.reset), this.#refund(buckets.rpm, 1, requests.reset)]);
    if (modelOpen !== 1 || !tokens.success || !requests.success) await giveBack();
    if (modelOpen === 2) {
      return { admitted: false, model, blockedBy: "cooldown", retryInMs: modelValue, detail: `${model}: Gemini answered 429; cooling down for ${modelValue} ms more` };
    }
    if (modelOpen !== 1) return this.#dayOver(model, buckets, window, modelValue);
    if (!tokens.success) {
      return {
        admitted: false,
        model,
        blockedBy: "tpm",
        retryInMs: Math.max(0, tokens.reset - minuteWindowClock()),
        // `remaining` is clamped at 0 once this attempt was counted, so it cannot say how much was left.
        detail: `${model}: input tokens budget: ${inputTokens} tokens do not fit in what is left of ${tokens.limit} per ${this.windowMs} ms`,
      };
    }
    if (!requests.success) {
      return {
        admitted: false,
        model,
        blockedBy: "rpm",
        retryInMs: Math.max(0, requests.reset - minuteWindowClock()),
        detail: `${model}: requests budget: all ${requests.limit} requests per ${this.windowMs} ms used`,
      };
    }
    // Round trip 2: the day, counted only now that the minute has room.
    const shares = this.#dayShares;
    const shareKeys = shares === undefined ? [] : ENVIRONMENTS.flatMap((environment) => [`${dayKey}:env:${environment}`, `${dayKey}:asked:${environment}`]);
    const shareArgs =
      shares === undefined
        ? []
        : [String(ENVIRONMENTS.indexOf(shares.environment) + 1), String(shares.idleAfterMs), ...ENVIRONMENTS.map((environment) => String(shares.shares[environment]))];
    const daily: unknown = await this.#scripts.admitDaily.exec([dayKey, pauseKey, ...shareKeys], [String(buckets.limits.rpd), String(this.#dayKeyTtlMs(window)), ...shareArgs]);
    const [dayAdmitted, dayUsed] = numbers(daily);
    if (dayAdmitted !== 1) {
      await giveBack();
      if (Array.isArray(daily) && daily.length > 2 && shares !== undefined) {
        // Not the day's end: the rest is kept for environments that asked lately; it is lent once they go quiet.
        return {
          admitted: false,
          model,
          blockedBy: "rpd",
          retryInMs: shares.idleAfterMs,
          resumesAt: this.#now() + shares.idleAfterMs,
          detail: `${model}: ${shares.environment} used its share of the ${buckets.limits.rpd} requests of ${window.day}; the ${Number(daily[2])} left are kept for the other environments' shares (GEMINI_DAY_SHARES) until they stop asking`,
        };
      }
      return this.#dayOver(model, buckets, window, dayUsed);
    }
    return { admitted: true, model, tokens: inputTokens, windowEndsAt: tokens.reset, day: window.day };
  }

  /**
   * After the call: brings the TPM count to the input tokens Google counted
   * (`usageMetadata.promptTokenCount`), charging what the estimate missed and,
   * while the call's window is still current, giving back what it overstated;
   * records input and output tokens in the day's statistics. Output tokens
   * never touch the TPM budget: Google's TPM counts input only.
   */
  async settle(admission: AdmittedCall, usage: { readonly inputTokens?: number; readonly outputTokens?: number }): Promise<void> {
    const buckets = this.#buckets(admission.model);
    const actual = usage.inputTokens;
    const pending: Promise<unknown>[] = [];
    if (actual !== undefined) {
      const extra = Math.ceil(actual) - admission.tokens;
      // A charge always lands, even past the limit: those tokens were sent.
      if (extra > 0) pending.push(buckets.tpm.limit(SHARED, { rate: extra }));
      else if (extra < 0) pending.push(this.#refund(buckets.tpm, -extra, admission.windowEndsAt));
    }
    pending.push(this.#recordUsage(buckets, admission.day, { requests: 1, inputTokens: Math.ceil(actual ?? admission.tokens), outputTokens: Math.ceil(usage.outputTokens ?? 0), rateLimited: 0 }));
    await Promise.all(pending);
  }

  /**
   * Records a 429 from Gemini for `model`. A daily quota pauses the model
   * until its day resets (no retry before then can succeed); any other quota
   * cools the model down for `retryDelay` (Gemini's RetryInfo, e.g. "53s"),
   * or for a doubling backoff when there is none. Other models are untouched.
   * Returns how long the model now waits (ms) and, for a daily quota, until when.
   */
  async recordRateLimited(model: string, quota: GeminiQuotaKind, retryDelay?: string): Promise<{ readonly cooldownMs: number; readonly pausedUntil: number | null }> {
    const buckets = this.#buckets(model);
    const window = this.today();
    const recorded = this.#recordUsage(buckets, window.day, { requests: 0, inputTokens: 0, outputTokens: 0, rateLimited: 1 });
    if (quota === "rpd") {
      const pauseKey = buckets.keys.pause(window.day);
      await Promise.all([this.#redis.set(pauseKey, "429", { px: this.#dayKeyTtlMs(window) }), recorded]);
      return { cooldownMs: Math.max(0, window.endsAt - this.#now()), pausedUntil: window.endsAt };
    }
    const delayMs = retryDelay === undefined ? null : parseRetryDelay(retryDelay);
    const [reply] = await Promise.all([
      this.#scripts.rateLimited.exec([buckets.keys.cooldown, buckets.keys.strikes], [String(delayMs ?? -1), String(this.#backoffMs), String(this.#maxBackoffMs)]),
      recorded,
    ]);
    return { cooldownMs: Number(reply), pausedUntil: null };
  }

  async cooldownRemainingMs(model: string): Promise<number> {
    const left = await this.#redis.pttl(this.#buckets(model).keys.cooldown);
    return left > 0 ? left : 0;
  }

  /**
   * Per model: requests and input tokens used this minute, requests used
   * today, each with its limit and as a fraction of it; the cooldown; the
   * pause until the daily reset; and today's statistics. `models` defaults
   * to every configured model.
   */
  async status(models: readonly string[] = this.models): Promise<GeminiBudgetStatus> {
    const window = this.today();
    const entries = await Promise.all(models.map(async (model) => [model, await this.#modelStatus(model, window)] as const));
    return { windowMs: this.windowMs, slicesPerWindow: this.slicesPerWindow, day: window.day, dayResetsAt: window.endsAt, models: Object.fromEntries(entries) };
  }

  async #modelStatus(model: string, window: DailyWindow): Promise<ModelBudgetStatus> {
    const buckets = this.#buckets(model);
    const [requests, tokens, dayUsed, paused, cooldownRemainingMs, stats] = await Promise.all([
      buckets.rpm.getRemaining(SHARED),
      buckets.tpm.getRemaining(SHARED),
      this.#redis.get<number | string>(buckets.keys.day(window.day)),
      this.#redis.exists(buckets.keys.pause(window.day)),
      this.cooldownRemainingMs(model),
      this.#redis.hgetall<Record<string, number | string>>(buckets.keys.stats(window.day)),
    ]);
    const rpdUsed = Number(dayUsed ?? 0);
    const rpd = use(buckets.limits.rpd, rpdUsed);
    const stat = (name: string) => Number(stats?.[name] ?? 0);
    return {
      model,
      limits: buckets.limits,
      rpm: use(requests.limit, requests.limit - requests.remaining),
      tpm: use(tokens.limit, tokens.limit - tokens.remaining),
      rpd,
      windowEndsAt: tokens.reset,
      cooldownRemainingMs,
      pausedUntil: paused > 0 || rpd.remaining <= 0 ? window.endsAt : null,
      today: { requests: stat("requests"), inputTokens: stat("inputTokens"), outputTokens: stat("outputTokens"), rateLimited: stat("rateLimited") },
    };
  }

  /** The refusal for a model done for the day: `used` is -1 when Google's 429 paused it. */
  #dayOver(model: string, buckets: ModelBuckets, window: DailyWindow, used: number): Admission {
    const resets = new Date(window.endsAt).toISOString();
    return {
      admitted: false,
      model,
      blockedBy: "rpd",
      retryInMs: Math.max(0, window.endsAt - this.#now()),
      resumesAt: window.endsAt,
      detail:
        used === -1
          ? `${model}: Gemini answered 429 for the daily quota; paused until the reset at midnight Pacific (${resets})`
          : `${model}: all ${buckets.limits.rpd} requests of ${window.day} used; the day resets at midnight Pacific (${resets})`,
    };
  }

  #buckets(model: string): ModelBuckets {
    const buckets = this.#models.get(model);
    if (!buckets) throw new GeminiModelNotConfiguredError(model, this.models);
    return buckets;
  }

  async #recordUsage(buckets: ModelBuckets, day: string, usage: { requests: number; inputTokens: number; outputTokens: number; rateLimited: number }): Promise<void> {
    // Statistics stay readable for a day after today ends, then expire on their own.
    await this.#scripts.usage.exec(
      [buckets.keys.stats(day)],
      [String(this.#dayKeyTtlMs(this.today())), String(usage.requests), String(usage.inputTokens), String(usage.outputTokens), String(usage.rateLimited)],
    );
  }

  /**
   * How long a day's keys live from now, as a duration from the budget's own
   * clock. Redis expires keys on its clock, so an absolute time (PEXPIREAT)
   * computed from an injected clock would put the expiry in Redis' past or
   * future; a duration means the same on both.
   */
  #dayKeyTtlMs(window: DailyWindow): number {
    return Math.max(1, window.endsAt + DAY_KEY_MARGIN_MS - this.#now());
  }

  async #refund(limiter: Ratelimit, amount: number, windowEndsAt: number): Promise<void> {
    if (amount <= 0 || windowEndsAt - minuteWindowClock() <= REFUND_MARGIN_MS) return;
    await limiter.limit(SHARED, { rate: -amount });
  }
}

function use(limit: number, used: number): BudgetUse {
  const clamped = Math.max(0, used);
  return { limit, used: clamped, remaining: Math.max(0, limit - clamped), fraction: limit > 0 ? clamped / limit : 0 };
}

function numbers(reply: unknown): [number, number] {
  if (!Array.isArray(reply)) throw new Error(`unexpected reply from Redis: ${JSON.stringify(reply)}`);
  return [Number(reply[0]), Number(reply[1])];
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
