import { GoogleGenAI } from "@google/genai";
import { afterEach, describe, expect, it } from "vitest";
import { parseGeminiConfig } from "../../supabase/functions/_shared/gemini-config.ts";
import {
  estimateInputTokens,
  GeminiDailyBudgetExhaustedError,
  GeminiRateLimitedError,
  withGeminiBudget,
} from "../../supabase/functions/_shared/gemini-call.ts";
import { GeminiRateBudget } from "../../supabase/functions/_shared/gemini-rate-budget.ts";
import { startGeminiTestServer, type GeminiModelQuota, type GeminiTestServer } from "../helpers/gemini-test-server.ts";
import { nextPacificMidnight, noonPacificToday } from "../helpers/pacific-days.ts";
import { randomKeyPrefix, upstashClient } from "../helpers/upstash-client.ts";

/**
 * A backlog drained through the production path (`withGeminiBudget` around
 * `@google/genai` with `httpOptions.baseUrl`) against the Gemini test
 * server, which enforces per-model quotas over a sliding window as Google
 * might. Windows are two seconds instead of a minute so the run takes seconds.
 *
 * The budget's guarantee (a rolling window never holds more than 5/4 of the
 * configured limit) assumes a call reaches Google within one slice of its
 * admission: true for 15 s slices in production, not for 0.5 s slices on a
 * test machine whose event loops stall for hundreds of ms. So this budget is
 * configured at 60 % of the server's quota (5/4 × 60 % = 75 %), which leaves
 * a slice of stall to spare, where production's default is 80 %.
 */

const FAST = "gemini-3.5-flash-lite";
const STRONG = "gemini-3.8-flash";
const WINDOW_MS = 2_000;

/** The project's quota as the server enforces it. */
const QUOTA: Record<string, Required<GeminiModelQuota>> = {
  // Input-token bound: three 400-token prompts fit one slice of the budget.
  [FAST]: { rpm: 48, tpm: 10_000, rpd: 60 },
  // Request bound: one boost per slice.
  [STRONG]: { rpm: 12, tpm: 40_000, rpd: 1_000 },
};

/** Our configuration: 60 % of each quota (see above). */
const GEMINI_LIMITS = JSON.stringify(
  Object.fromEntries(Object.entries(QUOTA).map(([model, quota]) => [model, { rpm: Math.floor(quota.rpm * 0.6), tpm: Math.floor(quota.tpm * 0.6), rpd: Math.floor(quota.rpd * 0.6) }])),
);

/** The day is fixed at noon Pacific of the day the suite runs: a run never straddles midnight Pacific, and Redis' real clock is on the same day. */
const NOON_PACIFIC = noonPacificToday();

const OUTPUT_TOKENS = 5_000;

let server: GeminiTestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

function client(url: string): GoogleGenAI {
  return new GoogleGenAI({ apiKey: "test-key", httpOptions: { baseUrl: url } });
}

