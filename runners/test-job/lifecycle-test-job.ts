/**
 * The lifecycle test job: a handler that does no registry or OCR work, so
 * tests and the local stack can exercise the real runner lifecycle
 * (run-runner.ts) end to end. It "works" for a set time, honouring the abort
 * signal, then completes the job with a synthetic Storage path (registre) or
 * text (OCR), or fails it with the class of error it was told to throw.
 */
import { setTimeout as delay } from "node:timers/promises";
import { z } from "zod";
import { FinalJobError, InfrastructureError, RetryableJobError } from "../lifecycle/job-errors.ts";
import type { ClaimedJob } from "../lifecycle/job-queue.ts";
import { JOB_KINDS, type JobKind } from "../../supabase/functions/_shared/job-kinds.ts";
import type { GeminiRateBudget } from "../../supabase/functions/_shared/gemini-rate-budget.ts";
import { workLikeOcr } from "./simulated-gemini.ts";
import { RunnerConfigError } from "../lifecycle/runner-config.ts";
import type { JobContext, JobHandler, JobOutcome } from "../lifecycle/run-runner.ts";

export const LIFECYCLE_TEST_FAILURES = ["none", "final", "retryable", "infrastructure"] as const;
export type LifecycleTestFailure = (typeof LIFECYCLE_TEST_FAILURES)[number];

export interface LifecycleTestJobSettings {
  /** How long each job "works", in ms. */
  readonly durationMs: number;
  /** Per kind, in place of `durationMs`: simulates each kind's real duration (scaled down) for the utilization benchmark. */
  readonly durationMsByKind: Readonly<Partial<Record<JobKind, number>>>;
  /** Fail every job with this class of error instead of completing it. */
  readonly failure: LifecycleTestFailure;
  /** Input tokens one index / acte document spends through the shared Gemini budget; none when unset. */
  readonly geminiTokensByKind: Readonly<Partial<Record<"index-ocr" | "acte-ocr", number>>>;
  /** Calls a document's tokens are split into. */
  readonly geminiCalls: number;
  /**
   * Environment variables whose values each job logs, as a careless handler
   * might: lets the redaction tests show a secret that would otherwise appear.
   */
  readonly echoVariables: readonly string[];
}

const milliseconds = z
  .string()
  .regex(/^\d+$/, { error: "must be a whole number of milliseconds" })
  .transform(Number);

const wholeNumber = z
  .string()
  .regex(/^\d+$/, { error: "must be a whole number" })
  .transform(Number);

/** TEST_JOB_DURATION_MS_REGISTRE, TEST_JOB_DURATION_MS_INDEX_OCR, TEST_JOB_DURATION_MS_ACTE_OCR. */
export const durationVariable = (kind: JobKind) => `TEST_JOB_DURATION_MS_${kind.toUpperCase().replace("-", "_")}`;

const lifecycleTestEnvSchema = z.object({
  /** @default 200 */
  TEST_JOB_DURATION_MS: milliseconds.default(200),
  /** One kind's duration, over TEST_JOB_DURATION_MS. @default unset */
  TEST_JOB_DURATION_MS_REGISTRE: milliseconds.optional(),
  TEST_JOB_DURATION_MS_INDEX_OCR: milliseconds.optional(),
  TEST_JOB_DURATION_MS_ACTE_OCR: milliseconds.optional(),
  /** Input tokens one document spends through the Gemini budget (simulated, no model called). @default unset: none */
  TEST_JOB_GEMINI_TOKENS_INDEX_OCR: wholeNumber.optional(),
  TEST_JOB_GEMINI_TOKENS_ACTE_OCR: wholeNumber.optional(),
  /** @default 3 */
  TEST_JOB_GEMINI_CALLS: wholeNumber.default(3),
  /** @default "none" */
  TEST_JOB_FAILURE: z.enum(LIFECYCLE_TEST_FAILURES).default("none"),
  /** Comma-separated variable names each job logs with their values (redaction tests only). @default unset: none */
  TEST_JOB_ECHO_VARIABLES: z.string().regex(/^[A-Z0-9_]+(,[A-Z0-9_]+)*$/, { error: "must be variable names separated by commas" }).optional(),
});

