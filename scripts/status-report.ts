/**
 * Everything `npm run status` shows, gathered once: the queue of each
 * environment's database (the same views a user queries in Supabase
 * Studio), the running tasks, the capacity ledger and the Gemini budget on
 * Upstash, the cooldowns, stuck jobs and the last errors. A part that cannot
 * be read is reported in `unavailable` instead of failing the whole report.
 */
import { Redis } from "@upstash/redis";
import postgres from "postgres";
import { parseCapacityConfig } from "../supabase/functions/_shared/capacity-config.ts";
import { CapacityLedger, type CapacitySnapshot } from "../supabase/functions/_shared/capacity-ledger.ts";
import type { Environment } from "../supabase/functions/_shared/environments.ts";
import { errorMessage } from "../supabase/functions/_shared/error-message.ts";
import { GeminiRateBudget } from "../supabase/functions/_shared/gemini-rate-budget.ts";
import { GeminiConfigFault, type GeminiConfigFaultRecord } from "../supabase/functions/_shared/gemini-config-fault.ts";
import { redisKeyPrefixes } from "../supabase/functions/_shared/redis-keys.ts";
import { RegistryCooldown } from "../supabase/functions/_shared/registry-cooldown.ts";
import type { StackTargets } from "./stack-targets.ts";

/** Gemini use at or above this share of a limit is flagged. */
export const GEMINI_WARNING_FRACTION = 0.8;

export interface QueueGroup {
  readonly environment: Environment;
  readonly status_id: number;
  readonly status: string;
  readonly document_source: string;
  readonly jobs: number;
}

export interface RunningTaskGroup {
  readonly environment: string;
  readonly kind: string;
  readonly tasks: number;
  readonly booting: number;
  readonly vcpu: number;
  readonly ramGb: number;
}

export interface StuckJob {
  readonly environment: Environment;
  readonly id: string;
  readonly kind: string;
  readonly status: string;
  readonly document_source: string;
  readonly running_for: string;
  readonly why_stuck: string;
}

export interface RecentError {
  readonly environment: Environment;
  readonly id: string;
  readonly stage: string;
  readonly final: boolean;
  readonly document_source: string;
  readonly error: string;
  readonly error_at: string;
}

export interface GeminiModelUse {
  readonly model: string;
  /** Requests and input tokens in the current window against the window's limits. */
  readonly rpm: { readonly used: number; readonly limit: number; readonly percent: number };
  readonly tpm: { readonly used: number; readonly limit: number; readonly percent: number };
  /** Requests today (Pacific day) against the daily limit. */
  readonly rpd: { readonly used: number; readonly limit: number; readonly percent: number };
  readonly cooldownRemainingMs: number;
  readonly pausedUntil: string | null;
}

export interface StatusReport {
  readonly takenAt: string;
  readonly source: StackTargets["source"];
  readonly environments: readonly Environment[];
  readonly queue: readonly QueueGroup[];
  readonly runningTasks: readonly RunningTaskGroup[];
  /** The ledger's figures: what all environments hold together. */
  readonly capacity: Pick<CapacitySnapshot, "capacity" | "allocated" | "available" | "byKind" | "byEnvironment"> | null;
  readonly gemini: { readonly windowMs: number; readonly models: readonly GeminiModelUse[] } | null;
  readonly cooldowns: { readonly registryMs: number | null; readonly geminiMs: Readonly<Record<string, number>> };
  readonly stuckJobs: readonly StuckJob[];
  readonly lastErrors: readonly RecentError[];
  /** Things to look at now: Gemini at 80 %, cooldowns, stuck jobs. */
  readonly warnings: readonly string[];
  /** Parts that could not be read, and why. */
  readonly unavailable: readonly string[];
}

const LAST_ERRORS = 5;

const dollars = (cents: number) => `${(cents / 100).toFixed(2).replace(".", ",")} $`;
const STUCK_JOBS = 10;

