import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { inject } from "vitest";
import { PROJECT_ROOT } from "../../infra/local/paths.ts";
import { parseCapacityConfig } from "../../supabase/functions/_shared/capacity-config.ts";
import { CapacityLedger } from "../../supabase/functions/_shared/capacity-ledger.ts";
import { GeminiRateBudget } from "../../supabase/functions/_shared/gemini-rate-budget.ts";
import { redisKeyPrefixes } from "../../supabase/functions/_shared/redis-keys.ts";
import { collectStatus } from "../../scripts/status-report.ts";
import type { StackTargets } from "../../scripts/stack-targets.ts";
import { createFreshDatabase, type FreshDatabase } from "../helpers/fresh-database.ts";
import { randomKeyPrefix, upstashClient } from "../helpers/upstash-client.ts";

const run = promisify(execFile);

// Small limits, so a few calls cross the 80 % warning: a slice (an eighth of a minute) admits 10 requests.
const GEMINI_LIMITS = JSON.stringify({
  "gemini-3.5-flash-lite": { rpm: 80, tpm: 80_000, rpd: 1_000 },
  "gemini-3.8-flash": { rpm: 80, tpm: 80_000, rpd: 1_000 },
});

let db: FreshDatabase;
let prefix: string;
let targets: StackTargets;

beforeAll(async () => {
  db = await createFreshDatabase();
  prefix = `${randomKeyPrefix("status")}:`;
  targets = {
    source: "variables",
    databases: [{ environment: "dev", url: db.url }],
    upstash: { url: inject("upstashUrl"), token: inject("upstashToken") },
    redisKeyPrefix: prefix,
    budgetEnv: { GEMINI_LIMITS },
  };
  // Known rows: 3 actes, 2 indexes and 2 plans; then one claimed (status 2) and one failed for good.
  await db.sql`
    insert into extraction_queue (document_source, document_number, circonscription_fonciere, cadastre, acte_type, priority)
    values ('acte', '1', 'Laval', null, 'Acte', 9), ('acte', '2', 'Laval', null, 'Acte', 8), ('acte', '3', 'Laval', null, 'Acte', 0),
           ('index', '4', 'Laval', 'Cadastre du Québec', null, 0), ('index', '5', 'Laval', 'Cadastre du Québec', null, 0),
           ('plan_cadastraux', '6', 'Laval', 'Cadastre du Québec', null, 0), ('plan_cadastraux', '7', 'Laval', 'Cadastre du Québec', null, 0)`;
  await db.sql`select * from queue.claim_jobs('registre', 'status-test', 1, 600)`;
  const [failing] = await db.sql<{ id: string; lease_token: string }[]>`select * from queue.claim_jobs('registre', 'status-test', 1, 600)`;
  await db.sql`select queue.fail_job(${failing?.id ?? null}, ${failing?.lease_token ?? null}, 'Le document demandé est inexistant', true, 'document_not_found')`;
  // One task dispatch started, whose runner reported.
  await db.sql`select queue.record_task_started('lease-1', 'registre', 'dev', 'arn:task/1', 3, 1, now() + interval '5 minutes')`;
  await db.sql`select queue.record_task_heartbeat('lease-1', 'registre', 'dev', 'w-1', 3, 1, now() + interval '5 minutes')`;
});
afterAll(async () => {
  await db.drop();
});

