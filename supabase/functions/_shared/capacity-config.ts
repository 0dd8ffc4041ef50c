import { z } from "zod";
import { setValues } from "./env-values.ts";
import { errorMessage } from "./error-message.ts";
import { parseGeminiConfig, type GeminiConfig } from "./gemini-config.ts";
import { JOB_KINDS, type JobKind } from "./job-kinds.ts";

/**
 * The shared budgets: how much compute every environment together may hold
 * (the capacity ledger) and how much of the Gemini quota every worker together
 * may spend (the rate budget). Parsed once, at start, from a plain record so
 * the same code reads `Deno.env.toObject()` in the dispatch function and
 * `process.env` in the runners.
 *
 * Every environment (dev, staging, prod) must run with the same values: the
 * budget is one, and each acquirer sends its own view of the limits.
 */

/** One task of a kind: what it reserves in the ledger while it runs. */
export interface KindProfile {
  /** vCPU reserved per task. */
  readonly vcpu: number;
  /** RAM reserved per task, in GB. */
  readonly ramGb: number;
  /** Higher runs first when the dispatcher must choose. */
  readonly priority: number;
  /** Most tasks of this kind at once, all environments together; `null` when only vCPU and RAM limit it. */
  readonly maxTasks: number | null;
}

export interface CapacityConfig {
  /** The budget as configured, before the reserve. */
  readonly server: {
    readonly maxVcpu: number;
    readonly maxRamGb: number;
    readonly reserveVcpuPercent: number;
    readonly reserveRamPercent: number;
  };
  /** What leases may hold at once: max minus reserve. */
  readonly capacity: { readonly vcpu: number; readonly ramGb: number };
  readonly profiles: Readonly<Record<JobKind, KindProfile>>;
  /** A lease not renewed within this many ms expires and its capacity returns. */
  readonly leaseTtlMs: number;
  /** The Gemini models and their per-model quota (gemini-config.ts). */
  readonly gemini: GeminiConfig;
}

/**
 * Amounts are compared in thousandths (milli-vCPU, MB) so that 6.4 − 3 − 1.5 − 1
 * is exactly 0.9 and never 0.8999999999999995: the ledger's Lua script and this
 * module agree to the unit.
 */
export function toMilli(amount: number): number {
  return Math.round(amount * 1000);
}

export function fromMilli(milli: number): number {
  return milli / 1000;
}

/** Capacity left after the reserve, in thousandths, rounded down so rounding never adds capacity. */
export function capacityAfterReserveMilli(max: number, reservePercent: number): number {
  // Percent in hundredths keeps the arithmetic in integers (12.5 % → 1250).
  return Math.floor((toMilli(max) * (10_000 - Math.round(reservePercent * 100))) / 10_000);
}

const decimal = z
  .string()
  .regex(/^\d+(\.\d+)?$/, { error: "must be a plain decimal number such as 8 or 0.75" })
  .transform(Number);
const whole = z
  .string()
  .regex(/^\d+$/, { error: "must be a whole number such as 3" })
  .transform(Number);

const positiveDecimal = (fallback: number) => decimal.pipe(z.number().positive({ error: "must be greater than 0" })).default(fallback);
const percent = (fallback: number) =>
  decimal.pipe(z.number().max(95, { error: "must be at most 95 (percent of the server kept in reserve)" })).default(fallback);
const priority = (fallback: number) => whole.pipe(z.number().min(1, { error: "must be at least 1" })).default(fallback);
const optionalCount = whole.optional();

