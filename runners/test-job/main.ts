/**
 * Entry point of the lifecycle test runner: the real runner lifecycle
 * (run-runner.ts) with the lifecycle test job handler
 * (lifecycle-test-job.ts). Used by the lifecycle tests and by the local stack
 * to exercise dispatch end to end; never deployed (the production images
 * start the registre and OCR runners).
 *
 *   JOB_KIND=registre ENVIRONMENT=dev LEDGER_LEASE_ID=... DATABASE_URL=... \
 *   UPSTASH_REDIS_REST_URL=... UPSTASH_REDIS_REST_TOKEN=... \
 *   TEST_JOB_DURATION_MS=200 node_modules/.bin/tsx runners/test-job/main.ts
 */
import { parseRunnerConfig, type RunnerConfig } from "../lifecycle/runner-config.ts";
import { runRunner, RUNNER_EXIT_CODES } from "../lifecycle/run-runner.ts";
import { createLogger } from "../lifecycle/structured-log.ts";
import { Redis } from "@upstash/redis";
import { GeminiRateBudget } from "../../supabase/functions/_shared/gemini-rate-budget.ts";
import { redisKeyPrefixes } from "../../supabase/functions/_shared/redis-keys.ts";
import { lifecycleTestJobHandler, parseLifecycleTestJobSettings, type LifecycleTestJobSettings } from "./lifecycle-test-job.ts";

const HELP = `Usage: tsx runners/test-job/main.ts   (configured by environment variables)

The runner lifecycle with the lifecycle test handler: claims jobs of JOB_KIND,
"works" TEST_JOB_DURATION_MS each, completes them with a synthetic path/text.
Started by the local ECS endpoint; dispatch passes JOB_KIND, ENVIRONMENT and
LEDGER_LEASE_ID. Required: DATABASE_URL, UPSTASH_REDIS_REST_URL,
UPSTASH_REDIS_REST_TOKEN. Optional: RUNNER_IDLE_EXIT_SECONDS (60),
RUNNER_POLL_SECONDS (2), JOB_LEASE_SECONDS (per kind), SHUTDOWN_GRACE_SECONDS
(100), RUNNER_MAX_INFRASTRUCTURE_FAILURES (3), RUNNER_MAX_JOBS (20), WORKER_ID, LOG_LEVEL (info),
TEST_JOB_DURATION_MS (200), TEST_JOB_DURATION_MS_REGISTRE / _INDEX_OCR / _ACTE_OCR
(one kind's duration, over TEST_JOB_DURATION_MS), RUNNER_HAND_BACK_SECONDS (2),
TEST_JOB_GEMINI_TOKENS_INDEX_OCR / _ACTE_OCR (input tokens per document, spent
through the shared Gemini budget in TEST_JOB_GEMINI_CALLS (3) calls; no model is called),
TEST_JOB_FAILURE (none|final|retryable|infrastructure),
and the capacity variables listed in the README. Exit codes: 0 done or idle,
1 unexpected, 2 infrastructure, 3 capacity lease lost.
`;

async function main(): Promise<number> {
  if (process.argv.includes("--help")) {
    process.stdout.write(HELP);
    return RUNNER_EXIT_CODES.ok;
  }
  let config: RunnerConfig;
  let settings: LifecycleTestJobSettings;
  try {
    config = parseRunnerConfig(process.env);
    settings = parseLifecycleTestJobSettings(process.env);
  } catch (error) {
    // The messages name the variables to fix, never a secret value.
    createLogger({ base: { runner: "lifecycle-test" } }).error("runner not started: invalid configuration", { error });
    return RUNNER_EXIT_CODES.unexpected;
  }
  const gemini =
    Object.keys(settings.geminiTokensByKind).length === 0
      ? undefined
      : {
          budget: new GeminiRateBudget(new Redis({ url: config.upstash.url, token: config.upstash.token, enableTelemetry: false }), config.capacity.gemini, {
            // The same prefix rule dispatch and the OCR runner use (REDIS_KEY_PREFIX, checked by parseRunnerConfig).
            keyPrefix: redisKeyPrefixes(process.env["REDIS_KEY_PREFIX"]?.trim() ?? "").gemini,
          }),
          model: config.capacity.gemini.models.fast,
        };
  return runRunner({ config, handle: lifecycleTestJobHandler(settings, gemini) });
}

// Exit explicitly: idle keep-alive sockets (fetch, postgres) must not hold a finished runner.
process.exit(await main());
