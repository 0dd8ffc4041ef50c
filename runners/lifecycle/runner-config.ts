/**
 * Everything a runner reads from its environment, parsed once at start. A
 * missing or malformed variable stops the runner before it claims anything,
 * with a message naming the variable (never its value: some are secrets).
 *
 * JOB_KIND, ENVIRONMENT and LEDGER_LEASE_ID are set per task by dispatch
 * (names from RUNNER_TASK_ENV); the rest comes from the task definition.
 */
import { hostname } from "node:os";
import { z } from "zod";
import { parseCapacityConfig, type CapacityConfig } from "../../supabase/functions/_shared/capacity-config.ts";
import { setValues } from "../../supabase/functions/_shared/env-values.ts";
import { redisKeyPrefixes } from "../../supabase/functions/_shared/redis-keys.ts";
import { RUNNER_TASK_ENV } from "../../supabase/functions/_shared/ecs-client.ts";
import { ENVIRONMENTS, type Environment } from "../../supabase/functions/_shared/environments.ts";
import { DEFAULT_JOBS_PER_TASK, JOB_KINDS, type JobKind } from "../../supabase/functions/_shared/job-kinds.ts";
import { LOG_LEVELS, type LogLevel } from "./structured-log.ts";
import { DatabaseTlsConfigError, parseDatabaseTls, type DatabaseTls } from "./database-tls.ts";

/**
 * Default job lease per kind, in seconds. The lease is renewed every third of
 * itself while the handler runs, so it must outlast the longest legitimate
 * gap between two heartbeats, not the run: a gap longer than the lease lets
 * the reaper hand a live job to a second runner (the earlier system's reaper,
 * keyed on run time, ran jobs twice). Each default lets two heartbeats in a
 * row fail (a pooler restart, a database failover) before the lease lapses.
 * - registre 300: the work is async browser I/O, the event loop stays free,
 *   so only database trouble delays a heartbeat.
 * - index-ocr 600: rasterizing 300 DPI pages runs on the event loop and can
 *   hold it for tens of seconds on a busy task.
 * - acte-ocr 300: uploads and Gemini calls, async like registre.
 */
export const DEFAULT_JOB_LEASE_SECONDS: Readonly<Record<JobKind, number>> = {
  registre: 300,
  "index-ocr": 600,
  "acte-ocr": 300,
};

/**
 * Default longest run of one job per kind, in seconds, after which the
 * handler is aborted and the job released as infrastructure (no attempt
 * spent; max_infrastructure_releases ends a job that always hangs): a hung
 * handler must not hold its job and the task's capacity while the heartbeat
 * renews. Each is several times the longest legitimate run:
 * - registre 900: a few pages and the registry's own waits (it has been
 *   seen making a user wait minutes for a document, docs/domain.md);
 * - index-ocr and acte-ocr 1800: tens of pages, each rasterized and sent
 *   to Gemini through the shared budget, which can make a call wait.
 */
export const DEFAULT_JOB_MAX_RUN_SECONDS: Readonly<Record<JobKind, number>> = {
  registre: 900,
  "index-ocr": 1800,
  "acte-ocr": 1800,
};

/**
 * Default number of jobs one task runs at once, per kind (RUNNER_CONCURRENCY).
 * - registre 3: the benchmark (README, `npm run bench -- registre`, realistic
 *   delays) fetched 4.0 / 6.7 / 8.1 / 9.3 docs/min with 1 / 2 / 3 / 4 browser
 *   contexts for a peak Chromium PSS of 420 / 508 / 602 / 675 MB: 3 contexts
 *   give twice one context's throughput and leave ~300 MB of the 1 GB profile
 *   for the Node process and pages heavier than the replica's, and each
 *   context holds a (paid) registry account of its own; the 4th context adds
 *   only 15 %.
 * - index-ocr, acte-ocr 1: an OCR task already works its pages in parallel
 *   (OCR_PAGE_CONCURRENCY) under the shared Gemini budget; more jobs at once
 *   would only split the same vCPU and the same tokens.
 */
export const DEFAULT_RUNNER_CONCURRENCY: Readonly<Record<JobKind, number>> = DEFAULT_JOBS_PER_TASK;

/** Each slot holds a database connection and, for registre, a browser context and an account. */
export const MAX_RUNNER_CONCURRENCY = 8;

/**
 * Fargate Spot sends SIGTERM two minutes before SIGKILL (and ECS's largest
 * stopTimeout is 120 s); the grace must leave time to abort the handler,
 * release the job and release the ledger lease.
 */
