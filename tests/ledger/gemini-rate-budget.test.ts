import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { GeminiLimits } from "../../supabase/functions/_shared/capacity-config.ts";
import {
  GeminiBudgetTimeoutError,
  GeminiRateLimitedError,
  retryDelayOf,
  withGeminiBudget,
} from "../../supabase/functions/_shared/gemini-call.ts";
import {
  GeminiRateBudget,
  parseRetryDelay,
  recordRateLimitedScript,
  type Admission,
  type GeminiRateBudgetOptions,
} from "../../supabase/functions/_shared/gemini-rate-budget.ts";
import { randomKeyPrefix, upstashClient } from "../helpers/upstash-client.ts";

/** Several workers' views of one budget: each has its own client, all share the prefix. */
function workers(count: number, limits: GeminiLimits, options: GeminiRateBudgetOptions = {}): GeminiRateBudget[] {
  const keyPrefix = randomKeyPrefix("gemini");
  return Array.from({ length: count }, () => new GeminiRateBudget(upstashClient(), limits, { keyPrefix, ...options }));
}

function one(limits: GeminiLimits, options: GeminiRateBudgetOptions = {}): GeminiRateBudget {
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

const answer = (totalTokenCount: number) => ({ text: "…", usageMetadata: { promptTokenCount: totalTokenCount - 1, totalTokenCount } });

/** A day-long window, so a test that must stay inside one window cannot straddle two. */
const LONG_WINDOW = { windowMs: 86_400_000 };

describe("recordRateLimitedScript", () => {
  it("has the pinned SHA1, and Redis computes the same", async () => {
    const sha = "9fe35b670b2c269941bd0e8eb8b7ac17678eb518";
    expect(createHash("sha1").update(recordRateLimitedScript).digest("hex")).toBe(sha);
    expect(await upstashClient().scriptLoad(recordRateLimitedScript)).toBe(sha);
  });
});

describe("tokens per window", () => {
  it("under 20 concurrent callers asking for more than the budget, no window admits more tokens than the limit", async () => {
    const limits = { rpmLimit: 10_000, tpmLimit: 1_000 };
    const windowMs = 2_000;
    const admitted: Array<{ windowEndsAt: number; tokens: number }> = [];
    let refusals = 0;

    // Each caller is its own worker; the subclass only notes what the budget decided.
    const keyPrefix = randomKeyPrefix("tpm-race");
    class NotingBudget extends GeminiRateBudget {
      override async tryAdmit(estimatedTokens: number): Promise<Admission> {
        const admission = await super.tryAdmit(estimatedTokens);
        if (admission.admitted) admitted.push({ windowEndsAt: admission.windowEndsAt, tokens: estimatedTokens });
        else refusals += 1;
        return admission;
      }
    }
    const callers = Array.from({ length: 20 }, () => new NotingBudget(upstashClient(), limits, { keyPrefix, windowMs }));

    const until = Date.now() + 5_000;
    await Promise.all(
      callers.map(async (budget, i) => {
        while (Date.now() < until) {
          const tokens = 50 + ((i * 37) % 200); // 50 to 249 tokens: sizes that do not divide the limit evenly
          // Admission is not first-come-first-served: under this much demand one caller may
          // lose several windows in a row, so the wait allowed is longer than the run.
          await withGeminiBudget(budget, { estimatedTokens: tokens, maxWaitMs: 20_000 }, async () => answer(tokens));
        }
      }),
    );

    const perWindow = new Map<number, number>();
    for (const { windowEndsAt, tokens } of admitted) perWindow.set(windowEndsAt, (perWindow.get(windowEndsAt) ?? 0) + tokens);
    expect(perWindow.size).toBeGreaterThanOrEqual(2);
    const overLimit = [...perWindow].filter(([, tokens]) => tokens > limits.tpmLimit);
    expect(overLimit).toEqual([]);
    // The demand really exceeded the budget, and refused attempts did not waste it:
    // the fullest window came within one request (≤ 249 tokens) of the limit.
    expect(refusals).toBeGreaterThan(20);
    expect(Math.max(...perWindow.values())).toBeGreaterThan(limits.tpmLimit - 250);
  });

  it("charges the tokens a call used beyond its estimate, and never less than the estimate", async () => {
    const budget = one({ rpmLimit: 100, tpmLimit: 10_000 }, LONG_WINDOW);
    await withGeminiBudget(budget, { estimatedTokens: 1_000 }, async () => answer(1_500));
    await withGeminiBudget(budget, { estimatedTokens: 1_000 }, async () => answer(400));
    await withGeminiBudget(budget, { estimatedTokens: 100 }, async () => ({ name: "files/abc" })); // an upload: no usageMetadata

    const status = await budget.budget();
    expect(status.tpm).toEqual({ limit: 10_000, used: 2_600, remaining: 7_400 });
    expect(status.rpm).toEqual({ limit: 100, used: 3, remaining: 97 });
    expect(status.cooldownRemainingMs).toBe(0);
    expect(status.windowEndsAt).toBeGreaterThan(Date.now());
  });

  it("a request-budget refusal gives its tokens back, and the timeout names the budget", async () => {
    const budget = one({ rpmLimit: 2, tpmLimit: 10_000 }, LONG_WINDOW);
    await withGeminiBudget(budget, { estimatedTokens: 100 }, async () => answer(100));
    await withGeminiBudget(budget, { estimatedTokens: 100 }, async () => answer(100));

    let called = false;
    const attempt = withGeminiBudget(budget, { estimatedTokens: 100, maxWaitMs: 300 }, async () => {
      called = true;
      return answer(100);
    });
    await expect(attempt).rejects.toThrow(GeminiBudgetTimeoutError);
    await expect(attempt).rejects.toThrow(/^Gemini requests-per-minute budget still exhausted after waiting \d+ ms: requests budget: all 2 requests/);
    expect(called).toBe(false);
    expect((await budget.budget()).tpm.used).toBe(200);
  });

  it("a token-budget timeout names the tokens budget", async () => {
    const budget = one({ rpmLimit: 100, tpmLimit: 1_000 }, LONG_WINDOW);
    await withGeminiBudget(budget, { estimatedTokens: 900 }, async () => answer(900));
    const error: unknown = await withGeminiBudget(budget, { estimatedTokens: 200, maxWaitMs: 200 }, async () => answer(200)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GeminiBudgetTimeoutError);
    expect(error).toMatchObject({ blockedBy: "tpm", retryable: true });
    expect(String(error)).toContain("Gemini tokens-per-minute budget still exhausted");
    expect((await budget.budget()).tpm).toEqual({ limit: 1_000, used: 900, remaining: 100 });
  });

  it("refuses at once a call that could never fit the budget", async () => {
    const budget = one({ rpmLimit: 100, tpmLimit: 1_000 });
    await expect(withGeminiBudget(budget, { estimatedTokens: 1_001 }, async () => answer(1))).rejects.toThrow(
      "a Gemini call estimated at 1001 tokens can never fit the 1000-token budget",
    );
  });
});

describe("429 cooldown", () => {
  it('a 429 with retryDelay "2s" holds every caller for about 2 s', async () => {
    const [failing, ...others] = workers(6, { rpmLimit: 1_000, tpmLimit: 1_000_000 }, LONG_WINDOW);
    if (!failing) throw new Error("no budget");

    const before = Date.now();
    const error: unknown = await withGeminiBudget(failing, { estimatedTokens: 10 }, async () => {
      throw quotaExhausted("2s");
    }).catch((e: unknown) => e);
    const after = Date.now();
    expect(error).toBeInstanceOf(GeminiRateLimitedError);
    expect(error).toMatchObject({ retryable: true, status: 429, retryDelay: "2s", cooldownMs: 2_000 });

    const status = await failing.budget();
    expect(status.cooldownRemainingMs).toBeGreaterThan(1_000);
    expect(status.cooldownRemainingMs).toBeLessThanOrEqual(2_000);
    expect(await others[0]?.tryAdmit(10)).toMatchObject({ admitted: false, blockedBy: "cooldown" });

    // A caller that will not wait long enough gives up naming the cooldown…
    await expect(withGeminiBudget(others[0] ?? failing, { estimatedTokens: 10, maxWaitMs: 300 }, async () => answer(10))).rejects.toThrow(
      /^Gemini 429 cooldown still exhausted/,
    );
    // …and every other caller gets through only once the 2 s are over.
    const calledAt = await Promise.all(
      others.map((budget) =>
        withGeminiBudget(budget, { estimatedTokens: 10, maxWaitMs: 10_000 }, async () => {
          const at = Date.now();
          return { at, ...answer(10) };
        }),
      ),
    );
    for (const { at } of calledAt) {
      expect(at).toBeGreaterThanOrEqual(before + 2_000);
      expect(at).toBeLessThan(after + 2_000 + 1_000);
    }
    expect(await failing.cooldownRemainingMs()).toBe(0);
  });

  it("without a retryDelay, backs off, doubling up to the cap; a later, shorter delay never cuts a cooldown short", async () => {
    const budget = one({ rpmLimit: 10, tpmLimit: 10 }, { backoffMs: 1_000, maxBackoffMs: 3_000 });
    expect(await budget.recordRateLimited()).toBe(1_000);
    expect(await budget.recordRateLimited()).toBe(2_000);
    expect(await budget.recordRateLimited()).toBe(3_000);
    expect(await budget.recordRateLimited()).toBe(3_000);

    const left = await budget.recordRateLimited("0.5s");
    expect(left).toBeGreaterThan(2_000);
    expect(left).toBeLessThanOrEqual(3_000);
  });

  it("a 429 without RetryInfo still sets the cooldown; other errors pass through untouched", async () => {
    const budget = one({ rpmLimit: 10, tpmLimit: 1_000 }, { backoffMs: 1_500 });
    const error: unknown = await withGeminiBudget(budget, { estimatedTokens: 1 }, async () => {
      throw quotaExhausted();
    }).catch((e: unknown) => e);
    expect(error).toMatchObject({ name: "GeminiRateLimitedError", cooldownMs: 1_500, retryDelay: undefined });

    const other = one({ rpmLimit: 10, tpmLimit: 1_000 });
    const serverError = new FakeApiError(500, { error: { code: 500, message: "internal" } });
    await expect(withGeminiBudget(other, { estimatedTokens: 1 }, async () => Promise.reject(serverError))).rejects.toBe(serverError);
    expect(await other.cooldownRemainingMs()).toBe(0);
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
