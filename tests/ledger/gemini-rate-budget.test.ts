import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { ModelLimits } from "../../supabase/functions/_shared/gemini-config.ts";
import {
  GeminiBudgetTimeoutError,
  GeminiModelNotConfiguredError,
  GeminiRateLimitedError,
  retryDelayOf,
  withGeminiBudget,
} from "../../supabase/functions/_shared/gemini-call.ts";
import {
  admitDailyScript,
  GeminiRateBudget,
  parseRetryDelay,
  recordRateLimitedScript,
  recordUsageScript,
  checkModelScript,
  refundWindowScript,
  rollingMinuteScript,
  type Admission,
  type GeminiRateBudgetOptions,
} from "../../supabase/functions/_shared/gemini-rate-budget.ts";
import { randomKeyPrefix, upstashClient } from "../helpers/upstash-client.ts";

const MODEL = "gemini-test";

/** One model's limits; RPD large unless a test is about the day. */
function limitsFor(limits: { rpm: number; tpm: number; rpd?: number }): { limits: Record<string, ModelLimits> } {
  return { limits: { [MODEL]: { rpd: 1_000_000, ...limits } } };
}

/** Several workers' views of one budget: each has its own client, all share the prefix. */
function workers(count: number, limits: { rpm: number; tpm: number; rpd?: number }, options: GeminiRateBudgetOptions = {}): GeminiRateBudget[] {
  const keyPrefix = randomKeyPrefix("gemini");
  // One slice per window: these tests are about the window's own arithmetic.
  return Array.from({ length: count }, () => new GeminiRateBudget(upstashClient(), limitsFor(limits), { keyPrefix, slicesPerWindow: 1, ...options }));
}

function one(limits: { rpm: number; tpm: number; rpd?: number }, options: GeminiRateBudgetOptions = {}): GeminiRateBudget {
  const [budget] = workers(1, limits, options);
  if (!budget) throw new Error("no budget");
  return budget;
}

/** What `@google/genai` throws for a 429: `ApiError` with `status` and the JSON body as `message`. */
class FakeApiError extends Error {
  constructor(
    readonly status: number,
    body: unknown,
  ) {
    super(JSON.stringify(body));
  }
}

function quotaExhausted(retryDelay?: string): FakeApiError {
  return new FakeApiError(429, {
    error: {
      code: 429,
      message: "You exceeded your current quota, please check your plan and billing details.",
      status: "RESOURCE_EXHAUSTED",
      details: [
        { "@type": "type.googleapis.com/google.rpc.QuotaFailure", violations: [{ quotaMetric: "generativelanguage.googleapis.com/generate_content_paid_tier_input_token_count" }] },
        ...(retryDelay === undefined ? [] : [{ "@type": "type.googleapis.com/google.rpc.RetryInfo", retryDelay }]),
      ],
    },
  });
}

/** A generateContent answer: `input` prompt tokens, `output` candidate tokens. */
const answer = (input: number, output = 1) => ({ text: "…", usageMetadata: { promptTokenCount: input, candidatesTokenCount: output, totalTokenCount: input + output } });

/** A day-long window, so a test that must stay inside one window cannot straddle two. */
const LONG_WINDOW = { windowMs: 86_400_000 };

const call = (estimatedTokens: number, extra: { maxWaitMs?: number } = {}) => ({ model: MODEL, estimatedTokens, ...extra });

describe("the budget's Lua scripts", () => {
  it.each([
    ["recordRateLimitedScript", recordRateLimitedScript, "9fe35b670b2c269941bd0e8eb8b7ac17678eb518"],
    ["checkModelScript", checkModelScript, "3c1dd229c2d14482701336965643af0b11f1b2c3"],
    ["admitDailyScript", admitDailyScript, "827676a657537decf2d30764c7606d752889c209"],
    ["recordUsageScript", recordUsageScript, "80e276b67881dd497e884b872c2a17b6c95f594f"],
    ["refundWindowScript", refundWindowScript, "3e5ee9959f2ec2fc282b300a6eab2ae8f27b311d"],
    ["rollingMinuteScript", rollingMinuteScript, "7af8f6d945a5917ebed2ece15a887ebacb454565"],
  ])("%s has its pinned SHA1, and Redis computes the same", async (_name, script, sha) => {
    expect(createHash("sha1").update(script).digest("hex")).toBe(sha);
    expect(await upstashClient().scriptLoad(script)).toBe(sha);
  });
});