export const MAX_SHUTDOWN_GRACE_SECONDS = 110;

const seconds = z
  .string()
  .regex(/^\d+(\.\d+)?$/, { error: "must be a number of seconds such as 60 or 0.5" })
  .transform(Number)
  .pipe(z.number().positive({ error: "must be greater than 0" }));
const wholeSeconds = z
  .string()
  .regex(/^\d+$/, { error: "must be a whole number of seconds such as 300" })
  .transform(Number)
  // 3600: the most queue.claim_jobs and heartbeat_job grant (migration 20261205030300).
  .pipe(z.number().min(1, { error: "must be at least 1" }).max(3_600, { error: "must be at most 3600 (an hour: the queue refuses longer leases)" }));
const count = z
  .string()
  .regex(/^\d+$/, { error: "must be a whole number such as 3" })
  .transform(Number)
  .pipe(z.number().min(1, { error: "must be at least 1" }));

const runnerEnvSchema = z.object({
  /** Which jobs to claim. Set by dispatch. */
  [RUNNER_TASK_ENV.jobKind]: z.enum(JOB_KINDS),
  /** Which Supabase project's queue this runner serves; on every log line. Set by dispatch. */
  [RUNNER_TASK_ENV.environment]: z.enum(ENVIRONMENTS),
  /** The capacity-ledger lease dispatch acquired for this task; renewed while running, released on exit. Set by dispatch. */
  [RUNNER_TASK_ENV.ledgerLeaseId]: z.string().min(1).max(64),
  /** Postgres URL of the least-privileged `runner` role, through the transaction pooler. */
  DATABASE_URL: z.string().regex(/^postgres(ql)?:\/\/\S+$/, { error: "must be a postgres:// URL" }),
  UPSTASH_REDIS_REST_URL: z.url({ error: "must be an https:// URL" }),
  UPSTASH_REDIS_REST_TOKEN: z.string().min(1),
  /**
   * Prefix of every Redis key, as dispatch reads it (dispatch-config.ts): the
   * ledger lives under `<prefix>ledger`, so both sides must agree. @default ""
   */
  REDIS_KEY_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9:_-]*$/, { error: "may hold only letters, digits, ':', '_' and '-'" })
    .default(""),
  /** Exit (releasing the ledger lease) after this long with nothing to claim. @default 60 */
  RUNNER_IDLE_EXIT_SECONDS: seconds.default(60),
  /** Wait between two claims that found nothing. @default 2 */
  RUNNER_POLL_SECONDS: seconds.default(2),
  /**
   * With nothing to claim for this long while dispatch recorded another kind
   * (or environment) waiting for room, exit at once and hand the capacity
   * back instead of holding it for RUNNER_IDLE_EXIT_SECONDS. @default 2
   */
  RUNNER_HAND_BACK_SECONDS: seconds.default(2),
  /** Job lease length (see DEFAULT_JOB_LEASE_SECONDS). @default per kind: registre 300, index-ocr 600, acte-ocr 300 */
  JOB_LEASE_SECONDS: wholeSeconds.optional(),
  /** Longest run of one job before it is aborted and released as infrastructure (see DEFAULT_JOB_MAX_RUN_SECONDS). @default per kind: registre 900, index-ocr 1800, acte-ocr 1800 */
  JOB_MAX_RUN_SECONDS: seconds.optional(),
  /**
   * After SIGTERM, how long the current job may run on before it is aborted
   * and released. @default 100 (inside Fargate Spot's 120 s)
   */
  SHUTDOWN_GRACE_SECONDS: seconds.pipe(z.number().max(MAX_SHUTDOWN_GRACE_SECONDS, { error: `must be at most ${MAX_SHUTDOWN_GRACE_SECONDS} (SIGKILL follows SIGTERM after 120 s)` })).default(100),
  /**
   * How long a runner keeps trying to record one job's outcome (complete,
   * fail, release) through database errors that may pass, while the
   * heartbeat holds the job lease. Past it the heartbeat stops, the lease
   * lapses and the reaper requeues the job: a report that can never succeed
   * must not hold the job, the task and its capacity until SIGKILL.
   * @default 120 (a database restart or failover)
   */
  RUNNER_REPORT_DEADLINE_SECONDS: seconds.default(120),
  /** Infrastructure failures in a row after which the runner stops claiming and exits non-zero. @default 3 */
  RUNNER_MAX_INFRASTRUCTURE_FAILURES: count.default(3),
  /**
   * Jobs one task takes before it exits and hands its capacity back, so that
   * dispatch re-plans (fair share between environments, registre before OCR)
   * while a long backlog lasts instead of one flood keeping its tasks forever.
   * @default 20 (a cold start of about a minute every 20 jobs of minutes each)
   */
  RUNNER_MAX_JOBS: count.default(20),
  /**
   * Jobs this task runs at once, each in its own slot with its own job lease
   * and heartbeat (see DEFAULT_RUNNER_CONCURRENCY).
   * @default per kind: registre 3, index-ocr 1, acte-ocr 1
   */
  RUNNER_CONCURRENCY: count.pipe(z.number().max(MAX_RUNNER_CONCURRENCY, { error: `must be at most ${MAX_RUNNER_CONCURRENCY}` })).optional(),
  /** Who claims, stored on the row (`worker_id` / `ocr_worker_id`). @default "<hostname>-<pid>" */
  WORKER_ID: z.string().min(1).max(200).optional(),
  /** @default "info" */
  LOG_LEVEL: z.enum(LOG_LEVELS).default("info"),
});

