/**
 * What the OCR runner reads from its environment beyond the lifecycle's
 * variables (runner-config.ts): which engine reads the pages, the Gemini
 * endpoint and patience, and how hard the index pipeline works in parallel.
 * The models and their quotas (GEMINI_FAST_MODEL, GEMINI_BOOST_MODEL,
 * GEMINI_LIMITS) are the shared budget's configuration (gemini-config.ts),
 * read through the runner configuration, so runners and dispatch agree.
 * Parsed once at start; a bad value stops the runner naming the variable,
 * never printing a value (GEMINI_API_KEY is a secret).
 */
import { z } from "zod";
import { setValues } from "../../supabase/functions/_shared/env-values.ts";
import { redisKeyPrefixes } from "../../supabase/functions/_shared/redis-keys.ts";
import { RunnerConfigError } from "../lifecycle/runner-config.ts";
import type { PdfLimits } from "./pdf-layout.ts";
import { DEFAULT_PDF_LIMITS } from "./pdf-pages.ts";

export const OCR_ENGINES = ["gemini", "offline"] as const;
export type OcrEngine = (typeof OCR_ENGINES)[number];

export interface GeminiSettings {
  readonly apiKey: string;
  /** The test server's URL in tests; unset in production (Google's endpoint). */
  readonly baseUrl: string | undefined;
  /** One HTTP attempt gives up after this long and counts as a timeout. */
  readonly callTimeoutMs: number;
  /** Retries of one call after a 5xx, a timeout or a network error, before the job fails. */
  readonly transientRetries: number;
  /** First backoff after a 5xx or a timeout, ms (doubles, with full jitter). */
  readonly backoffBaseMs: number;
  /** Longest wait for the shared budget (or a 429 cooldown) in one call; past it the job is released, no attempt spent. */
  readonly budgetMaxWaitMs: number;
  /** How often `files.get` is asked while an upload is PROCESSING, ms. */
  readonly filePollMs: number;
  /** Longest wait for an upload to become ACTIVE, ms. */
  readonly fileActiveTimeoutMs: number;
  /** Key prefix of the shared Gemini budget (the one dispatch reads). */
  readonly budgetKeyPrefix: string;
}

export interface OcrSettings {
  readonly engine: OcrEngine;
  /** REDIS_KEY_PREFIX, where the Gemini configuration fault lives (gemini-config-fault.ts). */
  readonly redisKeyPrefix: string;
  /** Set when `engine` is "gemini". */
  readonly gemini: GeminiSettings | undefined;
  /** Index pages read at the same time. */
  readonly pageConcurrency: number;
  /** Rasterization resolution. */
  readonly dpi: number;
  /** Upscale factor after rasterization (sharp, lanczos3). */
  readonly upscale: number;
  /** Caps on pages and pixels, checked before any OCR call. */
  readonly limits: PdfLimits;
}

const whole = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, { error: "must be a whole number" })
    .transform(Number)
    .pipe(z.number().min(min, { error: `must be at least ${min}` }).max(max, { error: `must be at most ${max}` }));

