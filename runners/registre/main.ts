/**
 * Entry point of the registre runner: the runner lifecycle (run-runner.ts)
 * with N registre slots (REGISTRE_CONTEXTS, default 3: runner-config.ts says
 * why). One Chromium for the task; each slot has its own registry session:
 * its own account lease, login and cookies, a fresh context per job that
 * starts from that session's cookies only, its jobs one at a time and its own
 * pace. The sessions log out, the browser closes and the accounts go back
 * when the task idles out, drains after SIGTERM, or stops for any other reason.
 */
import { Redis } from "@upstash/redis";
import { RegistryCooldown } from "../../supabase/functions/_shared/registry-cooldown.ts";
import { connectJobDatabase } from "../lifecycle/job-queue.ts";
import { parseRunnerConfig, secretValues, type RunnerConfig } from "../lifecycle/runner-config.ts";
import { runRunner, RUNNER_EXIT_CODES } from "../lifecycle/run-runner.ts";
import { createLogger } from "../lifecycle/structured-log.ts";
import { createDocumentStorage } from "../storage/create-document-storage.ts";
import { parseStorageConfig, type DocumentStorage } from "../storage/document-storage.ts";
import { parseRegistreConfig, registreContexts, type RegistreConfig } from "./registre-config.ts";
import { registreJobHandler } from "./registre-job-handler.ts";
import { RegistryAccounts } from "./registry-accounts.ts";
import { RegistryPurchases } from "./registry-purchases.ts";
import { createTraceStore, type TraceStore } from "./trace-store.ts";
import { RegistrySession } from "./registry-session.ts";
import { SharedChromium } from "./shared-chromium.ts";
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
REGISTRE_CONTEXTS (RUNNER_CONCURRENCY, 3: browser contexts, each with its own
account, running a job each), REDIS_KEY_PREFIX (""). Lifecycle options as for every runner:
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
  let contexts: number;
  try {
    // Before anything reads it: the production image ignores endpoint overrides (issue 19 item 3).
    enforceProductionEndpoints(process.env);
    config = parseRunnerConfig(process.env);
    registre = parseRegistreConfig(process.env);
    const storageConfig = parseStorageConfig(process.env);
    storage = createDocumentStorage(storageConfig);
    traces = registre.keepTraces ? createTraceStore(storageConfig) : undefined;
    if (config.jobKind !== "registre") throw new Error(`JOB_KIND must be registre for this runner, got ${config.jobKind}`);
    contexts = registreContexts(registre, config.concurrency, process.env);
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
  // Account leases, logins' reports and purchases: one connection per slot.
  const accountsSql = connectJobDatabase(config.databaseUrl, { max: contexts, tls: config.databaseTls });
  const chromium = new SharedChromium(registre, log);
  const cooldown = new RegistryCooldown(redis, registre.redisKeyPrefix, config.environment);
  const purchases = new RegistryPurchases(accountsSql, config.environment);
  // Each slot its own session: its own account (leased under "<worker>#<slot>"), login and cookies; never shared.
  const sessions = Array.from({ length: contexts }, (_, index) => {
    const slotLog = contexts > 1 ? log.child({ slot: index + 1 }) : log;
    const accounts = new RegistryAccounts(accountsSql, { workerId: `${config.workerId}#${index + 1}`.slice(0, 200), leaseSeconds: registre.accountLeaseSeconds, log: slotLog });
    return new RegistrySession(registre, accounts, slotLog, { browser: () => chromium.get() });
  });
  try {
    return await runRunner({
      config,
      log,
      handle: sessions.map((session) => ({
        handle: registreJobHandler({ config: registre, session, storage, cooldown, purchases, traces }),
        // A slot claims only once its session holds an account of its own.
        ready: () => session.holdsAccount(),
      })),
    });
  } finally {
    // Log out (through the shared browser) before it closes.
    await Promise.all(sessions.map((session) => session.close()));
    await chromium.close();
    await accountsSql.end({ timeout: 5 }).catch(() => {});
  }
}

// Exit explicitly: idle keep-alive sockets (fetch, postgres) must not hold a finished runner.
process.exit(await main());
