/**
 * Entry point of the OCR runner, for both OCR kinds: JOB_KIND (set by
 * dispatch) says whether it claims index-ocr or acte-ocr jobs. The runner
 * lifecycle (run-runner.ts) with the OCR handler (ocr-job-handler.ts).
 *
 *   JOB_KIND=index-ocr ENVIRONMENT=dev LEDGER_LEASE_ID=... DATABASE_URL=... \
 *   UPSTASH_REDIS_REST_URL=... UPSTASH_REDIS_REST_TOKEN=... \
 *   STORAGE_LOCAL_DIR=/path/to/storage node_modules/.bin/tsx runners/ocr/main.ts
 */
import { parseGeminiDayShares, type GeminiDayShares } from "../../supabase/functions/_shared/gemini-day-shares.ts";
import { Redis } from "@upstash/redis";
import { CapacityLedger } from "../../supabase/functions/_shared/capacity-ledger.ts";
import { GeminiConfigFault } from "../../supabase/functions/_shared/gemini-config-fault.ts";
import { GeminiRateBudget } from "../../supabase/functions/_shared/gemini-rate-budget.ts";
import { GeminiTokenCalibration } from "../../supabase/functions/_shared/gemini-token-calibration.ts";
import { recordTaskFinished } from "../../supabase/functions/_shared/runner-task-records.ts";
import { parseRunnerConfig, type RunnerConfig } from "../lifecycle/runner-config.ts";
import { runRunner, RUNNER_EXIT_CODES } from "../lifecycle/run-runner.ts";
import { createLogger } from "../lifecycle/structured-log.ts";
import { checkGeminiAtStart } from "./gemini-startup-check.ts";
import { sqlTokenRecorder } from "./ocr-token-record.ts";
import { connectJobDatabase, type ClaimedJob } from "../lifecycle/job-queue.ts";
import { upstashPageStore } from "./index-page-store.ts";
import { createDocumentStorage } from "../storage/create-document-storage.ts";
import { parseStorageConfig, type DocumentStorage } from "../storage/document-storage.ts";
import { ocrJobHandler } from "./ocr-job-handler.ts";
import { parseOcrSettings, type OcrSettings } from "./ocr-config.ts";
import { loadPrompt, PROMPT_NAMES } from "./prompts.ts";
import { GeminiOcrProvider } from "./providers/gemini-provider.ts";
import type { OcrProvider } from "./providers/ocr-provider.ts";
import { OfflineOcrProvider } from "./providers/offline-provider.ts";
import { enforceProductionEndpoints } from "../lifecycle/production-endpoints.ts";

const HELP = `Usage: tsx runners/ocr/main.ts   (configured by environment variables)

The OCR runner: claims jobs of JOB_KIND (index-ocr or acte-ocr), reads the
stored PDF and writes file_content and boosted_file_content.
Engine: Gemini when GEMINI_API_KEY is set (or OCR_ENGINE=gemini), else the
offline Tesseract engine (OCR_ENGINE=offline).
Required: JOB_KIND, ENVIRONMENT, LEDGER_LEASE_ID (set by dispatch),
DATABASE_URL, UPSTASH_REDIS_REST_URL, UPSTASH_REDIS_REST_TOKEN, and either
STORAGE_LOCAL_DIR or SUPABASE_URL + SUPABASE_STORAGE_KEY.
Gemini: GEMINI_API_KEY, GEMINI_BASE_URL (test server), GEMINI_FAST_MODEL
(gemini-3.5-flash-lite), GEMINI_BOOST_MODEL (gemini-3.8-flash), GEMINI_LIMITS,
GEMINI_CALL_TIMEOUT_MS (180000), GEMINI_TRANSIENT_RETRIES (3),
GEMINI_BACKOFF_BASE_MS (2000), GEMINI_BUDGET_MAX_WAIT_MS (300000),
GEMINI_FILE_POLL_MS (1000), GEMINI_FILE_ACTIVE_TIMEOUT_MS (300000),
GEMINI_DAY_SHARES (unset: one pool), GEMINI_DAY_SHARE_IDLE_SECONDS (600).
Index pages: OCR_PAGE_CONCURRENCY (6), OCR_DPI (300), OCR_UPSCALE (1: Gemini resizes to its token budget anyway).
Hostile PDFs: OCR_MAX_PAGES (300), OCR_MAX_PAGE_PIXELS (40000000),
OCR_MAX_DOCUMENT_PIXELS (2000000000), checked before any OCR call.
Lifecycle: RUNNER_IDLE_EXIT_SECONDS (60), RUNNER_POLL_SECONDS (2),
JOB_LEASE_SECONDS (index-ocr 600, acte-ocr 300), SHUTDOWN_GRACE_SECONDS (100),
RUNNER_MAX_INFRASTRUCTURE_FAILURES (3), RUNNER_MAX_JOBS (20), WORKER_ID,
LOG_LEVEL (info), REDIS_KEY_PREFIX, and the capacity variables in the README.
At start the Gemini engine checks both models (models.get): a model Google
does not serve, a refused key or billing off is recorded for dispatch and
\`npm run status\` (no OCR task starts until fixed) and the runner exits 4.
Exit codes: 0 done or idle, 1 unexpected, 2 infrastructure, 3 capacity lease
lost, 4 Gemini misconfigured (key, model, billing).
`;