describe("input tokens per window", () => {
  it("under 20 concurrent callers asking for more than the budget, no window admits more tokens than the limit", async () => {
    const limits = { rpm: 10_000, tpm: 1_000 };
    const windowMs = 2_000;
    const admitted: Array<{ windowEndsAt: number; tokens: number }> = [];
    let refusals = 0;

    // Each caller is its own worker; the subclass only notes what the budget decided.
    const keyPrefix = randomKeyPrefix("tpm-race");
    class NotingBudget extends GeminiRateBudget {
      override async tryAdmit(model: string, inputTokens: number): Promise<Admission> {
        const admission = await super.tryAdmit(model, inputTokens);
        if (admission.admitted) admitted.push({ windowEndsAt: admission.windowEndsAt, tokens: inputTokens });
        else refusals += 1;
        return admission;
      }
    }
    const callers = Array.from({ length: 20 }, () => new NotingBudget(upstashClient(), limitsFor(limits), { keyPrefix, windowMs, slicesPerWindow: 1 }));

    const until = Date.now() + 5_000;
    await Promise.all(
      callers.map(async (budget, i) => {
        while (Date.now() < until) {
          const tokens = 50 + ((i * 37) % 200); // 50 to 249 tokens: sizes that do not divide the limit evenly
          // Admission is not first-come-first-served: under this much demand one caller may
          // lose several windows in a row, so the wait allowed is longer than the run.
          await withGeminiBudget(budget, call(tokens, { maxWaitMs: 20_000 }), async () => answer(tokens));
        }
      }),
    );

    const perWindow = new Map<number, number>();
    for (const { windowEndsAt, tokens } of admitted) perWindow.set(windowEndsAt, (perWindow.get(windowEndsAt) ?? 0) + tokens);
    expect(perWindow.size).toBeGreaterThanOrEqual(2);
    const overLimit = [...perWindow].filter(([, tokens]) => tokens > limits.tpm);
    expect(overLimit).toEqual([]);
    // The demand really exceeded the budget, and refused attempts did not waste it:
    // the fullest window came within one request (≤ 249 tokens) of the limit.
    expect(refusals).toBeGreaterThan(20);
    expect(Math.max(...perWindow.values())).toBeGreaterThan(limits.tpm - 250);
  });

  it("reconciles on the input tokens Google counted: more is charged, less is given back, output never counts", async () => {
    const budget = one({ rpm: 100, tpm: 10_000 }, LONG_WINDOW);
    await withGeminiBudget(budget, call(1_000), async () => answer(1_500, 50_000));
    await withGeminiBudget(budget, call(1_000), async () => answer(400, 8_000));
    await withGeminiBudget(budget, call(100), async () => ({ name: "files/abc" })); // no usageMetadata: the estimate stands

    const status = (await budget.status()).models[MODEL];
    expect(status?.tpm).toEqual({ limit: 10_000, used: 2_000, remaining: 8_000, fraction: 0.2 });
    expect(status?.rpm).toMatchObject({ limit: 100, used: 3, remaining: 97 });
    expect(status?.today).toEqual({ requests: 3, inputTokens: 2_000, outputTokens: 58_000, rateLimited: 0 });
    expect(status?.cooldownRemainingMs).toBe(0);
    expect(status?.windowEndsAt).toBeGreaterThan(Date.now());
  });

  it("a request-budget refusal gives its tokens and its day's request back, and the timeout names the budget", async () => {
    const budget = one({ rpm: 2, tpm: 10_000 }, LONG_WINDOW);
    await withGeminiBudget(budget, call(100), async () => answer(100));
    await withGeminiBudget(budget, call(100), async () => answer(100));

    let called = false;
    const attempt = withGeminiBudget(budget, call(100, { maxWaitMs: 300 }), async () => {
      called = true;
      return answer(100);
    });
    await expect(attempt).rejects.toThrow(GeminiBudgetTimeoutError);
    await expect(attempt).rejects.toThrow(/^Gemini requests-per-minute budget of gemini-test still exhausted after waiting \d+ ms: gemini-test: requests budget: all 2 requests/);
    expect(called).toBe(false);
    const status = (await budget.status()).models[MODEL];
    expect(status?.tpm.used).toBe(200);
    expect(status?.rpd.used).toBe(2);
  });

  it("a token-budget timeout names the input-tokens budget", async () => {
    const budget = one({ rpm: 100, tpm: 1_000 }, LONG_WINDOW);
    await withGeminiBudget(budget, call(900), async () => answer(900));
    const error: unknown = await withGeminiBudget(budget, call(200, { maxWaitMs: 200 }), async () => answer(200)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GeminiBudgetTimeoutError);
    expect(error).toMatchObject({ blockedBy: "tpm", retryable: true, model: MODEL });
    expect(String(error)).toContain("Gemini input-tokens-per-minute budget of gemini-test still exhausted");
    expect((await budget.status()).models[MODEL]?.tpm).toMatchObject({ limit: 1_000, used: 900, remaining: 100 });
  });

  it("refuses at once a call that could never fit the budget, and a model with no limits, sending nothing", async () => {
    const budget = one({ rpm: 100, tpm: 1_000 });
    await expect(withGeminiBudget(budget, call(1_001), async () => answer(1))).rejects.toThrow(
      "a gemini-test call estimated at 1001 input tokens can never fit its 1000-token budget per 60000 ms",
    );
    let called = false;
    const unmetered = withGeminiBudget(budget, { model: "gemini-unknown", estimatedTokens: 1 }, async () => {
      called = true;
      return answer(1);
    });
    await expect(unmetered).rejects.toThrow(GeminiModelNotConfiguredError);
    await expect(unmetered).rejects.toThrow('Gemini model "gemini-unknown" has no limits in GEMINI_LIMITS (configured: gemini-test); the call was not sent');
    expect(called).toBe(false);
  });
});

