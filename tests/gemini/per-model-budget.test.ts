import { describe, expect, it } from "vitest";
import type { ModelLimits } from "../../supabase/functions/_shared/gemini-config.ts";
import { dailyWindow } from "../../supabase/functions/_shared/gemini-daily-window.ts";
import {
  GeminiBudgetTimeoutError,
  GeminiDailyBudgetExhaustedError,
  GeminiRateLimitedError,
  quotaViolationOf,
  withGeminiBudget,
} from "../../supabase/functions/_shared/gemini-call.ts";
import { GeminiRateBudget, type GeminiRateBudgetOptions } from "../../supabase/functions/_shared/gemini-rate-budget.ts";
import { PACIFIC_DAY_CASES } from "../helpers/pacific-days.ts";
import { randomKeyPrefix, upstashClient } from "../helpers/upstash-client.ts";

const FAST = "gemini-3.5-flash-lite";
const STRONG = "gemini-3.8-flash";

/** A day-long window, so a test that must stay inside one window cannot straddle two. */
const LONG_WINDOW = { windowMs: 86_400_000 };

function budgetFor(limits: Record<string, Partial<ModelLimits>>, options: GeminiRateBudgetOptions = {}): GeminiRateBudget {
  const full = Object.fromEntries(Object.entries(limits).map(([model, given]) => [model, { rpm: 1_000, tpm: 1_000_000, rpd: 1_000_000, ...given }]));
  // The arithmetic below is written for 4 slices per window, whatever the production default.
  return new GeminiRateBudget(upstashClient(), { limits: full }, { keyPrefix: randomKeyPrefix("gemini-models"), slicesPerWindow: 4, ...LONG_WINDOW, ...options });
}

const answer = (input: number, output = 10) => ({ usageMetadata: { promptTokenCount: input, candidatesTokenCount: output, totalTokenCount: input + output } });

/** What `@google/genai` throws for a 429: `ApiError` with `status` and the JSON body as `message`. */
class FakeApiError extends Error {
  constructor(
    readonly status: number,
    body: unknown,
  ) {
    super(JSON.stringify(body));
  }
}

/** A 429 as Gemini words it for a paid project (body quoted on discuss.ai.google.dev, model and quota varied). */
function quotaError(model: string, quotaId: string, quotaMetric: string, retryDelay: string): FakeApiError {
  return new FakeApiError(429, {
    error: {
      code: 429,
      message: "You exceeded your current quota, please check your plan and billing details. For more information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.",
      status: "RESOURCE_EXHAUSTED",
      details: [
        {
          "@type": "type.googleapis.com/google.rpc.QuotaFailure",
          violations: [{ quotaMetric, quotaId, quotaDimensions: { location: "global", model }, quotaValue: "3000000" }],
        },
        { "@type": "type.googleapis.com/google.rpc.Help", links: [{ description: "Learn more about Gemini API quotas", url: "https://ai.google.dev/gemini-api/docs/rate-limits" }] },
        { "@type": "type.googleapis.com/google.rpc.RetryInfo", retryDelay },
      ],
    },
  });
}

describe("two models, two budgets", () => {
  it("saturating one model's input tokens leaves the other's calls admitted; status shows each as fractions", async () => {
    const budget = budgetFor({ [FAST]: { tpm: 4_000 }, [STRONG]: { tpm: 4_000 } });
    // 4 slices: 1,000 input tokens per slice of the (day-long) window.
    await withGeminiBudget(budget, { model: FAST, estimatedTokens: 1_000 }, async () => answer(1_000, 90_000));
    const refused: unknown = await withGeminiBudget(budget, { model: FAST, estimatedTokens: 1, maxWaitMs: 200 }, async () => answer(1)).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(GeminiBudgetTimeoutError);
    expect(refused).toMatchObject({ model: FAST, blockedBy: "tpm" });

    let strongCalled = false;
    await withGeminiBudget(budget, { model: STRONG, estimatedTokens: 300, maxWaitMs: 200 }, async () => {
      strongCalled = true;
      return answer(300);
    });
    expect(strongCalled).toBe(true);

    const status = await budget.status();
    expect(status.slicesPerWindow).toBe(4);
    expect(status.models[FAST]?.tpm).toEqual({ limit: 1_000, used: 1_000, remaining: 0, fraction: 1 });
    expect(status.models[FAST]?.today).toMatchObject({ requests: 1, inputTokens: 1_000, outputTokens: 90_000 });
    expect(status.models[STRONG]?.tpm).toEqual({ limit: 1_000, used: 300, remaining: 700, fraction: 0.3 });
    expect(status.models[STRONG]?.rpd).toMatchObject({ used: 1, limit: 1_000_000 });
  });
});

