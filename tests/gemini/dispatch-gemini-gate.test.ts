import { describe, expect, it } from "vitest";
import { parseCapacityConfig } from "../../supabase/functions/_shared/capacity-config.ts";
import { planDispatch, type DispatchPlanInput, type PerKind } from "../../supabase/functions/_shared/dispatch-plan.ts";
import { gatedModels, geminiGateInput, type GeminiGateInput } from "../../supabase/functions/_shared/gemini-gate.ts";
import { withGeminiBudget } from "../../supabase/functions/_shared/gemini-call.ts";
import { GeminiRateBudget } from "../../supabase/functions/_shared/gemini-rate-budget.ts";
import { randomKeyPrefix, upstashClient } from "../helpers/upstash-client.ts";
import { geminiHeadroom, TOKENS_PER_TASK } from "./gemini-headroom.ts";

const capacity = parseCapacityConfig({ SERVER_MAX_CPU: "16", SERVER_MAX_RAM: "32" });

function plan(waiting: Partial<PerKind<number>>, gemini: GeminiGateInput) {
  const input: DispatchPlanInput = {
    environment: "prod",
    weight: 3,
    backlog: {
      registre: { waiting: waiting.registre ?? 0, running: 0 },
      "index-ocr": { waiting: waiting["index-ocr"] ?? 0, running: 0 },
      "acte-ocr": { waiting: waiting["acte-ocr"] ?? 0, running: 0 },
    },
    tasks: { registre: 0, "index-ocr": 0, "acte-ocr": 0 },
    tasksAllEnvironments: { registre: 0, "index-ocr": 0, "acte-ocr": 0 },
    profiles: capacity.profiles,
    capacity: capacity.capacity,
    allocated: { vcpu: 0, ramGb: 0 },
    allocatedHere: { vcpu: 0 },
    others: [],
    gemini,
  };
  return planDispatch(input);
}

describe("the plan's Gemini gate, per model", () => {
  it("the boost model done for the day starts no OCR task of the kinds that call it; registre still starts", () => {
    const result = plan({ registre: 1, "index-ocr": 4, "acte-ocr": 4 }, geminiHeadroom({}, { requestsLeftToday: 0 }));
    expect(result.start).toEqual({ registre: 1, "index-ocr": 0, "acte-ocr": 0 });
    expect(result.held.join("\n")).toMatch(/gemini: gemini-3\.8-flash has no request left today; no index-ocr task starts before the reset at 2026-11-30T08:00:00\.000Z/);
  });

  it("a kind whose own model is exhausted is refused while a kind on another model starts", () => {
    const gemini: GeminiGateInput = {
      ...geminiHeadroom(),
      kindModels: { "index-ocr": ["gemini-3.5-flash-lite"], "acte-ocr": ["gemini-3.8-flash"] },
    };
    const cooled = plan({ "index-ocr": 2, "acte-ocr": 2 }, { ...gemini, models: { ...gemini.models, "gemini-3.8-flash": { cooldownMs: 9_000, tokensLeft: 6_400_000, requestsLeftToday: 40_000, dayResetsAt: 0 } } });
    expect(cooled.start["acte-ocr"]).toBe(0);
    expect(cooled.start["index-ocr"]).toBeGreaterThan(0);
    expect(cooled.held).toContain("gemini: gemini-3.8-flash cooling down after a 429 for 9 s more; no acte-ocr task starts");
  });

  it("a model's requests left today bound the tasks started, one per task at least", () => {
    const result = plan({ "acte-ocr": 8 }, geminiHeadroom({ requestsLeftToday: 2 }));
    expect(result.start["acte-ocr"]).toBe(2);
    expect(result.held.join("\n")).toMatch(/gemini-3\.5-flash-lite has too few requests left today for more acte-ocr tasks/);
  });

  it("reads a real budget: after the day's requests of the fast model are spent, no OCR task is planned", async () => {
    const config = parseCapacityConfig({
      GEMINI_LIMITS: '{"gemini-3.5-flash-lite":{"rpm":100,"tpm":100000,"rpd":2},"gemini-3.8-flash":{"rpm":100,"tpm":100000,"rpd":100}}',
    });
    const budget = new GeminiRateBudget(upstashClient(), config.gemini, { keyPrefix: randomKeyPrefix("gemini-gate") });
    const tokensPerTask = { "index-ocr": 1_000, "acte-ocr": 1_000 };

    const before = geminiGateInput(await budget.status(gatedModels(config.gemini)), config.gemini, tokensPerTask);
    expect(before.models["gemini-3.5-flash-lite"]).toMatchObject({ cooldownMs: 0, tokensLeft: 100_000, requestsLeftToday: 2 });
    expect(plan({ "index-ocr": 1 }, before).start["index-ocr"]).toBe(1);

    for (let i = 0; i < 2; i += 1) {
      await withGeminiBudget(budget, { model: "gemini-3.5-flash-lite", estimatedTokens: 10 }, async () => ({ usageMetadata: { promptTokenCount: 10 } }));
    }
    const after = geminiGateInput(await budget.status(gatedModels(config.gemini)), config.gemini, tokensPerTask);
    expect(after.models["gemini-3.5-flash-lite"]?.requestsLeftToday).toBe(0);
    const refused = plan({ "index-ocr": 1, "acte-ocr": 1 }, after);
    expect(refused.start).toEqual({ registre: 0, "index-ocr": 0, "acte-ocr": 0 });
    expect(refused.held.join("\n")).toMatch(/gemini-3\.5-flash-lite has no request left today/);
  });

  it("tokens per task are minute rates, compared with the slice's tokens left at the slice's rate", () => {
    // 300,000 tokens a minute left feed one acte task (243,000), not two.
    const result = plan({ "acte-ocr": 3 }, geminiHeadroom({ tokensLeft: 300_000 }));
    expect(result.start["acte-ocr"]).toBe(1);
    expect(result.held).toContain(`gemini: ${300_000 - TOKENS_PER_TASK["acte-ocr"]} input tokens left this minute on gemini-3.5-flash-lite, a acte-ocr task needs 243000`);
  });
});