/** The environment variables this module reads, each with its default. */
const capacityEnvSchema = z.object({
  /**
   * vCPU the tasks of every environment may use together, before the reserve.
   * @default 8: the seed's "typical server" and its `.env` example; after the
   * 20 % reserve it admits one task of each kind at once (5.5 of 6.4 vCPU).
   */
  SERVER_MAX_CPU: positiveDecimal(8),
  /** RAM in GB the tasks may use together, before the reserve. @default 16 (the seed's typical server) */
  SERVER_MAX_RAM: positiveDecimal(16),
  /** Percent of SERVER_MAX_CPU never leased. @default 20 */
  SERVER_RESERVE_CPU_PERCENT: percent(20),
  /** Percent of SERVER_MAX_RAM never leased. @default 20 */
  SERVER_RESERVE_RAM_PERCENT: percent(20),

  /**
   * vCPU per registre task (Chromium). @default 3
   *
   * Kept at 3 vCPU / 1 GB for a task of 3 browser contexts (the runner's
   * REGISTRE_CONTEXTS default, runner-config.ts): `npm run bench -- registre`
   * measured a peak Chromium PSS of 602 MB for 3 contexts with the site's
   * delays (625 MB without; 420-430 MB for one), which with the Node process
   * stays inside 1 GB; with the site's delays the task waits on the registry
   * most of the time, and without them 2 cores already bound it, so 3 vCPU
   * covers 3 contexts. The deploy rounds this to a 4 vCPU / 8 GB Fargate task
   * (infra/runner-sizes.ts), which covers 4 contexts (675-687 MB) as well.
   */
  REGISTRE_VCPU: positiveDecimal(3),
  /** RAM GB per registre task (see REGISTRE_VCPU: 3 contexts measured ≈ 0.6 GB of Chromium). @default 1 */
  REGISTRE_RAM_GB: positiveDecimal(1),
  /** @default 10 */
  REGISTRE_PRIORITY: priority(10),
  /** Most registre tasks at once. @default unset: only vCPU and RAM limit them */
  MAX_REGISTRE_TASKS: optionalCount,

  /** vCPU per index OCR task (rasterize, upscale). @default 1.5 */
  INDEX_OCR_VCPU: positiveDecimal(1.5),
  /** RAM GB per index OCR task. @default 0.75 */
  INDEX_OCR_RAM_GB: positiveDecimal(0.75),
  /** @default 5 */
  INDEX_OCR_PRIORITY: priority(5),
  /** Most index OCR tasks at once. @default unset */
  MAX_INDEX_OCR_TASKS: optionalCount,

  /** vCPU per acte OCR task (upload and Gemini calls). @default 1 */
  ACTE_OCR_VCPU: positiveDecimal(1),
  /** RAM GB per acte OCR task. @default 0.5 */
  ACTE_OCR_RAM_GB: positiveDecimal(0.5),
  /** @default 5 */
  ACTE_OCR_PRIORITY: priority(5),
  /** Most acte OCR tasks at once. @default unset */
  MAX_ACTE_OCR_TASKS: optionalCount,

  /**
   * Seconds a lease lives without renewal. It covers the Fargate cold start
   * (45–90 s) between the dispatcher's acquire and the runner's first renew,
   * while a crashed runner still returns its capacity within minutes.
   * @default 300
   */
  LEDGER_LEASE_TTL_SECONDS: positiveDecimal(300),
  // The Gemini quota is per model: GEMINI_LIMITS, GEMINI_FAST_MODEL and GEMINI_BOOST_MODEL, read by gemini-config.ts.
});

type CapacityEnvName = keyof typeof capacityEnvSchema.shape;
type CapacityEnv = z.infer<typeof capacityEnvSchema>;

/** Environment-variable names of each kind's profile, so errors can name the variable to fix. */
export const KIND_VARIABLES = {
  registre: { vcpu: "REGISTRE_VCPU", ramGb: "REGISTRE_RAM_GB", priority: "REGISTRE_PRIORITY", maxTasks: "MAX_REGISTRE_TASKS" },
  "index-ocr": { vcpu: "INDEX_OCR_VCPU", ramGb: "INDEX_OCR_RAM_GB", priority: "INDEX_OCR_PRIORITY", maxTasks: "MAX_INDEX_OCR_TASKS" },
  "acte-ocr": { vcpu: "ACTE_OCR_VCPU", ramGb: "ACTE_OCR_RAM_GB", priority: "ACTE_OCR_PRIORITY", maxTasks: "MAX_ACTE_OCR_TASKS" },
} as const satisfies Record<JobKind, Record<keyof KindProfile, CapacityEnvName>>;

export class CapacityConfigError extends Error {
  override readonly name = "CapacityConfigError";
}