export async function collectStatus(targets: StackTargets, environments: readonly Environment[] | undefined): Promise<StatusReport> {
  const databases = targets.databases.filter((db) => environments === undefined || environments.includes(db.environment));
  const unavailable: string[] = [];
  const queue: QueueGroup[] = [];
  const runningTasks: RunningTaskGroup[] = [];
  const stuckJobs: StuckJob[] = [];
  const lastErrors: RecentError[] = [];
  const spendWarnings: string[] = [];

  await Promise.all(
    databases.map(async ({ environment, url }) => {
      const sql = postgres(url, { max: 1, connect_timeout: 5, prepare: false, onnotice: () => {} });
      try {
        const groups = await sql<{ status_id: number; status: string; document_source: string; jobs: string }[]>`
          select status_id, status, document_source, jobs from public.extraction_queue_by_status`;
        for (const row of groups) queue.push({ environment, status_id: row.status_id, status: row.status, document_source: row.document_source, jobs: Number(row.jobs) });

        const tasks = await sql<{ environment: string; kind: string; tasks: string; booting: string; vcpu: string; ram_gb: string }[]>`
          select environment, kind, tasks, booting, vcpu, ram_gb from public.running_tasks_by_kind`;
        for (const row of tasks) {
          runningTasks.push({ environment: row.environment, kind: row.kind, tasks: Number(row.tasks), booting: Number(row.booting), vcpu: Number(row.vcpu), ramGb: Number(row.ram_gb) });
        }

        const stuck = await sql<{ id: string; kind: string; status: string; document_source: string; running_for: string; why_stuck: string }[]>`
          select id, kind, status, document_source, running_for::text, why_stuck
          from public.extraction_queue_stuck_jobs limit ${STUCK_JOBS}`;
        for (const row of stuck) stuckJobs.push({ environment, ...row });

        const errors = await sql<{ id: string; stage: string; final: boolean; document_source: string; error: string; error_at: Date }[]>`
          select id, stage, final, document_source, error, error_at
          from public.extraction_queue_recent_errors limit ${LAST_ERRORS}`;
        for (const row of errors) lastErrors.push({ environment, ...row, error_at: row.error_at.toISOString() });

        const [spend] = await sql<{ spent_cents: string; cap_cents: number | null; paused: boolean }[]>`
          select spent_cents::text, cap_cents, paused from queue.registre_spend_today(${environment})`;
        if (spend?.paused === true) {
          spendWarnings.push(
            `${environment}: daily registry spend cap reached (${dollars(Number(spend.spent_cents))} of ${dollars(spend.cap_cents ?? 0)} today): registre dispatch paused until tomorrow or a higher cap (registre_spend_policy)`,
          );
        }
      } catch (error) {
        unavailable.push(`${environment} database: ${errorMessage(error)}`);
      } finally {
        await sql.end({ timeout: 2 });
      }
    }),
  );

  const env = { ...process.env, ...targets.budgetEnv };
  let capacity: StatusReport["capacity"] = null;
  let gemini: StatusReport["gemini"] = null;
  let registryMs: number | null = null;
  const geminiMs: Record<string, number> = {};
  const geminiFaults: { environment: string; fault: GeminiConfigFaultRecord }[] = [];
  if (targets.upstash === undefined) {
    unavailable.push("Upstash: UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN are not set (capacity, Gemini budget and cooldowns)");
  } else {
    const redis = new Redis({ url: targets.upstash.url, token: targets.upstash.token, enableTelemetry: false, retry: { retries: 1, backoff: () => 200 } });
    const keys = redisKeyPrefixes(targets.redisKeyPrefix);
    try {
      const config = parseCapacityConfig(env);
      const [snapshot, budget, registry] = await Promise.all([
        new CapacityLedger(redis, config, { keyPrefix: keys.ledger }).snapshot(),
        new GeminiRateBudget(redis, config.gemini, { keyPrefix: keys.gemini }).status(),
        // Per environment (registry-cooldown.ts): the longest pause among the environments shown.
        Promise.all(targets.databases.map(({ environment }) => new RegistryCooldown(redis, targets.redisKeyPrefix, environment).remainingMs())).then((left) => Math.max(0, ...left)),
      ]);
      capacity = { capacity: snapshot.capacity, allocated: snapshot.allocated, available: snapshot.available, byKind: snapshot.byKind, byEnvironment: snapshot.byEnvironment };
      registryMs = registry;
      for (const { environment } of databases) {
        const fault = await new GeminiConfigFault(redis, targets.redisKeyPrefix, environment).read();
        if (fault !== null) geminiFaults.push({ environment, fault });
      }
      gemini = {
        windowMs: budget.windowMs,
        models: Object.values(budget.models).map((model) => {
          geminiMs[model.model] = model.cooldownRemainingMs;
          return {
            model: model.model,
            rpm: { used: model.rpm.used, limit: model.rpm.limit, percent: Math.round(model.rpm.fraction * 100) },
            tpm: { used: model.tpm.used, limit: model.tpm.limit, percent: Math.round(model.tpm.fraction * 100) },
            rpd: { used: model.rpd.used, limit: model.rpd.limit, percent: Math.round(model.rpd.fraction * 100) },
            cooldownRemainingMs: model.cooldownRemainingMs,
            pausedUntil: model.pausedUntil === null ? null : new Date(model.pausedUntil).toISOString(),
          };
        }),
      };
    } catch (error) {
      unavailable.push(`Upstash: ${errorMessage(error)}`);
    }
  }

  queue.sort((a, b) => a.environment.localeCompare(b.environment) || a.status_id - b.status_id || a.document_source.localeCompare(b.document_source));
  runningTasks.sort((a, b) => a.environment.localeCompare(b.environment) || a.kind.localeCompare(b.kind));
  lastErrors.sort((a, b) => b.error_at.localeCompare(a.error_at));

  const warnings: string[] = [];
  for (const model of gemini?.models ?? []) {
    for (const [name, use] of [["RPM", model.rpm], ["TPM", model.tpm], ["requests per day", model.rpd]] as const) {
      if (use.used >= use.limit * GEMINI_WARNING_FRACTION) warnings.push(`Gemini ${model.model}: ${name} at ${use.percent} % of its limit`);
    }
    if (model.cooldownRemainingMs > 0) warnings.push(`Gemini ${model.model}: cooling down after a 429 for ${Math.ceil(model.cooldownRemainingMs / 1000)} s more`);
    if (model.pausedUntil !== null) warnings.push(`Gemini ${model.model}: paused until ${model.pausedUntil} (daily quota)`);
  }
  for (const { environment, fault } of geminiFaults) {
    warnings.push(`Gemini configuration fault in ${environment}: ${fault.reason}; no OCR task starts there (a fresh task checks again in ${Math.ceil(fault.remainingMs / 1000)} s)`);
  }
  if (registryMs !== null && registryMs > 0) warnings.push(`registry unreachable: registre dispatch paused for ${Math.ceil(registryMs / 1000)} s more`);
  warnings.push(...spendWarnings.sort());
  if (stuckJobs.length > 0) warnings.push(`${stuckJobs.length} stuck job(s): see extraction_queue_stuck_jobs`);

  return {
    takenAt: new Date().toISOString(),
    source: targets.source,
    environments: databases.map((db) => db.environment),
    queue,
    runningTasks,
    capacity,
    gemini,
    cooldowns: { registryMs, geminiMs },
    stuckJobs,
    lastErrors: lastErrors.slice(0, LAST_ERRORS),
    warnings,
    unavailable,
  };
}