describe("refunds land in the window where the tokens were reserved", () => {
  /** A budget whose slice is `windowMs` long, with the raw counter of any of its TPM windows. */
  function shortWindows(windowMs: number) {
    const keyPrefix = randomKeyPrefix("gemini");
    const redis = upstashClient();
    const budget = new GeminiRateBudget(redis, limitsFor({ rpm: 100, tpm: 10_000 }), { keyPrefix, slicesPerWindow: 1, windowMs });
    // The window key as @upstash/ratelimit 2.2.0's fixedWindow names it: <prefix>:<identifier>:<bucket>.
    const counted = async (endsAt: number) => redis.get<number | string>(`${keyPrefix}:${MODEL}:tpm:all:${endsAt / windowMs - 1}`);
    return { budget, counted };
  }
  const sleepUntil = (at: number) => new Promise((resolve) => setTimeout(resolve, Math.max(0, at - Date.now())));

  it("an answer that arrives after its slice ended gives the overstated tokens back in that slice, not in the current one", async () => {
    const windowMs = 1_000;
    const { budget, counted } = shortWindows(windowMs);
    // Counted 600 ms into a window: the library's key then lives until 600 ms past the window's end
    // (PEXPIRE window at its first count), long enough to see where a late refund lands.
    await sleepUntil((Math.floor(Date.now() / windowMs) + 1) * windowMs + 600);
    const admission = await budget.tryAdmit(MODEL, 6_000);
    if (!admission.admitted) throw new Error(`not admitted: ${admission.detail}`);
    expect(Number(await counted(admission.windowEndsAt))).toBe(6_000);
    // The call outlasts its slice (a vision call outlasting its 7.5 s slice).
    await sleepUntil(admission.windowEndsAt + 150);
    const current = (await budget.status()).models[MODEL];
    expect(current?.windowEndsAt).toBe(admission.windowEndsAt + windowMs);
    await budget.settle(admission, { inputTokens: 1_500, outputTokens: 10 });

    expect(Number(await counted(admission.windowEndsAt))).toBe(1_500);
    // The current slice was neither credited nor charged: a later call still fits only its own 10,000.
    expect(await counted(admission.windowEndsAt + windowMs)).toBeNull();
    const next = await budget.tryAdmit(MODEL, 10_000);
    expect(next).toMatchObject({ admitted: true });
    expect(await budget.tryAdmit(MODEL, 1)).toMatchObject({ admitted: false, blockedBy: "tpm" });
    expect((await budget.status()).models[MODEL]?.today).toMatchObject({ requests: 1, inputTokens: 1_500, outputTokens: 10 });
  }, 15_000);

  it("a refund for a slice that has expired is moot: nothing is created, no later slice is credited", async () => {
    const windowMs = 300;
    const { budget, counted } = shortWindows(windowMs);
    const admission = await budget.tryAdmit(MODEL, 8_000);
    if (!admission.admitted) throw new Error(`not admitted: ${admission.detail}`);
    // The library's key lives one window from its first count: gone two windows after its end at the latest.
    await sleepUntil(admission.windowEndsAt + 2 * windowMs + 50);
    expect(await counted(admission.windowEndsAt)).toBeNull();
    await budget.settle(admission, { inputTokens: 100 });
    expect(await counted(admission.windowEndsAt)).toBeNull();
    const status = (await budget.status()).models[MODEL];
    expect(status?.tpm).toMatchObject({ used: 0, remaining: 10_000 });
    expect(await counted(status?.windowEndsAt ?? 0)).toBeNull();
  }, 15_000);
});