/** Reads TEST_JOB_DURATION_MS, TEST_JOB_DURATION_MS_<KIND> and TEST_JOB_FAILURE (blank counts as unset). */
export function parseLifecycleTestJobSettings(env: Readonly<Record<string, string | undefined>>): LifecycleTestJobSettings {
  const parsed = lifecycleTestEnvSchema.safeParse({
    TEST_JOB_DURATION_MS: env.TEST_JOB_DURATION_MS?.trim() || undefined,
    TEST_JOB_DURATION_MS_REGISTRE: env.TEST_JOB_DURATION_MS_REGISTRE?.trim() || undefined,
    TEST_JOB_DURATION_MS_INDEX_OCR: env.TEST_JOB_DURATION_MS_INDEX_OCR?.trim() || undefined,
    TEST_JOB_DURATION_MS_ACTE_OCR: env.TEST_JOB_DURATION_MS_ACTE_OCR?.trim() || undefined,
    TEST_JOB_GEMINI_TOKENS_INDEX_OCR: env.TEST_JOB_GEMINI_TOKENS_INDEX_OCR?.trim() || undefined,
    TEST_JOB_GEMINI_TOKENS_ACTE_OCR: env.TEST_JOB_GEMINI_TOKENS_ACTE_OCR?.trim() || undefined,
    TEST_JOB_GEMINI_CALLS: env.TEST_JOB_GEMINI_CALLS?.trim() || undefined,
    TEST_JOB_FAILURE: env.TEST_JOB_FAILURE?.trim() || undefined,
    TEST_JOB_ECHO_VARIABLES: env.TEST_JOB_ECHO_VARIABLES?.trim() || undefined,
  });
  if (!parsed.success) {
    const variables = parsed.error.issues.map((issue) => String(issue.path[0]));
    const problems = parsed.error.issues.map((issue) => `${String(issue.path[0])} ${issue.message}`);
    throw new RunnerConfigError(variables, `Invalid lifecycle test job configuration: ${problems.join("; ")}`);
  }
  const durationMsByKind: Partial<Record<JobKind, number>> = {};
  for (const kind of JOB_KINDS) {
    const value = parsed.data[durationVariable(kind) as "TEST_JOB_DURATION_MS_REGISTRE"];
    if (value !== undefined) durationMsByKind[kind] = value;
  }
  const geminiTokensByKind: Partial<Record<"index-ocr" | "acte-ocr", number>> = {};
  if (parsed.data.TEST_JOB_GEMINI_TOKENS_INDEX_OCR !== undefined) geminiTokensByKind["index-ocr"] = parsed.data.TEST_JOB_GEMINI_TOKENS_INDEX_OCR;
  if (parsed.data.TEST_JOB_GEMINI_TOKENS_ACTE_OCR !== undefined) geminiTokensByKind["acte-ocr"] = parsed.data.TEST_JOB_GEMINI_TOKENS_ACTE_OCR;
  return {
    durationMs: parsed.data.TEST_JOB_DURATION_MS,
    durationMsByKind,
    failure: parsed.data.TEST_JOB_FAILURE,
    geminiTokensByKind,
    geminiCalls: parsed.data.TEST_JOB_GEMINI_CALLS,
    echoVariables: parsed.data.TEST_JOB_ECHO_VARIABLES?.split(",") ?? [],
  };
}

/** Storage buckets by document source, and object names as the registre runner writes them. */
const BUCKETS = { index: "index", acte: "actes", plan_cadastraux: "plans-cadastraux" } as const;
const objectNamePart = (part: string) => part.replace(/[^A-Za-z0-9_-]/g, "_");

/** The shared Gemini budget and the model the simulated calls name; without it no tokens are spent. */
export interface SimulatedGemini {
  readonly budget: GeminiRateBudget;
  readonly model: string;
}

export function lifecycleTestJobHandler(settings: LifecycleTestJobSettings, gemini?: SimulatedGemini): JobHandler {
  return async (job: ClaimedJob, { signal, log }: JobContext): Promise<JobOutcome> => {
    const durationMs = settings.durationMsByKind[job.kind] ?? settings.durationMs;
    const tokens = job.kind === "registre" ? undefined : settings.geminiTokensByKind[job.kind];
    log.info("lifecycle test job working", { duration_ms: durationMs, ...(tokens === undefined ? {} : { gemini_tokens: tokens }) });
    if (settings.echoVariables.length > 0) {
      log.info("lifecycle test job echoes variables", { echoed: Object.fromEntries(settings.echoVariables.map((name) => [name, process.env[name]])) });
    }
    // Both reject with the abort reason when the runner stops the job, as a real handler's waits would.
    if (tokens !== undefined && gemini !== undefined) {
      await workLikeOcr({ budget: gemini.budget, model: gemini.model, tokens, calls: settings.geminiCalls, durationMs }, signal);
    } else {
      await delay(durationMs, undefined, { signal });
    }
    switch (settings.failure) {
      case "final":
        throw new FinalJobError("lifecycle test: the document does not exist");
      case "retryable":
        throw new RetryableJobError("lifecycle test: the registry answered 503");
      case "infrastructure":
        throw new InfrastructureError("lifecycle test: the browser could not start");
      case "none":
        break;
    }
    if (job.kind === "registre") {
      const name = [job.documentNumberNormalized, job.circonscriptionFonciere, job.cadastre]
        .filter((part): part is string => part !== null)
        .map(objectNamePart)
        .join("-");
      return { kind: "extracted", supabasePath: `${BUCKETS[job.documentSource]}/${name}-${Date.now()}.pdf` };
    }
    const text = `lifecycle test text for job ${job.id}`;
    return { kind: "ocr", fileContent: text, boostedFileContent: text };
  };
}
