/**
 * Each environment's share of the Gemini day (issue 19 item 9), on the real
 * budget scripts in Redis: dev's backlog cannot spend what is left of prod's
 * share while prod is asking, and prod's share is lent to dev once prod has
 * gone quiet.
 */
import { describe, expect, it } from "vitest";
import { GeminiDaySharesError, parseGeminiDayShares } from "../../supabase/functions/_shared/gemini-day-shares.ts";
import { GeminiRateBudget } from "../../supabase/functions/_shared/gemini-rate-budget.ts";
import { randomKeyPrefix, upstashClient } from "../helpers/upstash-client.ts";

const MODEL = "gemini-2.5-flash";
/** Noon Pacific on an ordinary day: every admission below falls in one day, whatever today is. */
const NOON_PACIFIC = Date.parse("2027-03-03T20:00:00Z");

function budgets(idleAfterMs: number) {
  const keyPrefix = randomKeyPrefix("gemini-shares");
  const limits = { [MODEL]: { rpm: 1_000, tpm: 1_000_000, rpd: 10 } };
  const shares = { prod: 0.6, staging: 0, dev: 0.4 };
  const make = (environment: "prod" | "dev") =>
    new GeminiRateBudget(upstashClient(), { limits }, { keyPrefix, slicesPerWindow: 4, windowMs: 86_400_000, now: () => NOON_PACIFIC, dayShares: { environment, shares, idleAfterMs } });
  return { prod: make("prod"), dev: make("dev") };
}

async function admitted(budget: GeminiRateBudget, tries: number): Promise<number> {
  let count = 0;
  for (let i = 0; i < tries; i += 1) if ((await budget.tryAdmit(MODEL, 10)).admitted) count += 1;
  return count;
}

describe("per-environment shares of the Gemini day", () => {
  it("keep what is left of prod's share for prod while it asks: dev's backlog stops at its own share", async () => {
    const { prod, dev } = budgets(60_000);
    expect(await admitted(prod, 1)).toBe(1);
    // 10 a day: prod keeps 6 (1 used), so dev may take 4.
    expect(await admitted(dev, 10)).toBe(4);
    const refusal = await dev.tryAdmit(MODEL, 10);
    expect(refusal).toMatchObject({ admitted: false, blockedBy: "rpd" });
    expect(refusal.admitted ? "" : refusal.detail).toMatch(/dev used its share .* the 5 left are kept for the other environments' shares/);
    // prod still gets the rest of the day.
    expect(await admitted(prod, 10)).toBe(5);
  });

  it("lend prod's unused share to dev once prod has not asked for the idle period", async () => {
    const { prod, dev } = budgets(300);
    expect(await admitted(prod, 1)).toBe(1);
    expect(await admitted(dev, 10)).toBe(4);
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(await admitted(dev, 10)).toBe(5);
  });

  it("are read from GEMINI_DAY_SHARES, naming what is wrong", () => {
    expect(parseGeminiDayShares({}, "dev")).toBeUndefined();
    expect(parseGeminiDayShares({ GEMINI_DAY_SHARES: "prod=0.6,dev=0.2" }, "dev")).toEqual({ environment: "dev", shares: { dev: 0.2, staging: 0, prod: 0.6 }, idleAfterMs: 600_000 });
    expect(() => parseGeminiDayShares({ GEMINI_DAY_SHARES: "prod=0.8,dev=0.4" }, "dev")).toThrow(new GeminiDaySharesError("GEMINI_DAY_SHARES the shares add up to 1.2; at most 1"));
    expect(() => parseGeminiDayShares({ GEMINI_DAY_SHARES: "qa=0.5" }, "dev")).toThrow(/GEMINI_DAY_SHARES "qa=0.5" must be <environment>=<fraction>/);
  });
});