describe("429 cooldown", () => {
  it('a 429 with retryDelay "2s" holds every caller of the model for about 2 s', async () => {
    const [failing, ...others] = workers(6, { rpm: 1_000, tpm: 1_000_000 }, LONG_WINDOW);
    if (!failing) throw new Error("no budget");

    const before = Date.now();
    const error: unknown = await withGeminiBudget(failing, call(10), async () => {
      throw quotaExhausted("2s");
    }).catch((e: unknown) => e);
    const after = Date.now();
    expect(error).toBeInstanceOf(GeminiRateLimitedError);
    expect(error).toMatchObject({ retryable: true, status: 429, retryDelay: "2s", cooldownMs: 2_000, quota: "tpm", model: MODEL, pausedUntil: null });

    const status = (await failing.status()).models[MODEL];
    expect(status?.cooldownRemainingMs).toBeGreaterThan(1_000);
    expect(status?.cooldownRemainingMs).toBeLessThanOrEqual(2_000);
    expect(status?.today.rateLimited).toBe(1);
    expect(await others[0]?.tryAdmit(MODEL, 10)).toMatchObject({ admitted: false, blockedBy: "cooldown" });

    // A caller that will not wait long enough gives up naming the cooldown…
    await expect(withGeminiBudget(others[0] ?? failing, call(10, { maxWaitMs: 300 }), async () => answer(10))).rejects.toThrow(
      /^Gemini 429 cooldown of gemini-test still exhausted/,
    );
    // …and every other caller gets through only once the 2 s are over.
    const calledAt = await Promise.all(
      others.map((budget) =>
        withGeminiBudget(budget, call(10, { maxWaitMs: 10_000 }), async () => {
          const at = Date.now();
          return { at, ...answer(10) };
        }),
      ),
    );
    for (const { at } of calledAt) {
      expect(at).toBeGreaterThanOrEqual(before + 2_000);
      expect(at).toBeLessThan(after + 2_000 + 1_000);
    }
    expect(await failing.cooldownRemainingMs(MODEL)).toBe(0);
  });

  it("without a retryDelay, backs off, doubling up to the cap; a later, shorter delay never cuts a cooldown short", async () => {
    const budget = one({ rpm: 10, tpm: 10 }, { backoffMs: 1_000, maxBackoffMs: 3_000 });
    expect(await budget.recordRateLimited(MODEL, "unknown")).toEqual({ cooldownMs: 1_000, pausedUntil: null });
    expect((await budget.recordRateLimited(MODEL, "unknown")).cooldownMs).toBe(2_000);
    expect((await budget.recordRateLimited(MODEL, "rpm")).cooldownMs).toBe(3_000);
    expect((await budget.recordRateLimited(MODEL, "rpm")).cooldownMs).toBe(3_000);

    const { cooldownMs: left } = await budget.recordRateLimited(MODEL, "rpm", "0.5s");
    expect(left).toBeGreaterThan(2_000);
    expect(left).toBeLessThanOrEqual(3_000);
  });

  it("a 429 without RetryInfo still sets the cooldown; other errors pass through untouched", async () => {
    const budget = one({ rpm: 10, tpm: 1_000 }, { backoffMs: 1_500 });
    const error: unknown = await withGeminiBudget(budget, call(1), async () => {
      throw quotaExhausted();
    }).catch((e: unknown) => e);
    expect(error).toMatchObject({ name: "GeminiRateLimitedError", cooldownMs: 1_500, retryDelay: undefined });

    const other = one({ rpm: 10, tpm: 1_000 });
    const serverError = new FakeApiError(500, { error: { code: 500, message: "internal" } });
    await expect(withGeminiBudget(other, call(1), async () => Promise.reject(serverError))).rejects.toBe(serverError);
    expect(await other.cooldownRemainingMs(MODEL)).toBe(0);
  });
});

describe("retryDelay", () => {
  it.each([
    ["53s", 53_000],
    ["1.5s", 1_500],
    ["0.000500s", 1],
    ["0s", 0],
    ["53", null],
    ["1m", null],
    ["", null],
  ])("parseRetryDelay(%j) → %j ms", (text, ms) => {
    expect(parseRetryDelay(text)).toBe(ms);
  });

  it("is found in the error body that @google/genai puts in the message, or in text around it", () => {
    expect(retryDelayOf(quotaExhausted("53s"))).toBe("53s");
    expect(retryDelayOf(quotaExhausted())).toBeUndefined();
    const wrapped = new Error(`got status: 429 Too Many Requests. ${quotaExhausted("7s").message}`);
    expect(retryDelayOf(wrapped)).toBe("7s");
  });
});