type RunnerEnvName = keyof typeof runnerEnvSchema.shape;

export interface RunnerConfig {
  readonly jobKind: JobKind;
  readonly environment: Environment;
  readonly ledgerLeaseId: string;
  /** Key prefix of the capacity ledger, the same one dispatch acquires leases under. */
  readonly ledgerKeyPrefix: string;
  /** Key prefix of the kinds waiting for room (unmet-demand.ts), as dispatch writes them. */
  readonly unmetDemandKeyPrefix: string;
  readonly databaseUrl: string;
  /** TLS to the pooler, from DATABASE_URL's sslmode and DATABASE_SSL_ROOT_CERT (database-tls.ts). */
  readonly databaseTls: DatabaseTls;
  readonly upstash: { readonly url: string; readonly token: string };
  readonly capacity: CapacityConfig;
  readonly idleExitMs: number;
  readonly pollIntervalMs: number;
  readonly handBackMs: number;
  /** Whole seconds: `claim_jobs` and `heartbeat_job` take an integer. */
  readonly jobLeaseSeconds: number;
  readonly shutdownGraceMs: number;
  /** JOB_MAX_RUN_SECONDS (or the kind's default) in ms. */
  readonly maxRunMs: number;
  /** RUNNER_REPORT_DEADLINE_SECONDS in ms. */
  readonly reportDeadlineMs: number;
  readonly maxInfrastructureFailures: number;
  readonly maxJobs: number;
  /** RUNNER_CONCURRENCY (or the kind's default): jobs run at once. */
  readonly concurrency: number;
  readonly workerId: string;
  readonly logLevel: LogLevel;
  /** Values of the task's secret variables (SECRET_VARIABLE), for log redaction; never logged themselves. */
  readonly environmentSecrets: readonly string[];
}

export class RunnerConfigError extends Error {
  override readonly name = "RunnerConfigError";
  /** The variables to fix. */
  readonly variables: readonly string[];
  constructor(variables: readonly string[], message: string) {
    super(message);
    this.variables = variables;
  }
}

/** The TLS policy, its refusal reported like every other configuration problem (the variable named, no value). */
function databaseTlsOf(databaseUrl: string, env: Readonly<Record<string, string | undefined>>): DatabaseTls {
  try {
    return parseDatabaseTls(databaseUrl, setValues(env));
  } catch (error) {
    if (error instanceof DatabaseTlsConfigError) throw new RunnerConfigError([error.variable], `Invalid runner configuration: ${error.message}`);
    throw error;
  }
}

/**
 * Reads the runner's configuration from `env` (process.env in production).
 * Blank variables count as unset, as in parseCapacityConfig.
 */
