/**
 * Entry point of the registre runner: the runner lifecycle (run-runner.ts)
 * with the registre job handler. One Chromium for the task, a fresh context
 * per job, one registry account leased for the task; the browser closes and
 * the account goes back when the task idles out, drains after SIGTERM, or
 * stops for any other reason.
 *
 * The lifecycle runs one job at a time, so a task fetches one document at a
 * time (see the README's benchmark for what parallel jobs would give).
 */
import { Redis } from "@upstash/redis";
import { RegistryCooldown } from "../../supabase/functions/_shared/registry-cooldown.ts";
import { connectJobDatabase } from "../lifecycle/job-queue.ts";
import { parseRunnerConfig, secretValues, type RunnerConfig } from "../lifecycle/runner-config.ts";
import { runRunner, RUNNER_EXIT_CODES } from "../lifecycle/run-runner.ts";
import { createLogger } from "../lifecycle/structured-log.ts";
import { createDocumentStorage } from "../storage/create-document-storage.ts";
import { parseStorageConfig, type DocumentStorage } from "../storage/document-storage.ts";
import { parseRegistreConfig, type RegistreConfig } from "./registre-config.ts";
import { registreJobHandler } from "./registre-job-handler.ts";
import { RegistryAccounts } from "./registry-accounts.ts";
import { RegistryPurchases } from "./registry-purchases.ts";
import { createTraceStore, type TraceStore } from "./trace-store.ts";
import { RegistrySession } from "./registry-session.ts";
import { enforceProductionEndpoints } from "../lifecycle/production-endpoints.ts";

const HELP = `Usage: tsx runners/registre/main.ts   (configured by environment variables)

Claims registre jobs, fetches each document from the land registry with
Chromium, stores the PDF and completes the row (index and acte → 3, plans → 5).
Set by dispatch: JOB_KIND (registre), ENVIRONMENT, LEDGER_LEASE_ID.
Required: DATABASE_URL, UPSTASH_REDIS_REST_URL, UPSTASH_REDIS_REST_TOKEN, and
storage: STORAGE_LOCAL_DIR, or SUPABASE_URL + SUPABASE_STORAGE_KEY.
Registre options: REGISTRY_BASE_URL (https://www.registrefoncier.gouv.qc.ca),
CHROMIUM_PATH (/usr/bin/chromium), REGISTRE_NAVIGATION_TIMEOUT_SECONDS (30),
REGISTRE_RESULT_TIMEOUT_SECONDS (180), REGISTRY_COOLDOWN_SECONDS (120),
REGISTRY_ACCOUNT_LEASE_SECONDS (600), REGISTRE_DEBUG_DIR (/tmp/registre-debug),
REGISTRE_TRACES (on-failure | off), REGISTRE_PRICE_CENTS (150; the daily cap and reuse window are in the
registre_spend_policy table),
REDIS_KEY_PREFIX (""). Lifecycle options as for every runner:
RUNNER_IDLE_EXIT_SECONDS (60), RUNNER_POLL_SECONDS (2), JOB_LEASE_SECONDS (300),
SHUTDOWN_GRACE_SECONDS (100), RUNNER_MAX_INFRASTRUCTURE_FAILURES (3),
RUNNER_MAX_JOBS (20), WORKER_ID, LOG_LEVEL (info).
Exit codes: 0 done or idle, 1 unexpected, 2 infrastructure, 3 capacity lease lost.
`;

async function main(): Promise<number> {
  if (process.argv.includes("--help")) {
    process.stdout.write(HELP);
    return RUNNER_EXIT_CODES.ok;
  }
  let config: RunnerConfig;
  let registre: RegistreConfig;
  let storage: DocumentStorage;
  let traces: TraceStore | undefined;
  try {
    // Before anything reads it: the production image ignores endpoint overrides (issue 19 item 3).
    enforceProductionEndpoints(process.env);
    config = parseRunnerConfig(process.env);
    registre = parseRegistreConfig(process.env);
    const storageConfig = parseStorageConfig(process.env);
    storage = createDocumentStorage(storageConfig);
    traces = registre.keepTraces ? createTraceStore(storageConfig) : undefined;
    if (config.jobKind !== "registre") throw new Error(`JOB_KIND must be registre for this runner, got ${config.jobKind}`);
  } catch (error) {
    // The messages name the variables to fix, never a secret value.
    createLogger({ base: { runner: "registre" } }).error("runner not started: invalid configuration", { error });
    return RUNNER_EXIT_CODES.unexpected;
  }
  const log = createLogger({
    base: { kind: config.jobKind, environment: config.environment, worker_id: config.workerId },
    level: config.logLevel,
    secrets: secretValues(config),
  });
  // The traces' 14-day retention: each task purges the expired days as it starts.
  if (traces !== undefined) {
    await traces.purge(new Date()).then(
      (days) => days > 0 && log.info("expired job traces purged", { days }),
      (error: unknown) => log.warn("could not purge expired job traces", { error: error instanceof Error ? error.message : String(error) }),
    );
  }
  const redis = new Redis({ url: config.upstash.url, token: config.upstash.token, enableTelemetry: false, retry: { retries: 1, backoff: () => 250 } });
  const accountsSql = connectJobDatabase(config.databaseUrl, { max: 1, tls: config.databaseTls });
  const session = new RegistrySession(registre, new RegistryAccounts(accountsSql, { workerId: config.workerId, leaseSeconds: registre.accountLeaseSeconds, log }), log);
  try {
    return await runRunner({
      config,
      log,
      handle: registreJobHandler({
        config: registre,
        session,
        storage,
        cooldown: new RegistryCooldown(redis, registre.redisKeyPrefix, config.environment),
        purchases: new RegistryPurchases(accountsSql, config.environment),
        traces,
      }),
    });
  } finally {
    await session.close();
    await accountsSql.end({ timeout: 5 }).catch(() => {});
  }
}

// Exit explicitly: idle keep-alive sockets (fetch, postgres) must not hold a finished runner.
process.exit(await main());
