import { z } from "zod";
import { setValues } from "./env-values.ts";

/**
 * Which Gemini models the OCR pipelines call, and the quota of each. Google
 * counts its limits per project and per model (requests per minute, input
 * tokens per minute, requests per day), so the budget does too. Parsed once,
 * at start, by the dispatch function and by every runner (through
 * parseCapacityConfig): the dispatcher gates OCR tasks on the same models and
 * limits the runners then spend.
 */

/** One model's quota, all workers of all environments together. */
export interface ModelLimits {
  /** Requests per minute. */
  readonly rpm: number;
  /** Input tokens per minute (Google's TPM counts the prompt only). */
  readonly tpm: number;
  /** Requests per day, the day ending at midnight Pacific time. */
  readonly rpd: number;
}

export interface GeminiConfig {
  /** Every model a call may name. A model missing here is refused, never sent unmetered. */
  readonly limits: Readonly<Record<string, ModelLimits>>;
  /** The models the OCR pipelines call; both are keys of `limits`. */
  readonly models: {
    /** Counting and first extraction of every page. */
    readonly fast: string;
    /** Second pass on the pages the fast model was unsure of. */
    readonly boost: string;
  };
}

/**
 * The default models, the one place they are named. Checked on 2026-12-05
 * (GEMINI_MODELS_CHECKED_ON) against Google's models page
 * (ai.google.dev/gemini-api/docs/models: stable Gemini 3 models
 * gemini-3.8-flash, gemini-3.7-flash, gemini-3.6-flash, gemini-3.5-flash,
 * gemini-3.5-flash-lite, gemini-3.1-flash-lite) and deprecations page
 * (ai.google.dev/gemini-api/docs/deprecations: gemini-2.5-flash and
 * gemini-2.5-pro shut down; the recommended replacements are
 * gemini-3.5-flash-lite for 2.5 Flash and gemini-3.8-flash for 2.5 Pro; both
 * replacements "No shutdown date announced"). Each role takes Google's
 * replacement of the model it used. Models retire: the OCR runner checks
 * both with models.get at start and stops the pool when one is gone.
 */
export const GEMINI_MODELS_CHECKED_ON = "2026-12-05";
export const DEFAULT_GEMINI_FAST_MODEL = "gemini-3.5-flash-lite";
export const DEFAULT_GEMINI_BOOST_MODEL = "gemini-3.8-flash";

/**
 * 80 % of a Tier 3 project's quota, per model. Google's rate-limits page
 * (ai.google.dev/gemini-api/docs/rate-limits) no longer publishes a table:
 * it sends each project to AI Studio (Dashboard → Rate limit), where the
 * figures of its tier are. Until GEMINI_LIMITS gives those, each role keeps
 * the figures its retired predecessor had on the published Tier 3 table
 * (2.5 Flash 10,000 RPM / 8,000,000 TPM; 2.5 Pro 2,000 RPM / 8,000,000 TPM;
 * RPD from Tier 2's published 100,000 / 50,000), at 80 %: a floor, not a
 * guess above what Google grants. Set GEMINI_LIMITS to the project's figures.
 */
export const DEFAULT_GEMINI_LIMITS: Readonly<Record<string, ModelLimits>> = {
  [DEFAULT_GEMINI_FAST_MODEL]: { rpm: 8_000, tpm: 6_400_000, rpd: 80_000 },
  [DEFAULT_GEMINI_BOOST_MODEL]: { rpm: 1_600, tpm: 6_400_000, rpd: 40_000 },
};

/** The variables this module reads. */
export const GEMINI_VARIABLES = ["GEMINI_LIMITS", "GEMINI_FAST_MODEL", "GEMINI_BOOST_MODEL"] as const;

/** Variables of the single shared bucket this budget replaced; set, they would be silently ignored. */
const RETIRED_VARIABLES = ["GEMINI_RPM_LIMIT", "GEMINI_TPM_LIMIT"] as const;

export class GeminiConfigError extends Error {
  override readonly name = "GeminiConfigError";
}

const count = z.number({ error: "must be a number" }).int({ error: "must be a whole number" }).positive({ error: "must be greater than 0" });
const modelName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, { error: "must be a model name such as gemini-3.5-flash-lite" });
const limitsSchema = z.record(modelName, z.strictObject({ rpm: count, tpm: count, rpd: count }), { error: 'must map model names to {"rpm":…,"tpm":…,"rpd":…}' });

/**
 * Reads the Gemini configuration from `env`. GEMINI_LIMITS, when set, is the
 * whole table: the models it lists are the only ones a call may use. Blank
 * variables take their defaults. Throws GeminiConfigError naming every bad
 * variable at once.
 */
export function parseGeminiConfig(env: Readonly<Record<string, string | undefined>>): GeminiConfig {
  const values = setValues(env);
  const problems: string[] = [];
  for (const name of RETIRED_VARIABLES) {
    if (values[name] !== undefined) problems.push(`${name} is no longer read: Gemini limits are per model now, set them in GEMINI_LIMITS`);
  }

  let limits: Record<string, ModelLimits> = { ...DEFAULT_GEMINI_LIMITS };
  const text = values.GEMINI_LIMITS;
  if (text !== undefined) {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      problems.push(`GEMINI_LIMITS=${JSON.stringify(text)} is not JSON; expected {"${DEFAULT_GEMINI_FAST_MODEL}":{"rpm":8000,"tpm":6400000,"rpd":80000},…}`);
    }
    if (json !== undefined) {
      const parsed = limitsSchema.safeParse(json);
      if (!parsed.success) {
        for (const issue of parsed.error.issues) {
          const where = issue.path.length > 0 ? ` at ${issue.path.map(String).join(".")}` : "";
          problems.push(`GEMINI_LIMITS${where} ${issue.message}`);
        }
      } else if (Object.keys(parsed.data).length === 0) {
        problems.push("GEMINI_LIMITS lists no model");
      } else {
        limits = parsed.data;
      }
    }
  }

  const models = { fast: values.GEMINI_FAST_MODEL ?? DEFAULT_GEMINI_FAST_MODEL, boost: values.GEMINI_BOOST_MODEL ?? DEFAULT_GEMINI_BOOST_MODEL };
  for (const [role, name] of [["GEMINI_FAST_MODEL", models.fast], ["GEMINI_BOOST_MODEL", models.boost]] as const) {
    if (!modelName.safeParse(name).success) problems.push(`${role}=${JSON.stringify(name)} must be a model name such as ${DEFAULT_GEMINI_FAST_MODEL}`);
    else if (!Object.hasOwn(limits, name)) {
      problems.push(`${role}=${name} has no limits in GEMINI_LIMITS (configured: ${Object.keys(limits).join(", ")})`);
    }
  }
  if (problems.length > 0) throw new GeminiConfigError(`Invalid Gemini configuration: ${problems.join("; ")}`);
  return { limits, models };
}

/**
 * The configuration written back as the variables parseGeminiConfig reads,
 * for a deploy that hands every runner task the limits it validated.
 */
export function geminiEnvironment(config: GeminiConfig): Record<string, string> {
  return {
    GEMINI_LIMITS: JSON.stringify(config.limits),
    GEMINI_FAST_MODEL: config.models.fast,
    GEMINI_BOOST_MODEL: config.models.boost,
  };
}

/** The models a job of each OCR kind calls: both kinds extract with the fast model and boost with the strong one. */
export function ocrKindModels(config: GeminiConfig): { readonly "index-ocr": readonly string[]; readonly "acte-ocr": readonly string[] } {
  const models = [...new Set([config.models.fast, config.models.boost])];
  return { "index-ocr": models, "acte-ocr": models };
}