const ocrEnvSchema = z.object({
  /** "gemini" or "offline". @default gemini when GEMINI_API_KEY is set, else offline */
  OCR_ENGINE: z.enum(OCR_ENGINES).optional(),
  GEMINI_API_KEY: z.string().min(1).optional(),
  /** @default Google's endpoint */
  GEMINI_BASE_URL: z.url({ error: "must be an http(s):// URL" }).optional(),
  /** @default 180000 (a boost over a 30-page index writes for minutes) */
  GEMINI_CALL_TIMEOUT_MS: whole(100, 600_000).default(180_000),
  /** @default 3 */
  GEMINI_TRANSIENT_RETRIES: whole(0, 10).default(3),
  /** @default 2000 */
  GEMINI_BACKOFF_BASE_MS: whole(1, 60_000).default(2_000),
  /** @default 300000 */
  GEMINI_BUDGET_MAX_WAIT_MS: whole(100, 3_600_000).default(300_000),
  /** @default 1000 */
  GEMINI_FILE_POLL_MS: whole(10, 60_000).default(1_000),
  /** @default 300000 */
  GEMINI_FILE_ACTIVE_TIMEOUT_MS: whole(100, 3_600_000).default(300_000),
  /** @default 6 */
  OCR_PAGE_CONCURRENCY: whole(1, 64).default(6),
  /** @default 300 */
  OCR_DPI: whole(72, 600).default(300),
  /** @default 1 (Gemini resizes to its token budget anyway) */
  OCR_UPSCALE: whole(1, 4).default(1),
  /** Most pages a document may have before any OCR call. @default 300 */
  OCR_MAX_PAGES: whole(1, 100_000).default(DEFAULT_PDF_LIMITS.maxPages),
  /** Most pixels one page is rendered or sent at (the render DPI comes down to fit): bounds memory per page. @default 40000000 */
  OCR_MAX_PAGE_PIXELS: whole(1_000_000, 1_000_000_000).default(DEFAULT_PDF_LIMITS.maxPagePixels),
  /** Most pixels a whole document may come to. @default 2000000000 */
  OCR_MAX_DOCUMENT_PIXELS: whole(1_000_000, 1_000_000_000_000).default(DEFAULT_PDF_LIMITS.maxDocumentPixels),
  /** As runner-config reads it; the Gemini budget lives under `<prefix>gemini`. @default "" */
  REDIS_KEY_PREFIX: z.string().default(""),
});

export function parseOcrSettings(env: Readonly<Record<string, string | undefined>>): OcrSettings {
  const values = setValues(env);
  const input: Record<string, string> = {};
  for (const name of Object.keys(ocrEnvSchema.shape)) if (values[name] !== undefined) input[name] = values[name];
  const parsed = ocrEnvSchema.safeParse(input);
  if (!parsed.success) {
    const variables = parsed.error.issues.map((issue) => String(issue.path[0]));
    const problems = parsed.error.issues.map((issue) => `${String(issue.path[0])} ${issue.message}`);
    throw new RunnerConfigError(variables, `Invalid OCR configuration: ${problems.join("; ")}`);
  }
  const e = parsed.data;
  const engine = e.OCR_ENGINE ?? (e.GEMINI_API_KEY === undefined ? "offline" : "gemini");
  if (engine === "gemini" && e.GEMINI_API_KEY === undefined) {
    throw new RunnerConfigError(["GEMINI_API_KEY"], "Invalid OCR configuration: OCR_ENGINE is gemini but GEMINI_API_KEY is missing");
  }
  return {
    engine,
    redisKeyPrefix: e.REDIS_KEY_PREFIX,
    gemini:
      engine === "gemini" && e.GEMINI_API_KEY !== undefined
        ? {
            apiKey: e.GEMINI_API_KEY,
            baseUrl: e.GEMINI_BASE_URL,
            callTimeoutMs: e.GEMINI_CALL_TIMEOUT_MS,
            transientRetries: e.GEMINI_TRANSIENT_RETRIES,
            backoffBaseMs: e.GEMINI_BACKOFF_BASE_MS,
            budgetMaxWaitMs: e.GEMINI_BUDGET_MAX_WAIT_MS,
            filePollMs: e.GEMINI_FILE_POLL_MS,
            fileActiveTimeoutMs: e.GEMINI_FILE_ACTIVE_TIMEOUT_MS,
            budgetKeyPrefix: redisKeyPrefixes(e.REDIS_KEY_PREFIX).gemini,
          }
        : undefined,
    pageConcurrency: e.OCR_PAGE_CONCURRENCY,
    dpi: e.OCR_DPI,
    upscale: e.OCR_UPSCALE,
    limits: { maxPages: e.OCR_MAX_PAGES, maxPagePixels: e.OCR_MAX_PAGE_PIXELS, maxDocumentPixels: e.OCR_MAX_DOCUMENT_PIXELS },
  };
}