describe("429 per model", () => {
  it("a 429 for one model cools that model only, for its retryDelay", async () => {
    const budget = budgetFor({ [FAST]: {}, [STRONG]: {} });
    const error: unknown = await withGeminiBudget(budget, { model: FAST, estimatedTokens: 10 }, async () => {
      throw quotaError(FAST, "GenerateRequestsPerMinutePerProjectPerModel-PaidTier3", "generativelanguage.googleapis.com/generate_content_paid_tier_requests", "30s");
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GeminiRateLimitedError);
    expect(error).toMatchObject({ model: FAST, quota: "rpm", cooldownMs: 30_000, pausedUntil: null, retryable: true });

    expect(await budget.tryAdmit(FAST, 10)).toMatchObject({ admitted: false, blockedBy: "cooldown" });
    expect(await budget.tryAdmit(STRONG, 10)).toMatchObject({ admitted: true });
    const status = await budget.status();
    expect(status.models[FAST]?.cooldownRemainingMs).toBeGreaterThan(29_000);
    expect(status.models[FAST]?.today.rateLimited).toBe(1);
    expect(status.models[STRONG]?.cooldownRemainingMs).toBe(0);
  });

  it("reads the quota and model Google names, the longest wait first", () => {
    const tokens = quotaError(FAST, "GenerateContentPaidTierInputTokensPerModelPerMinute-PaidTier2", "generativelanguage.googleapis.com/generate_content_paid_tier_2_input_token_count", "19s");
    expect(quotaViolationOf(tokens)).toEqual({ quota: "tpm", model: FAST });
    // Several violations (a free-tier answer quoted in cline/cline#2540): the day outranks the minute.
    const several = new FakeApiError(429, {
      error: {
        code: 429,
        details: [
          {
            "@type": "type.googleapis.com/google.rpc.QuotaFailure",
            violations: [
              { quotaMetric: "generativelanguage.googleapis.com/generate_content_free_tier_input_token_count", quotaId: "GenerateContentInputTokensPerModelPerMinute-FreeTier", quotaDimensions: { location: "global", model: STRONG } },
              { quotaMetric: "generativelanguage.googleapis.com/generate_requests_per_model_per_day", quotaId: "GenerateRequestsPerDayPerProjectPerModel" },
              { quotaMetric: "generativelanguage.googleapis.com/generate_content_free_tier_requests", quotaId: "GenerateRequestsPerMinutePerProjectPerModel-FreeTier", quotaDimensions: { model: STRONG, location: "global" } },
            ],
          },
        ],
      },
    });
    expect(quotaViolationOf(several)).toEqual({ quota: "rpd", model: STRONG });
    expect(quotaViolationOf(new FakeApiError(429, { error: { code: 429, message: "Resource has been exhausted (e.g. check quota).", status: "RESOURCE_EXHAUSTED" } }))).toEqual({
      quota: "unknown",
      model: undefined,
    });
  });
});

// The budget's clock is injected while Redis keeps real time: each case must hold on any date the suite runs.
describe.each(PACIFIC_DAY_CASES)("requests per day, $name", ({ at, day, reset: RESET, nextDay }) => {
  const NOON_PACIFIC = at;

  it("an exhausted day pauses that model until midnight Pacific, sending nothing meanwhile; the next day admits again", async () => {
    let now = NOON_PACIFIC;
    const budget = budgetFor({ [FAST]: { rpd: 3 }, [STRONG]: {} }, { now: () => now });
    let sent = 0;
    const send = async () => {
      sent += 1;
      return answer(10);
    };
    for (let i = 0; i < 3; i += 1) await withGeminiBudget(budget, { model: FAST, estimatedTokens: 10 }, send);
    expect(sent).toBe(3);

    const startedAt = Date.now();
    const error: unknown = await withGeminiBudget(budget, { model: FAST, estimatedTokens: 10, maxWaitMs: 60_000 }, send).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GeminiDailyBudgetExhaustedError);
    expect(error).toMatchObject({ model: FAST, resumesAt: RESET, retryable: true });
    expect(String(error)).toContain(`all 3 requests of ${day} used`);
    // Refused at once, not after waiting out maxWaitMs.
    expect(Date.now() - startedAt).toBeLessThan(5_000);
    expect((await budget.status()).models[FAST]).toMatchObject({ pausedUntil: RESET, rpd: { used: 3, limit: 3, remaining: 0, fraction: 1 } });
    // The other model's day is its own.
    await withGeminiBudget(budget, { model: STRONG, estimatedTokens: 10 }, async () => answer(10));

    now = RESET - 1;
    await expect(withGeminiBudget(budget, { model: FAST, estimatedTokens: 10 }, send)).rejects.toThrow(GeminiDailyBudgetExhaustedError);
    expect(sent).toBe(3);

    now = RESET;
    await withGeminiBudget(budget, { model: FAST, estimatedTokens: 10 }, send);
    expect(sent).toBe(4);
    const next = await budget.status();
    expect(next.day).toBe(nextDay);
    expect(next.models[FAST]).toMatchObject({ pausedUntil: null, rpd: { used: 1, remaining: 2 } });
  });

  it("a 429 for the daily quota pauses the model until the reset, not for its retryDelay", async () => {
    let now = NOON_PACIFIC;
    const budget = budgetFor({ [FAST]: {}, [STRONG]: {} }, { now: () => now });
    const error: unknown = await withGeminiBudget(budget, { model: STRONG, estimatedTokens: 10 }, async () => {
      throw quotaError(STRONG, "GenerateRequestsPerDayPerProjectPerModel", "generativelanguage.googleapis.com/generate_requests_per_model_per_day", "20s");
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GeminiRateLimitedError);
    expect(error).toMatchObject({ model: STRONG, quota: "rpd", pausedUntil: RESET });
    expect(String(error)).toContain(`pauses until ${new Date(RESET).toISOString()}`);

    let sent = 0;
    const refused: unknown = await withGeminiBudget(budget, { model: STRONG, estimatedTokens: 10 }, async () => {
      sent += 1;
      return answer(10);
    }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(GeminiDailyBudgetExhaustedError);
    expect(String(refused)).toContain("Gemini answered 429 for the daily quota");
    expect(sent).toBe(0);
    expect(await budget.tryAdmit(FAST, 10)).toMatchObject({ admitted: true });

    now = RESET + 1;
    expect(await budget.tryAdmit(STRONG, 10)).toMatchObject({ admitted: true, day: nextDay });
  });

  it("callers held by the minute budgets are never told the day is over while requests are left", async () => {
    // One request per 100 ms slice, three a day, twelve callers at once.
    const budget = budgetFor({ [FAST]: { rpm: 4, rpd: 3 } }, { windowMs: 400, now: () => NOON_PACIFIC });
    let sent = 0;
    const usedWhenRefused: number[] = [];
    await Promise.all(
      Array.from({ length: 12 }, () =>
        withGeminiBudget(budget, { model: FAST, estimatedTokens: 1, maxWaitMs: 10_000 }, async () => {
          sent += 1;
          return answer(1);
        }).catch(async (error: unknown) => {
          if (!(error instanceof GeminiDailyBudgetExhaustedError)) throw error;
          // The day's count only grows: read after the refusal, it shows what the refusal saw.
          usedWhenRefused.push((await budget.status([FAST])).models[FAST]?.rpd.used ?? -1);
        }),
      ),
    );
    expect(sent).toBe(3);
    expect(usedWhenRefused).toEqual(Array.from({ length: 9 }, () => 3));
  });
});

describe("the Pacific day", () => {
  it.each([
    ["an ordinary day", Date.UTC(2026, 10, 29, 20), "2026-11-29", Date.UTC(2026, 10, 29, 8), Date.UTC(2026, 10, 30, 8)],
    ["just before midnight Pacific", Date.UTC(2026, 10, 30, 7, 59, 59, 999), "2026-11-29", Date.UTC(2026, 10, 29, 8), Date.UTC(2026, 10, 30, 8)],
    ["the day daylight saving time starts (23 h)", Date.UTC(2026, 2, 8, 18), "2026-03-08", Date.UTC(2026, 2, 8, 8), Date.UTC(2026, 2, 9, 7)],
    ["the day daylight saving time ends (25 h)", Date.UTC(2026, 10, 1, 18), "2026-11-01", Date.UTC(2026, 10, 1, 7), Date.UTC(2026, 10, 2, 8)],
  ])("the Pacific day of %s", (_name, at, day, startsAt, endsAt) => {
    expect(dailyWindow(at)).toEqual({ day, startsAt, endsAt });
  });

  it.each(PACIFIC_DAY_CASES)("$name is on $day and resets when $nextDay begins", ({ at, day, reset }) => {
    expect(dailyWindow(at)).toMatchObject({ day, endsAt: reset });
  });
});