export function parseRunnerConfig(env: Readonly<Record<string, string | undefined>>): RunnerConfig {
  const values = setValues(env);
  const input: Partial<Record<RunnerEnvName, string>> = {};
  for (const name of Object.keys(runnerEnvSchema.shape) as RunnerEnvName[]) {
    if (values[name] !== undefined) input[name] = values[name];
  }
  const parsed = runnerEnvSchema.safeParse(input);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => {
      const variable = String(issue.path[0] ?? "configuration");
      // The value is left out on purpose: DATABASE_URL and the token are secrets.
      const text = input[variable as RunnerEnvName] === undefined ? `${variable} is missing` : `${variable} ${issue.message}`;
      return { variable, text };
    });
    throw new RunnerConfigError(
      problems.map((problem) => problem.variable),
      `Invalid runner configuration: ${problems.map((problem) => problem.text).join("; ")}`,
    );
  }
  const e = parsed.data;
  const jobKind = e[RUNNER_TASK_ENV.jobKind];
  return {
    jobKind,
    environment: e[RUNNER_TASK_ENV.environment],
    ledgerLeaseId: e[RUNNER_TASK_ENV.ledgerLeaseId],
    ledgerKeyPrefix: redisKeyPrefixes(e.REDIS_KEY_PREFIX).ledger,
    unmetDemandKeyPrefix: redisKeyPrefixes(e.REDIS_KEY_PREFIX).unmetDemand,
    databaseUrl: e.DATABASE_URL,
    databaseTls: databaseTlsOf(e.DATABASE_URL, env),
    upstash: { url: e.UPSTASH_REDIS_REST_URL, token: e.UPSTASH_REDIS_REST_TOKEN },
    capacity: parseCapacityConfig(env),
    idleExitMs: Math.round(e.RUNNER_IDLE_EXIT_SECONDS * 1000),
    pollIntervalMs: Math.round(e.RUNNER_POLL_SECONDS * 1000),
    handBackMs: Math.round(e.RUNNER_HAND_BACK_SECONDS * 1000),
    jobLeaseSeconds: e.JOB_LEASE_SECONDS ?? DEFAULT_JOB_LEASE_SECONDS[jobKind],
    shutdownGraceMs: Math.round(e.SHUTDOWN_GRACE_SECONDS * 1000),
    maxRunMs: Math.round((e.JOB_MAX_RUN_SECONDS ?? DEFAULT_JOB_MAX_RUN_SECONDS[jobKind]) * 1000),
    reportDeadlineMs: Math.round(e.RUNNER_REPORT_DEADLINE_SECONDS * 1000),
    maxInfrastructureFailures: e.RUNNER_MAX_INFRASTRUCTURE_FAILURES,
    maxJobs: e.RUNNER_MAX_JOBS,
    concurrency: e.RUNNER_CONCURRENCY ?? DEFAULT_RUNNER_CONCURRENCY[jobKind],
    workerId: e.WORKER_ID ?? `${hostname()}-${process.pid}`,
    logLevel: e.LOG_LEVEL,
    environmentSecrets: environmentSecretValues(env),
  };
}

/**
 * Variables whose values are secrets wherever they appear: the named ones
 * (GEMINI_API_KEY, SUPABASE_STORAGE_KEY, a service-role key that should never
 * reach a runner but would be redacted if it did, AWS keys, the Upstash
 * token) and any other whose name ends like a credential.
 */
export const SECRET_VARIABLE = /(^|_)(SECRET|TOKEN|PASSWORD|PASSWD|API_KEY|KEY|SERVICE_ROLE_KEY)$/;
export const NAMED_SECRET_VARIABLES = [
  "GEMINI_API_KEY",
  "SUPABASE_STORAGE_KEY",
  "SUPABASE_SERVICE_ROLE_KEY",
  "SUPABASE_SECRET_KEY",
  "UPSTASH_REDIS_REST_TOKEN",
  "AWS_SECRET_ACCESS_KEY",
  "AWS_SESSION_TOKEN",
  "DISPATCH_SECRET",
] as const;
/** Shorter values are too likely to be ordinary words to redact everywhere. */
const MIN_ENVIRONMENT_SECRET_LENGTH = 8;

function environmentSecretValues(env: Readonly<Record<string, string | undefined>>): string[] {
  const values = new Set<string>();
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined || value.trim().length < MIN_ENVIRONMENT_SECRET_LENGTH) continue;
    if ((NAMED_SECRET_VARIABLES as readonly string[]).includes(name) || SECRET_VARIABLE.test(name)) values.add(value);
  }
  return [...values];
}

/** Values no log line may contain: the database password, the Upstash token and every secret variable (more join at run time through Logger.addSecret). */
export function secretValues(config: RunnerConfig): string[] {
  const secrets = [config.upstash.token, ...config.environmentSecrets];
  let password = "";
  try {
    password = decodeURIComponent(new URL(config.databaseUrl).password);
  } catch {
    // A URL the WHATWG parser rejects still reaches postgres.js, which reports its own error.
  }
  if (password !== "") secrets.push(password);
  return [...new Set(secrets)];
}
