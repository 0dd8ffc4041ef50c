import { describe, expect, it } from "vitest";
import type { ModelLimits } from "../../supabase/functions/_shared/gemini-config.ts";
import { GeminiRateBudget } from "../../supabase/functions/_shared/gemini-rate-budget.ts";
import { randomKeyPrefix, upstashClient } from "../helpers/upstash-client.ts";

/**
 * minuteAdmission "rolling" (gemini-minute-counters.ts): a call is admitted
 * against the sum of the minute's last slices and the minute's whole limit,
 * so it fits wherever the minute has room, and tokens an estimate overstated
 * free room as long as the slice they were counted in is in the minute.
 */
const MODEL = "gemini-test";
const limits = (tpm: number, rpm = 1_000): Record<string, ModelLimits> => ({ [MODEL]: { rpm, tpm, rpd: 1_000_000 } });
const sleepUntil = (at: number) => new Promise((resolve) => setTimeout(resolve, Math.max(0, at - Date.now())));

function rollingBudgets(count: number, tpm: number, windowMs: number, slicesPerWindow: number): GeminiRateBudget[] {
  const keyPrefix = randomKeyPrefix("gemini-rolling");
  return Array.from({ length: count }, () => new GeminiRateBudget(upstashClient(), { limits: limits(tpm) }, { keyPrefix, windowMs, slicesPerWindow, minuteAdmission: "rolling" }));
}

describe("the rolling minute", () => {
  it("admits a call as large as the minute's limit, where slices admit only a slice's share", async () => {
    const [rolling] = rollingBudgets(1, 8_000, 60_000, 8);
    const slices = new GeminiRateBudget(upstashClient(), { limits: limits(8_000) }, { keyPrefix: randomKeyPrefix("gemini-slices"), slicesPerWindow: 8 });
    expect(rolling?.sliceLimitsOf(MODEL).tpm).toBe(8_000);
    expect(await rolling?.tryAdmit(MODEL, 6_000)).toMatchObject({ admitted: true });
    expect(await rolling?.tryAdmit(MODEL, 2_001)).toMatchObject({ admitted: false, blockedBy: "tpm" });
    expect((await rolling?.status())?.models[MODEL]?.tpm).toMatchObject({ limit: 8_000, used: 6_000, remaining: 2_000 });
    expect(await slices.tryAdmit(MODEL, 6_000)).toMatchObject({ admitted: false, blockedBy: "tpm" });
  });

  it("tokens given back to an earlier slice of the minute free room now", async () => {
    const windowMs = 2_000;
    const [budget] = rollingBudgets(1, 8_000, windowMs, 4);
    if (budget === undefined) throw new Error("no budget");
    const first = await budget.tryAdmit(MODEL, 8_000);
    if (!first.admitted) throw new Error(`not admitted: ${first.detail}`);
    // The answer comes in a later slice, still inside the minute.
    await sleepUntil(first.windowEndsAt + 100);
    expect(await budget.tryAdmit(MODEL, 1_000)).toMatchObject({ admitted: false, blockedBy: "tpm" });
    await budget.settle(first, { inputTokens: 2_000 });
    expect(await budget.tryAdmit(MODEL, 5_000)).toMatchObject({ admitted: true });
    expect((await budget.status()).models[MODEL]?.tpm.used).toBe(7_000);
  }, 10_000);

  it("under 12 racing callers, no minute plus one slice of admissions holds more than the limit, and the limit is used", async () => {
    const windowMs = 1_000;
    const sliceMs = 250;
    const limit = 5_000;
    const budgets = rollingBudgets(12, limit, windowMs, windowMs / sliceMs);
    const admitted: { at: number; tokens: number }[] = [];
    const until = Date.now() + 3_500;
    await Promise.all(
      budgets.map(async (budget, index) => {
        let size = 300 + index * 37;
        while (Date.now() < until) {
          const admission = await budget.tryAdmit(MODEL, size);
          if (admission.admitted) {
            admitted.push({ at: Date.now(), tokens: size });
            size = 300 + ((size * 7) % 400);
          } else await new Promise((resolve) => setTimeout(resolve, 20));
        }
      }),
    );
    admitted.sort((a, b) => a.at - b.at);
    let busiest = 0;
    for (const { at } of admitted) {
      // Admissions in any span of one minute: the arrival margin of one slice is the limit's to keep.
      const inSpan = admitted.filter((entry) => entry.at >= at && entry.at < at + windowMs).reduce((sum, entry) => sum + entry.tokens, 0);
      busiest = Math.max(busiest, inSpan);
    }
    expect(busiest).toBeLessThanOrEqual(limit);
    // Over 3.5 s the minute's limit refills about three times; at least twice its worth went through.
    expect(admitted.reduce((sum, entry) => sum + entry.tokens, 0)).toBeGreaterThan(2 * limit);
  }, 15_000);
});
