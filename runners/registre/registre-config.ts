/**
 * What the registre runner reads from its environment beyond the lifecycle's
 * configuration (runner-config.ts) and storage's (document-storage.ts),
 * parsed once at start; a bad value stops the runner naming the variable.
 */
import { z } from "zod";
import { setValues } from "../../supabase/functions/_shared/env-values.ts";
import { MAX_RUNNER_CONCURRENCY, RunnerConfigError } from "../lifecycle/runner-config.ts";

export interface RegistreConfig {
  /** The registry site's origin; the local stack points it at the replica. */
  readonly registryBaseUrl: string;
  readonly chromiumPath: string;
  /** Each navigation and click. */
  readonly navigationTimeoutMs: number;
  /** A search's answer (the site can take minutes to build a document). */
  readonly resultTimeoutMs: number;
  /** The registry unreachable pauses registre dispatch this long. */
  readonly cooldownMs: number;
  /** A registry account is leased for this long and renewed every third of it. */
  readonly accountLeaseSeconds: number;
  /** Private folder for failure screenshots and HTML, one subfolder per job id. */
  readonly debugDir: string;
  /** The least time between two documents of one account. */
  readonly accountPaceMs: number;
  /** Keep a scrubbed Playwright trace of each failed job (trace-store.ts). */
  readonly keepTraces: boolean;
  /** What one document costs, recorded with each purchase (about 1,50 $, the public SIRF client). */
  readonly priceCents: number;
  /**
   * REGISTRE_CONTEXTS: browser contexts (slots) in the task's one Chromium,
   * each with its own login, account and cookies; undefined leaves it to
   * RUNNER_CONCURRENCY (default 3, runner-config.ts).
   */
  readonly contexts: number | undefined;
  /** REDIS_KEY_PREFIX, where the shared cooldown lives. */
  readonly redisKeyPrefix: string;
}

const seconds = z
  .string()
  .regex(/^\d+(\.\d+)?$/, { error: "must be a number of seconds such as 30 or 0.5" })
  .transform(Number)
  .pipe(z.number().positive({ error: "must be greater than 0" }));

const schema = z.object({
  /** @default "https://www.registrefoncier.gouv.qc.ca" */
  REGISTRY_BASE_URL: z.url({ error: "must be an http(s):// URL" }).default("https://www.registrefoncier.gouv.qc.ca"),
  /** @default "/usr/bin/chromium" (Debian's package, locally and in the image) */
  CHROMIUM_PATH: z.string().startsWith("/", { error: "must be an absolute path" }).default("/usr/bin/chromium"),
  /** @default 30 (the site is slow; shorter timeouts failed before) */
  REGISTRE_NAVIGATION_TIMEOUT_SECONDS: seconds.default(30),
  /** @default 180 */
  REGISTRE_RESULT_TIMEOUT_SECONDS: seconds.default(180),
  /** @default 120 */
  REGISTRY_COOLDOWN_SECONDS: seconds.default(120),
  /** @default 600 */
  REGISTRY_ACCOUNT_LEASE_SECONDS: z.string().regex(/^\d+$/, { error: "must be a whole number of seconds" }).transform(Number).pipe(z.number().min(30).max(3_600)).default(600), // the queue grants at most 3600 (migration 20261205030300)
  /** @default "/tmp/registre-debug" */
  REGISTRE_DEBUG_DIR: z.string().startsWith("/", { error: "must be an absolute path" }).default("/tmp/registre-debug"),
  /** @default 2 (0: no pace) */
  REGISTRE_ACCOUNT_PACE_SECONDS: z.string().regex(/^\d+(\.\d+)?$/, { error: "must be a number of seconds such as 2 or 0" }).transform(Number).default(2),
  /** @default "on-failure" */
  REGISTRE_TRACES: z.enum(["on-failure", "off"], { error: "must be on-failure or off" }).default("on-failure"),
  /** @default 150 (1,50 $ a document, SIRF-py's April 2026 price) */
  REGISTRE_PRICE_CENTS: z.string().regex(/^\d+$/, { error: "must be a whole number of cents" }).transform(Number).default(150),
  REDIS_KEY_PREFIX: z.string().regex(/^[A-Za-z0-9:_-]*$/).default(""),
  /** @default RUNNER_CONCURRENCY's registre default, 3 (see DEFAULT_RUNNER_CONCURRENCY) */
  REGISTRE_CONTEXTS: z
    .string()
    .regex(/^\d+$/, { error: "must be a whole number such as 3" })
    .transform(Number)
    .pipe(z.number().min(1, { error: "must be at least 1" }).max(MAX_RUNNER_CONCURRENCY, { error: `must be at most ${MAX_RUNNER_CONCURRENCY}` }))
    .optional(),
});

/**
 * How many contexts the task runs: REGISTRE_CONTEXTS, else RUNNER_CONCURRENCY
 * (or its registre default). Both set and different is refused, naming both.
 */
export function registreContexts(registre: RegistreConfig, runnerConcurrency: number, env: Readonly<Record<string, string | undefined>>): number {
  if (registre.contexts === undefined) return runnerConcurrency;
  if (setValues(env)["RUNNER_CONCURRENCY"] !== undefined && registre.contexts !== runnerConcurrency) {
    throw new RunnerConfigError(
      ["REGISTRE_CONTEXTS", "RUNNER_CONCURRENCY"],
      `Invalid registre configuration: REGISTRE_CONTEXTS (${registre.contexts}) and RUNNER_CONCURRENCY (${runnerConcurrency}) differ; set one of them`,
    );
  }
  return registre.contexts;
}

export function parseRegistreConfig(env: Readonly<Record<string, string | undefined>>): RegistreConfig {
  const values = setValues(env);
  const input: Record<string, string> = {};
  for (const name of Object.keys(schema.shape)) if (values[name] !== undefined) input[name] = values[name];
  const parsed = schema.safeParse(input);
  if (!parsed.success) {
    const variables = parsed.error.issues.map((issue) => String(issue.path[0]));
    throw new RunnerConfigError(variables, `Invalid registre configuration: ${parsed.error.issues.map((issue) => `${String(issue.path[0])} ${issue.message}`).join("; ")}`);
  }
  const e = parsed.data;
  return {
    registryBaseUrl: e.REGISTRY_BASE_URL.replace(/\/+$/, ""),
    chromiumPath: e.CHROMIUM_PATH,
    navigationTimeoutMs: Math.round(e.REGISTRE_NAVIGATION_TIMEOUT_SECONDS * 1000),
    resultTimeoutMs: Math.round(e.REGISTRE_RESULT_TIMEOUT_SECONDS * 1000),
    cooldownMs: Math.round(e.REGISTRY_COOLDOWN_SECONDS * 1000),
    accountLeaseSeconds: e.REGISTRY_ACCOUNT_LEASE_SECONDS,
    debugDir: e.REGISTRE_DEBUG_DIR,
    priceCents: e.REGISTRE_PRICE_CENTS,
    keepTraces: e.REGISTRE_TRACES === "on-failure",
    accountPaceMs: Math.round(e.REGISTRE_ACCOUNT_PACE_SECONDS * 1000),
    redisKeyPrefix: e.REDIS_KEY_PREFIX,
    contexts: e.REGISTRE_CONTEXTS,
  };
}
