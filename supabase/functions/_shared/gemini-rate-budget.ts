import type { Redis } from "@upstash/redis";
import { dailyWindow, GEMINI_DAY_TIME_ZONE, type DailyWindow } from "./gemini-daily-window.ts";
import type { ModelLimits } from "./gemini-config.ts";
import { dayShareArguments, type GeminiDayShares } from "./gemini-day-shares.ts";
import { admitDailyScript, checkModelScript, recordRateLimitedScript, recordUsageScript, refundWindowScript } from "./gemini-budget-scripts.ts";
import { minuteWindowClock, RollingMinuteCounter, SliceCounter, type MinuteCounter } from "./gemini-minute-counters.ts";
import {
  GeminiModelNotConfiguredError,
  numbers,
  parseRetryDelay,
  use,
  type AdmittedCall,
  type Admission,
  type GeminiQuotaKind,
  type GeminiBudgetStatus,
  type GeminiRateBudgetOptions,
  type ModelBudgetStatus,
} from "./gemini-budget-types.ts";

export * from "./gemini-budget-scripts.ts";
export * from "./gemini-budget-types.ts";
export type { MinuteAdmission } from "./gemini-minute-counters.ts";

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
 * counted too, and an estimate may overstate what Google counted: both are
 * given back in the window where they were counted, whenever the refund
 * comes (`refundWindowScript`), so a vision call that outlasts its slice
 * still frees what it overstated there; a window already expired took its
 * over-count with it.
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

/** A day's keys outlive its end by this much: readable for a while, then gone on their own. */
const DAY_KEY_MARGIN_MS = 86_400_000;


interface BudgetScript {
  exec(keys: string[], args: string[]): Promise<unknown>;
}

interface ModelBuckets {
  readonly limits: ModelLimits;
  /** What one slice admits. */
  readonly slice: { readonly rpm: number; readonly tpm: number };
  readonly rpm: MinuteCounter;
  readonly tpm: MinuteCounter;
  readonly keys: { readonly cooldown: string; readonly strikes: string; readonly day: (day: string) => string; readonly pause: (day: string) => string; readonly stats: (day: string) => string };
}

export class GeminiRateBudget {
  /** The window sliceLimitsOf's limits count in, ms: one slice, or the whole minute with minuteAdmission "rolling". */
  readonly windowMs: number;
  readonly slicesPerWindow: number;
  readonly minuteAdmission: "slices" | "rolling";
  readonly #redis: Redis;
  readonly #models: ReadonlyMap<string, ModelBuckets>;
  readonly #backoffMs: number;
  readonly #maxBackoffMs: number;
  readonly #now: () => number;
  readonly #timeZone: string;
  readonly #dayShares: GeminiDayShares | undefined;
  readonly #scripts: { readonly rateLimited: BudgetScript; readonly checkModel: BudgetScript; readonly admitDaily: BudgetScript; readonly usage: BudgetScript; readonly refund: BudgetScript };

  constructor(redis: Redis, config: { readonly limits: Readonly<Record<string, ModelLimits>> }, options: GeminiRateBudgetOptions = {}) {
    const { keyPrefix = "gemini", windowMs = 60_000, slicesPerWindow = 8, minuteAdmission = "slices", backoffMs = 5_000, maxBackoffMs = 120_000, now = Date.now, dayTimeZone = GEMINI_DAY_TIME_ZONE } = options;
    if (!Number.isInteger(slicesPerWindow) || slicesPerWindow < 1) throw new RangeError(`slicesPerWindow must be a whole number ≥ 1, got ${slicesPerWindow}`);
    const sliceMs = Math.floor(windowMs / slicesPerWindow);
    if (!Number.isInteger(windowMs) || sliceMs < 1) throw new RangeError(`windowMs must be a whole number of ms, at least one per slice, got ${windowMs}`);
    const rolling = minuteAdmission === "rolling";
    this.windowMs = rolling ? windowMs : sliceMs;
    this.slicesPerWindow = slicesPerWindow;
    this.minuteAdmission = minuteAdmission;
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
      refund: redis.createScript(refundWindowScript),
    };
    const models = new Map<string, ModelBuckets>();
    for (const [model, limits] of Object.entries(config.limits)) {
      const base = `${keyPrefix}:${model}`;
      // Rolling: a call is checked against the whole minute; slices: against its slice's share.
      const slice = rolling ? { rpm: Math.floor(limits.rpm), tpm: Math.floor(limits.tpm) } : { rpm: Math.floor(limits.rpm / slicesPerWindow), tpm: Math.floor(limits.tpm / slicesPerWindow) };
      if (slice.rpm < 1 || slice.tpm < 1) {
        throw new RangeError(`${model}: rpm ${limits.rpm} and tpm ${limits.tpm} must each be at least ${slicesPerWindow}, one per slice of the minute`);
      }
      models.set(model, {
        limits,
        slice,
        rpm: rolling ? new RollingMinuteCounter(redis, `${base}:rpm-rolling`, slice.rpm, sliceMs, slicesPerWindow) : new SliceCounter(redis, `${base}:rpm`, slice.rpm, sliceMs),
        tpm: rolling ? new RollingMinuteCounter(redis, `${base}:tpm-rolling`, slice.tpm, sliceMs, slicesPerWindow) : new SliceCounter(redis, `${base}:tpm`, slice.tpm, sliceMs),
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
      buckets.tpm.count(inputTokens),
      buckets.rpm.count(1),
    ]);
    const [modelOpen, modelValue] = numbers(check);
    const giveBack = () => Promise.all([this.#refund(buckets.tpm.keyOf(tokens.reset), inputTokens), this.#refund(buckets.rpm.keyOf(requests.reset), 1)]);
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
    const { keys: shareKeys, args: shareArgs } = dayShareArguments(dayKey, shares);
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
      if (extra > 0) pending.push(buckets.tpm.count(extra));
      else if (extra < 0) pending.push(this.#refund(buckets.tpm.keyOf(admission.windowEndsAt), -extra));
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
    return { windowMs: this.windowMs, slicesPerWindow: this.slicesPerWindow, minuteAdmission: this.minuteAdmission, day: window.day, dayResetsAt: window.endsAt, models: Object.fromEntries(entries) };
  }

  async #modelStatus(model: string, window: DailyWindow): Promise<ModelBudgetStatus> {
    const buckets = this.#buckets(model);
    const [requests, tokens, dayUsed, paused, cooldownRemainingMs, stats] = await Promise.all([
      buckets.rpm.used(),
      buckets.tpm.used(),
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
      rpm: use(requests.limit, requests.used),
      tpm: use(tokens.limit, tokens.used),
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

  /** Gives `amount` back in the window it was counted in, whenever that is (refundWindowScript). */
  async #refund(windowKey: string, amount: number): Promise<void> {
    if (amount <= 0) return;
    await this.#scripts.refund.exec([windowKey], [String(amount)]);
  }

}

