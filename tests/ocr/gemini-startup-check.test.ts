import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { parseCapacityConfig } from "../../supabase/functions/_shared/capacity-config.ts";
import { CapacityLedger } from "../../supabase/functions/_shared/capacity-ledger.ts";
import { planDispatch, perKind } from "../../supabase/functions/_shared/dispatch-plan.ts";
import { GeminiConfigFault } from "../../supabase/functions/_shared/gemini-config-fault.ts";
import { gatedModels, geminiGateInput } from "../../supabase/functions/_shared/gemini-gate.ts";
import { GeminiRateBudget } from "../../supabase/functions/_shared/gemini-rate-budget.ts";
import { redisKeyPrefixes } from "../../supabase/functions/_shared/redis-keys.ts";
import { collectStatus } from "../../scripts/status-report.ts";
import { RUNNER_EXIT_CODES } from "../../runners/lifecycle/run-runner.ts";
import { createLogger } from "../../runners/lifecycle/structured-log.ts";
import { checkGeminiAtStart } from "../../runners/ocr/gemini-startup-check.ts";
import { parseOcrSettings } from "../../runners/ocr/ocr-config.ts";
import { GeminiOcrProvider } from "../../runners/ocr/providers/gemini-provider.ts";
import { createFreshDatabase, type FreshDatabase } from "../helpers/fresh-database.ts";
import { startGeminiTestServer, type GeminiTestServer } from "../helpers/gemini-test-server.ts";
import { randomKeyPrefix, upstashClient } from "../helpers/upstash-client.ts";

/**
 * An OCR task's start: models.get on both models. A model Google does not
 * serve stops the pool: exit 4 before any claim, the capacity lease handed
 * back, the fault where dispatch (no OCR task planned) and `npm run status`
 * (a warning naming it) read it; a fixed deployment lifts it.
 */

const RETIRED = "gemini-2.5-flash";
const FAST = "gemini-3.5-flash-lite";
const STRONG = "gemini-3.8-flash";
const GEMINI_LIMITS = JSON.stringify({ [FAST]: { rpm: 100, tpm: 1_000_000, rpd: 1_000 }, [STRONG]: { rpm: 100, tpm: 1_000_000, rpd: 1_000 }, [RETIRED]: { rpm: 100, tpm: 1_000_000, rpd: 1_000 } });
const log = createLogger({ base: { test: "gemini-startup" }, level: "error" });

describe("the OCR task's Gemini check at start", () => {
  let server: GeminiTestServer;
  let db: FreshDatabase;
  let prefix: string;
  beforeAll(async () => {
    server = await startGeminiTestServer({ models: [FAST, STRONG] });
    db = await createFreshDatabase();
    prefix = `${randomKeyPrefix("gemini-startup")}:`;
  });
  afterAll(async () => {
    await server?.close();
    await db?.drop();
  });

  it("a retired model: exit 4 without a claim, lease returned, dispatch holds OCR, status names the fault; fixed, the hold lifts", async () => {
    const redis = upstashClient();
    const capacity = parseCapacityConfig({ GEMINI_LIMITS, GEMINI_FAST_MODEL: RETIRED, GEMINI_BOOST_MODEL: STRONG });
    const ledger = new CapacityLedger(redis, capacity, { keyPrefix: redisKeyPrefixes(prefix).ledger });
    const grant = await ledger.acquire("index-ocr", { environment: "dev", holder: "startup-test" });
    if (!grant.granted) throw new Error("lease expected");
    const fault = new GeminiConfigFault(redis, prefix, "dev");
    const settings = parseOcrSettings({ GEMINI_API_KEY: "key", GEMINI_BASE_URL: server.url, REDIS_KEY_PREFIX: prefix });
    const gemini = settings.gemini;
    if (gemini === undefined) throw new Error("gemini settings expected");
    const budget = new GeminiRateBudget(redis, capacity.gemini, { keyPrefix: redisKeyPrefixes(prefix).gemini });
    const provider = (models: { fast: string; boost: string }) => new GeminiOcrProvider(gemini, models, budget, { onConfigurationFault: (reason) => fault.record(reason) });

    const exits: [string, number][] = [];
    const recordExit = async (reason: string, exitCode: number) => {
      exits.push([reason, exitCode]);
    };
    const code = await checkGeminiAtStart({ provider: provider({ fast: RETIRED, boost: STRONG }), fault, ledger, ledgerLeaseId: grant.lease.id, log, recordExit });
    expect(code).toBe(RUNNER_EXIT_CODES.configuration);
    expect(exits).toEqual([[expect.stringMatching(/^gemini misconfigured, no job claimed: .*models\/gemini-2\.5-flash is not found/), 4]]);
    expect((await ledger.snapshot()).leases.map((lease) => lease.id)).not.toContain(grant.lease.id);
    expect(server.requests.filter((request) => request.kind === "generateContent")).toHaveLength(0);

    const recorded = await fault.read();
    expect(recorded?.reason).toContain(`models/${RETIRED} is not found`);
    expect(recorded?.remainingMs).toBeGreaterThan(60_000);

    const plan = planDispatch({
      environment: "dev",
      weight: 1,
      backlog: { registre: { waiting: 0, running: 0 }, "index-ocr": { waiting: 3, running: 0 }, "acte-ocr": { waiting: 2, running: 0 } },
      tasks: perKind(() => 0),
      tasksAllEnvironments: perKind(() => 0),
      profiles: capacity.profiles,
      capacity: capacity.capacity,
      allocated: { vcpu: 0, ramGb: 0 },
      allocatedHere: { vcpu: 0 },
      others: [],
      gemini: geminiGateInput(await budget.status(gatedModels(capacity.gemini)), capacity.gemini, { "index-ocr": 1_000, "acte-ocr": 1_000 }, recorded?.reason ?? null),
    });
    expect(plan.start).toEqual({ registre: 0, "index-ocr": 0, "acte-ocr": 0 });
    expect(plan.held.join("\n")).toContain(`gemini: configuration fault (`);

    const report = await collectStatus(
      { source: "variables", databases: [{ environment: "dev", url: db.url }], upstash: { url: inject("upstashUrl"), token: inject("upstashToken") }, redisKeyPrefix: prefix, budgetEnv: { GEMINI_LIMITS, GEMINI_FAST_MODEL: FAST, GEMINI_BOOST_MODEL: STRONG } },
      undefined,
    );
    expect(report.warnings.find((warning) => warning.startsWith("Gemini configuration fault in dev:"))).toMatch(/models\/gemini-2\.5-flash is not found.*no OCR task starts there/);

    // Fixed (the default models): the next task's check passes and lifts the hold at once.
    const again = await ledger.acquire("index-ocr", { environment: "dev", holder: "startup-test" });
    if (!again.granted) throw new Error("lease expected");
    expect(await checkGeminiAtStart({ provider: provider({ fast: FAST, boost: STRONG }), fault, ledger, ledgerLeaseId: again.lease.id, log })).toBe(RUNNER_EXIT_CODES.ok);
    expect(await fault.read()).toBeNull();
    expect((await ledger.snapshot()).leases.map((lease) => lease.id)).toContain(again.lease.id);
  });
});