async function main(): Promise<number> {
  if (process.argv.includes("--help")) {
    process.stdout.write(HELP);
    return RUNNER_EXIT_CODES.ok;
  }
  const log = createLogger({ base: { runner: "ocr" } });
  let config: RunnerConfig;
  let settings: OcrSettings;
  let storage: DocumentStorage;
  let dayShares: GeminiDayShares | undefined;
  try {
    // Before anything reads it: the production image ignores endpoint overrides (issue 19 item 3).
    enforceProductionEndpoints(process.env);
    config = parseRunnerConfig(process.env);
    settings = parseOcrSettings(process.env);
    storage = createDocumentStorage(parseStorageConfig(process.env));
    dayShares = parseGeminiDayShares(process.env, config.environment);
    if (config.jobKind === "registre") throw new Error("JOB_KIND must be index-ocr or acte-ocr for the OCR runner");
    for (const name of PROMPT_NAMES) loadPrompt(name); // A missing or malformed prompt file stops the runner now, not mid-job.
  } catch (error) {
    // The messages name the variables to fix, never a secret value.
    log.error("runner not started: invalid configuration", { error });
    return RUNNER_EXIT_CODES.unexpected;
  }
  const redis = new Redis({ url: config.upstash.url, token: config.upstash.token, enableTelemetry: false });
  const fault = new GeminiConfigFault(redis, settings.redisKeyPrefix, config.environment);
  const provider = createProvider(config, settings, redis, fault, dayShares);
  if (provider instanceof GeminiOcrProvider) {
    const ledger = new CapacityLedger(redis, config.capacity, { keyPrefix: config.ledgerKeyPrefix });
    const recordExit = async (reason: string, exitCode: number) => {
      const sql = connectJobDatabase(config.databaseUrl, { max: 1 });
      try {
        await recordTaskFinished(sql, config.ledgerLeaseId, reason, exitCode);
      } finally {
        await sql.end({ timeout: 5 });
      }
    };
    const checked = await checkGeminiAtStart({ provider, fault, ledger, ledgerLeaseId: config.ledgerLeaseId, log, recordExit });
    if (checked !== RUNNER_EXIT_CODES.ok) return checked;
  }
  log.info("ocr engine ready", {
    engine: provider.name,
    kind: config.jobKind,
    environment: config.environment,
    ...(provider instanceof GeminiOcrProvider ? { fast_model: provider.models.fast, boost_model: provider.models.boost } : {}),
    prompt_versions: Object.fromEntries(PROMPT_NAMES.map((name) => [name, loadPrompt(name).version])),
  });
  // The tokens each job spent, per model, on its row's OCR lease (public.ocr_tokens_by_day in Studio).
  const tokenSql = provider.tokenUsage === undefined ? undefined : connectJobDatabase(config.databaseUrl, { max: 1 });
  const recordTokens = tokenSql === undefined ? {} : { recordTokens: sqlTokenRecorder(tokenSql, config.environment) };
  try {
    // Pages read completely wait in Upstash for a retry, keyed by the versions of the prompts that read them.
    const readingVersions = (["index-line-count", "index-extraction", "index-extraction-retry"] as const).map((name) => `${name}@${loadPrompt(name).version}`).join(",");
    const pageStore = (job: ClaimedJob) => upstashPageStore(redis, settings.redisKeyPrefix, job.id, `${provider.name}:${readingVersions}`);
    return await runRunner({ config, handle: ocrJobHandler({ storage, provider, dpi: settings.dpi, pageConcurrency: settings.pageConcurrency, limits: settings.limits, pageStore, ...recordTokens }) });
  } finally {
    await provider.close();
    await tokenSql?.end({ timeout: 5 });
  }
}

function createProvider(config: RunnerConfig, settings: OcrSettings, redis: Redis, fault: GeminiConfigFault, dayShares: GeminiDayShares | undefined): OcrProvider {
  if (settings.gemini === undefined) return new OfflineOcrProvider(settings.dpi);
  // GEMINI_DAY_SHARES: this environment's share of each model's day (gemini-day-shares.ts).
  const budget = new GeminiRateBudget(redis, config.capacity.gemini, { keyPrefix: settings.gemini.budgetKeyPrefix, ...(dayShares === undefined ? {} : { dayShares }) });
  const calibration = new GeminiTokenCalibration(redis, settings.gemini.budgetKeyPrefix);
  return new GeminiOcrProvider(settings.gemini, config.capacity.gemini.models, budget, { upscale: settings.upscale, onConfigurationFault: (reason) => fault.record(reason), calibration });
}

// Exit explicitly: idle keep-alive sockets (fetch, postgres) and the Tesseract worker must not hold a finished runner.
process.exit(await main());