describe("npm run status", () => {
  it("reports the exact queue counts and the figures the ledger and the Gemini budget hold", async () => {
    const redis = upstashClient();
    const config = parseCapacityConfig({ GEMINI_LIMITS });
    const ledger = new CapacityLedger(redis, config, { keyPrefix: redisKeyPrefixes(prefix).ledger });
    for (const [kind, environment] of [["registre", "dev"], ["acte-ocr", "dev"], ["index-ocr", "prod"]] as const) {
      expect((await ledger.acquire(kind, { environment, holder: "status-test" })).granted).toBe(true);
    }
    const budget = new GeminiRateBudget(redis, config.gemini, { keyPrefix: redisKeyPrefixes(prefix).gemini });
    await budget.recordRateLimited("gemini-3.8-flash", "rpm", "30s");

    // Counts are per slice (an eighth of a minute): admit and read within one window, else try again in the next.
    let report;
    for (let attempt = 0; attempt < 3; attempt += 1) {
      const before = (await budget.status(["gemini-3.5-flash-lite"])).models["gemini-3.5-flash-lite"]?.windowEndsAt ?? 0;
      for (let call = 0; call < 9; call += 1) expect((await budget.tryAdmit("gemini-3.5-flash-lite", 100)).admitted).toBe(true);
      report = await collectStatus(targets, undefined);
      const after = (await budget.status(["gemini-3.5-flash-lite"])).models["gemini-3.5-flash-lite"]?.windowEndsAt ?? 0;
      if (before === after) break;
      report = undefined;
    }
    expect(report).toBeDefined();
    if (report === undefined) return;

    expect(report.unavailable).toEqual([]);
    // Claims take the highest priority first: actes 1 (running) and 2 (failed).
    expect(report.queue).toEqual([
      { environment: "dev", status_id: 1, status: "En attente", document_source: "acte", jobs: 1 },
      { environment: "dev", status_id: 1, status: "En attente", document_source: "index", jobs: 2 },
      { environment: "dev", status_id: 1, status: "En attente", document_source: "plan_cadastraux", jobs: 2 },
      { environment: "dev", status_id: 2, status: "En traitement", document_source: "acte", jobs: 1 },
      { environment: "dev", status_id: 4, status: "Erreur", document_source: "acte", jobs: 1 },
    ]);
    expect(report.runningTasks).toEqual([{ environment: "dev", kind: "registre", tasks: 1, booting: 0, vcpu: 3, ramGb: 1 }]);

    const snapshot = await ledger.snapshot();
    expect(report.capacity).toEqual({
      capacity: snapshot.capacity,
      allocated: snapshot.allocated,
      available: snapshot.available,
      byKind: snapshot.byKind,
      byEnvironment: snapshot.byEnvironment,
    });
    expect(report.capacity?.allocated).toEqual({ vcpu: 5.5, ramGb: 2.25 });
    expect(report.capacity?.byEnvironment.prod).toEqual({ leases: 1, vcpu: 1.5, ramGb: 0.75 });

    const flash = report.gemini?.models.find((model) => model.model === "gemini-3.5-flash-lite");
    expect(flash?.rpm).toEqual({ used: 9, limit: 10, percent: 90 });
    expect(flash?.tpm).toEqual({ used: 900, limit: 10_000, percent: 9 });
    expect(report.warnings).toContain("Gemini gemini-3.5-flash-lite: RPM at 90 % of its limit");
    expect(report.warnings.some((warning) => warning.startsWith("Gemini gemini-3.5-flash-lite: TPM"))).toBe(false);
    expect(report.cooldowns.geminiMs["gemini-3.8-flash"]).toBeGreaterThan(20_000);
    expect(report.cooldowns.geminiMs["gemini-3.5-flash-lite"]).toBe(0);
    expect(report.lastErrors).toEqual([expect.objectContaining({ environment: "dev", stage: "extraction", final: true, error: "Le document demandé est inexistant" })]);

    // The command itself: its last line is the report, `queue` an array of { environment, status_id, status, document_source, jobs }.
    const { stdout } = await run(join(PROJECT_ROOT, "node_modules", ".bin", "tsx"), [join(PROJECT_ROOT, "scripts", "status.ts"), "--json"], {
      env: { PATH: process.env["PATH"], DATABASE_URL: db.url, UPSTASH_REDIS_REST_URL: inject("upstashUrl"), UPSTASH_REDIS_REST_TOKEN: inject("upstashToken"), REDIS_KEY_PREFIX: prefix, GEMINI_LIMITS },
    });
    const printed = JSON.parse(stdout.trim().split("\n").at(-1) ?? "{}") as { queue: unknown; capacity: { allocated: unknown } };
    expect(printed.queue).toEqual(report.queue);
    expect(printed.capacity.allocated).toEqual({ vcpu: 5.5, ramGb: 2.25 });
  }, 60_000);

  it("says when an environment's daily registry spend cap pauses registre dispatch, and not before", async () => {
    await db.sql`
      insert into registry_purchases (environment, document_source, document_number_normalized, circonscription_fonciere, acte_type, amount_cents)
      values ('dev', 'acte', '1', 'Laval', 'Acte', 150), ('dev', 'acte', '2', 'Laval', 'Acte', 150)`;
    await db.sql`insert into registre_spend_policy (environment, daily_cap_cents) values ('dev', 301)`;
    const spendLine = (warnings: readonly string[]) => warnings.find((warning) => warning.includes("spend cap"));
    expect(spendLine((await collectStatus(targets, undefined)).warnings)).toBeUndefined();
    await db.sql`update registre_spend_policy set daily_cap_cents = 300 where environment = 'dev'`;
    try {
      expect(spendLine((await collectStatus(targets, undefined)).warnings)).toBe(
        "dev: daily registry spend cap reached (3,00 $ of 3,00 $ today): registre dispatch paused until tomorrow or a higher cap (registre_spend_policy)",
      );
    } finally {
      await db.sql`delete from registre_spend_policy`;
      await db.sql`delete from registry_purchases`;
    }
  });

  it("shows each environment's database, and only those --env names", async () => {
    const prod = await createFreshDatabase();
    try {
      await prod.sql`
        insert into extraction_queue (document_source, document_number, circonscription_fonciere, cadastre)
        values ('index', '8', 'Québec', 'Cadastre du Québec')`;
      const both: StackTargets = { ...targets, databases: [...targets.databases, { environment: "prod", url: prod.url }] };
      const report = await collectStatus(both, undefined);
      expect(report.environments).toEqual(["dev", "prod"]);
      expect(report.queue.filter((group) => group.environment === "prod")).toEqual([
        { environment: "prod", status_id: 1, status: "En attente", document_source: "index", jobs: 1 },
      ]);
      expect(report.queue.filter((group) => group.environment === "dev").reduce((sum, group) => sum + group.jobs, 0)).toBe(7);
      const onlyProd = await collectStatus(both, ["prod"]);
      expect(onlyProd.queue).toEqual([{ environment: "prod", status_id: 1, status: "En attente", document_source: "index", jobs: 1 }]);
    } finally {
      await prod.drop();
    }
  });

  it("says which part it could not read, and exits 3", async () => {
    const result = await run(join(PROJECT_ROOT, "node_modules", ".bin", "tsx"), [join(PROJECT_ROOT, "scripts", "status.ts"), "--json"], {
      env: { PATH: process.env["PATH"], DATABASE_URL: "postgres://postgres@127.0.0.1:1/none" },
    }).then(
      () => undefined,
      (error: { code: number; stdout: string }) => error,
    );
    expect(result?.code).toBe(3);
    const printed = JSON.parse(result?.stdout.trim().split("\n").at(-1) ?? "{}") as { unavailable: string[]; queue: unknown[] };
    expect(printed.queue).toEqual([]);
    expect(printed.unavailable).toEqual([expect.stringMatching(/^dev database: /), expect.stringMatching(/^Upstash: /)]);
  }, 30_000);
});