/**
 * Reads the budgets from `env`. A variable that is unset or blank takes its
 * default (deployment tools often export `NAME=` for "not set"); any other
 * value that does not parse fails here, naming the variable and the value.
 */
export function parseCapacityConfig(env: Record<string, string | undefined>): CapacityConfig {
  const values = setValues(env);
  const input: Partial<Record<CapacityEnvName, string>> = {};
  for (const name of Object.keys(capacityEnvSchema.shape) as CapacityEnvName[]) {
    if (values[name] !== undefined) input[name] = values[name];
  }
  const parsed = capacityEnvSchema.safeParse(input);
  const problems = parsed.success
    ? []
    : parsed.error.issues.map((issue) => {
        const name = String(issue.path[0] ?? "configuration");
        const value = input[name as CapacityEnvName];
        return `${name}=${JSON.stringify(value)} ${issue.message}`;
      });
  let gemini: GeminiConfig | undefined;
  try {
    gemini = parseGeminiConfig(env);
  } catch (error) {
    problems.push(errorMessage(error));
  }
  if (!parsed.success || !gemini || problems.length > 0) {
    throw new CapacityConfigError(`Invalid capacity configuration: ${problems.join("; ")}`);
  }
  return toConfig(parsed.data, gemini);
}

function toConfig(env: CapacityEnv, gemini: GeminiConfig): CapacityConfig {
  const profiles = Object.fromEntries(
    JOB_KINDS.map((kind) => {
      const names = KIND_VARIABLES[kind];
      const profile: KindProfile = {
        vcpu: env[names.vcpu],
        ramGb: env[names.ramGb],
        priority: env[names.priority],
        maxTasks: env[names.maxTasks] ?? null,
      };
      return [kind, profile];
    }),
  ) as Record<JobKind, KindProfile>;

  const capacity = {
    vcpu: fromMilli(capacityAfterReserveMilli(env.SERVER_MAX_CPU, env.SERVER_RESERVE_CPU_PERCENT)),
    ramGb: fromMilli(capacityAfterReserveMilli(env.SERVER_MAX_RAM, env.SERVER_RESERVE_RAM_PERCENT)),
  };

  // A kind whose single task can never fit would wait forever without a word;
  // say so at start instead. A kind capped at 0 is switched off on purpose.
  const unfit: string[] = [];
  for (const kind of JOB_KINDS) {
    const profile = profiles[kind];
    if (profile.maxTasks === 0) continue;
    const names = KIND_VARIABLES[kind];
    const switchOff = `(or set ${names.maxTasks}=0 to switch ${kind} off)`;
    if (toMilli(profile.vcpu) > toMilli(capacity.vcpu)) {
      unfit.push(
        `${names.vcpu}=${profile.vcpu} exceeds the ${capacity.vcpu} vCPU left after the reserve ` +
          `(SERVER_MAX_CPU=${env.SERVER_MAX_CPU}, SERVER_RESERVE_CPU_PERCENT=${env.SERVER_RESERVE_CPU_PERCENT}) ${switchOff}`,
      );
    }
    if (toMilli(profile.ramGb) > toMilli(capacity.ramGb)) {
      unfit.push(
        `${names.ramGb}=${profile.ramGb} exceeds the ${capacity.ramGb} GB left after the reserve ` +
          `(SERVER_MAX_RAM=${env.SERVER_MAX_RAM}, SERVER_RESERVE_RAM_PERCENT=${env.SERVER_RESERVE_RAM_PERCENT}) ${switchOff}`,
      );
    }
  }
  if (unfit.length > 0) throw new CapacityConfigError(`Invalid capacity configuration: ${unfit.join("; ")}`);

  return {
    server: {
      maxVcpu: env.SERVER_MAX_CPU,
      maxRamGb: env.SERVER_MAX_RAM,
      reserveVcpuPercent: env.SERVER_RESERVE_CPU_PERCENT,
      reserveRamPercent: env.SERVER_RESERVE_RAM_PERCENT,
    },
    capacity,
    profiles,
    leaseTtlMs: Math.round(env.LEDGER_LEASE_TTL_SECONDS * 1000),
    gemini,
  };
}
