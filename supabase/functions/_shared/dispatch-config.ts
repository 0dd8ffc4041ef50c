import { z } from "zod";
import { parseCapacityConfig, type CapacityConfig } from "./capacity-config.ts";
import { parseEcsConfig, type EcsConfig } from "./ecs-client.ts";
import { ENVIRONMENTS, type Environment } from "./environments.ts";
import type { OcrKind } from "./dispatch-plan.ts";
import { DEFAULT_JOBS_PER_TASK, type JobKind } from "./job-kinds.ts";
import { setValues } from "./env-values.ts";
import { errorMessage } from "./error-message.ts";

/** Everything the dispatch function reads from its environment, parsed once at load. */
export interface DispatchConfig {
  readonly dispatchSecret: string;
  readonly databaseUrl: string;
  readonly upstash: { readonly url: string; readonly token: string };
  readonly environment: Environment;
  readonly weights: Readonly<Record<Environment, number>>;
  readonly tokensPerTask: Readonly<Record<OcrKind, number>>;
  /** Jobs one task runs at once, per kind (the runners' slots). */
  readonly jobsPerTask: Readonly<Record<JobKind, number>>;
  readonly redisKeyPrefix: string;
  readonly capacity: CapacityConfig;
  readonly ecs: EcsConfig;
}

export class DispatchConfigError extends Error {
  override readonly name = "DispatchConfigError";
}

const weights = z
  .string()
  .regex(/^(\s*(dev|staging|prod)\s*=\s*\d+(\.\d+)?\s*)(,\s*(dev|staging|prod)\s*=\s*\d+(\.\d+)?\s*)*$/, {
    error: "must look like prod=3,staging=2,dev=1",
  })
  .transform((text) => {
    const result: Record<Environment, number> = { prod: 3, staging: 2, dev: 1 };
    for (const pair of text.split(",")) {
      const [name, value] = pair.split("=").map((part) => part.trim());
      if (name && value && (ENVIRONMENTS as readonly string[]).includes(name)) result[name as Environment] = Number(value);
    }
    return result;
  });

const schema = z.object({
  /** The key of the signature every caller (pg_net hint, pg_cron tick) must present (hint-signature.ts). At least 32 characters. */
  DISPATCH_SECRET: z.string().min(32, { error: "must be at least 32 characters" }),
  /** Injected by Supabase: the transaction pooler URL. */
  SUPABASE_DB_URL: z.string().regex(/^postgres(ql)?:\/\//, { error: "must be a postgres:// URL" }),
  /**
   * A login in role `dispatcher` (migration 20261205030600), which can only
   * read the backlog and record started tasks; wins over SUPABASE_DB_URL
   * (the `postgres` role). A separate name because Supabase reserves the
   * SUPABASE_ prefix for its own secrets (supabase/supabase#29661).
   */
  DISPATCH_DATABASE_URL: z.string().regex(/^postgres(ql)?:\/\//, { error: "must be a postgres:// URL" }).optional(),
  UPSTASH_REDIS_REST_URL: z.url({ error: "must be the database's REST URL" }),
  UPSTASH_REDIS_REST_TOKEN: z.string().min(1, { error: "must be set" }),
  /** Which Supabase project this function serves. */
  ENVIRONMENT: z.enum(ENVIRONMENTS, { error: `must be one of ${ENVIRONMENTS.join(", ")}` }),
  /** Shares of the common capacity when several environments wait. @default "prod=3,staging=2,dev=1" */
  DISPATCH_WEIGHTS: weights.prefault("prod=3,staging=2,dev=1"),
  /**
   * Gemini input tokens per minute one index OCR task sends to its fast model
   * (GEMINI_FAST_MODEL; the dispatch gate checks them there). @default 54000: a
   * 10-page index is ≈161K tokens over ≈3 minutes (seed 003).
   */
  GEMINI_TPM_PER_INDEX_TASK: z.coerce.number().int().positive().default(54_000),
  /** Input tokens per minute one acte OCR task sends to its fast model. @default 243000: an acte is ≈101K tokens in ≈25 s (seed 003). */
  GEMINI_TPM_PER_ACTE_TASK: z.coerce.number().int().positive().default(243_000),
  /**
   * Documents one registre task fetches at once: the runners' REGISTRE_CONTEXTS
   * (set both the same). @default 3 (DEFAULT_JOBS_PER_TASK)
   */
  REGISTRE_CONTEXTS: z.coerce.number().int().min(1).max(8).optional(),
  /** Prefix of every Redis key; budgets are shared only among processes with the same prefix. @default "" */
  REDIS_KEY_PREFIX: z.string().regex(/^[A-Za-z0-9:_-]*$/, { error: "may hold only letters, digits, ':', '_' and '-'" }).default(""),
});

export function parseDispatchConfig(env: Record<string, string | undefined>): DispatchConfig {
  const values = setValues(env);
  const input: Record<string, string | undefined> = Object.fromEntries(Object.keys(schema.shape).map((name) => [name, values[name]]));
  const parsed = schema.safeParse(input);
  const problems = parsed.success
    ? []
    : parsed.error.issues.map((issue) => `${String(issue.path[0])} ${input[String(issue.path[0])] === undefined ? "is missing" : issue.message}`);
  let capacity: CapacityConfig | undefined;
  let ecs: EcsConfig | undefined;
  try {
    capacity = parseCapacityConfig(env);
  } catch (error) {
    problems.push(errorMessage(error));
  }
  try {
    ecs = parseEcsConfig(env);
  } catch (error) {
    problems.push(errorMessage(error));
  }
  if (!parsed.success || !capacity || !ecs || problems.length > 0) {
    throw new DispatchConfigError(`dispatch configuration is invalid: ${problems.join("; ")}`);
  }
  const config = parsed.data;
  return {
    dispatchSecret: config.DISPATCH_SECRET,
    databaseUrl: config.DISPATCH_DATABASE_URL ?? config.SUPABASE_DB_URL,
    upstash: { url: config.UPSTASH_REDIS_REST_URL, token: config.UPSTASH_REDIS_REST_TOKEN },
    environment: config.ENVIRONMENT,
    weights: config.DISPATCH_WEIGHTS,
    tokensPerTask: { "index-ocr": config.GEMINI_TPM_PER_INDEX_TASK, "acte-ocr": config.GEMINI_TPM_PER_ACTE_TASK },
    jobsPerTask: { ...DEFAULT_JOBS_PER_TASK, registre: config.REGISTRE_CONTEXTS ?? DEFAULT_JOBS_PER_TASK.registre },
    redisKeyPrefix: config.REDIS_KEY_PREFIX,
    capacity,
    ecs,
  };
}