describe("a backlog drained against per-model quotas", () => {
  it("sees no 429 caused by our own sending; calls past our day's budget are never sent", async () => {
    server = await startGeminiTestServer({ windowMs: WINDOW_MS, quotas: QUOTA, latencyMs: 20, respond: () => ({ text: "OK", candidatesTokenCount: OUTPUT_TOKENS }) });
    const config = parseGeminiConfig({ GEMINI_LIMITS, GEMINI_FAST_MODEL: FAST, GEMINI_BOOST_MODEL: STRONG });
    const keyPrefix = randomKeyPrefix("gemini-drain");
    const ai = client(server.url);

    // 70 jobs, more than the project's 60 fast requests a day: each extracts with the fast model, every fourth also boosts with the strong one.
    const jobs = Array.from({ length: 70 }, (_, i) => i);
    const outcome = { extracted: 0, boosted: 0, pausedForTheDay: 0 };
    const workers = Array.from({ length: 8 }, () => new GeminiRateBudget(upstashClient(), config, { keyPrefix, windowMs: WINDOW_MS, slicesPerWindow: 4, now: () => NOON_PACIFIC }));
    await Promise.all(
      workers.map(async (budget) => {
        for (let job = jobs.shift(); job !== undefined; job = jobs.shift()) {
          const page = `page ${job} `.padEnd(1_600, "x");
          try {
            await withGeminiBudget(budget, { model: config.models.fast, estimatedTokens: estimateInputTokens({ textChars: page.length }) }, () =>
              ai.models.generateContent({ model: config.models.fast, contents: page }),
            );
            outcome.extracted += 1;
          } catch (error) {
            if (!(error instanceof GeminiDailyBudgetExhaustedError)) throw error;
            outcome.pausedForTheDay += 1;
            continue;
          }
          if (job % 4 !== 0) continue;
          const prompt = `boost ${job} `.padEnd(8_000, "y");
          // countTokens where it is cheap: one more round trip, no generate quota.
          const { totalTokens } = await ai.models.countTokens({ model: config.models.boost, contents: prompt });
          await withGeminiBudget(budget, { model: config.models.boost, estimatedTokens: totalTokens ?? estimateInputTokens({ textChars: prompt.length }) }, () =>
            ai.models.generateContent({ model: config.models.boost, contents: prompt }),
          );
          outcome.boosted += 1;
        }
      }),
    );

    const generate = server.requests.filter((request) => request.kind === "generateContent");
    expect(server.rateLimitedCount()).toBe(0);
    // Our day's budget for the fast model is 36 of the project's 60: the other 34 jobs were paused, not sent.
    expect(outcome.extracted).toBe(36);
    expect(outcome.pausedForTheDay).toBe(34);
    expect(outcome.boosted).toBeGreaterThan(0);
    expect(generate.filter((request) => request.model === STRONG)).toHaveLength(outcome.boosted);
    const fastCalls = generate.filter((request) => request.model === FAST);
    expect(fastCalls).toHaveLength(36);

    // What we counted is what the server counted: input tokens in the budget, output tokens in the statistics only.
    const status = await workers[0]?.status();
    for (const model of [FAST, STRONG]) {
      const served = generate.filter((request) => request.model === model);
      expect(status?.models[model]?.today).toEqual({
        requests: served.length,
        inputTokens: served.reduce((sum, request) => sum + request.promptTokenCount, 0),
        outputTokens: served.length * OUTPUT_TOKENS,
        rateLimited: 0,
      });
    }
    expect(status?.models[FAST]).toMatchObject({ pausedUntil: nextPacificMidnight(NOON_PACIFIC), rpd: { used: 36, limit: 36, fraction: 1 } });

    // The budget was really the bound: at its busiest, one rolling window of the server held at least 40 % of the fast model's input-token quota (the budget allows 45 % to 75 %).
    const busiest = (model: string, measure: (request: (typeof generate)[number]) => number) =>
      Math.max(
        ...generate
          .filter((request) => request.model === model)
          .map((first) => generate.filter((r) => r.model === model && r.receivedAt >= first.receivedAt && r.receivedAt < first.receivedAt + WINDOW_MS).reduce((sum, r) => sum + measure(r), 0)),
      );
    expect(busiest(FAST, (request) => request.promptTokenCount)).toBeGreaterThan(0.4 * (QUOTA[FAST]?.tpm ?? 0));
  }, 30_000);

  it("the same server answers unmetered bursts with 429s naming the model and quota, which cool that model only", async () => {
    server = await startGeminiTestServer({ windowMs: 60_000, quotas: QUOTA });
    const ai = client(server.url);
    const burst = await Promise.allSettled(Array.from({ length: 20 }, () => ai.models.generateContent({ model: STRONG, contents: "hello" })));
    expect(burst.filter((result) => result.status === "rejected")).toHaveLength(20 - (QUOTA[STRONG]?.rpm ?? 0));

    const config = parseGeminiConfig({ GEMINI_LIMITS, GEMINI_FAST_MODEL: FAST, GEMINI_BOOST_MODEL: STRONG });
    const budget = new GeminiRateBudget(upstashClient(), config, { keyPrefix: randomKeyPrefix("gemini-burst"), windowMs: WINDOW_MS, slicesPerWindow: 4 });
    const error: unknown = await withGeminiBudget(budget, { model: STRONG, estimatedTokens: 2 }, () => ai.models.generateContent({ model: STRONG, contents: "hello" })).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(GeminiRateLimitedError);
    expect(error).toMatchObject({ model: STRONG, quota: "rpm", pausedUntil: null });
    const cooldownMs = (error as GeminiRateLimitedError).cooldownMs;
    expect(cooldownMs).toBeGreaterThan(1_000);
    expect(await budget.tryAdmit(STRONG, 1)).toMatchObject({ admitted: false, blockedBy: "cooldown" });
    expect(await budget.tryAdmit(FAST, 1)).toMatchObject({ admitted: true });
  });
});
