/**
 * The capacity planner's arithmetic: does a mix of tasks fit a server, what
 * it costs in vCPU, RAM and Gemini quota, and which mix gives the most
 * documents per hour. Pure: `plan.ts` is the command around it.
 *
 * The per-task vCPU and RAM come from the same profiles the ledger enforces
 * (`parseCapacityConfig`), so the planner can never disagree with dispatch.
 */
import { fromMilli, parseCapacityConfig, toMilli, type CapacityConfig } from "../supabase/functions/_shared/capacity-config.ts";
import { ocrKindModels } from "../supabase/functions/_shared/gemini-config.ts";
import { JOB_KINDS, type JobKind } from "../supabase/functions/_shared/job-kinds.ts";

/**
 * What one document costs each kind of task (seed 003 and domain.md §3).
 * The registre time is our assumption: the seeds give none. A fetch is a
 * search, a result page that the site is slow to build, and a download, with
 * the login reused across documents; 60 s sits between the 30 s navigation
 * timeout the earlier system needed and results that "can take minutes".
 */
export const DOCUMENT_COSTS = {
  registre: { seconds: 60, geminiCalls: 0, geminiTokens: 0 },
  /** A 10-page index: ≈20 calls (line counts and extraction per page, the boost) and ≈161K tokens in ≈3 min. */
  "index-ocr": { seconds: 180, geminiCalls: 20, geminiTokens: 161_000 },
  /** An acte: 3 calls (upload, extraction, boost) and ≈101K tokens in ≈25 s. */
  "acte-ocr": { seconds: 25, geminiCalls: 3, geminiTokens: 101_000 },
} as const satisfies Record<JobKind, { seconds: number; geminiCalls: number; geminiTokens: number }>;

/**
 * The request mix the recommendation serves: equal numbers of index, acte
 * and plan requests. Every request is fetched by a registre task; only index
 * and acte requests are OCRed (plans are not).
 */
export const REQUEST_SHARES = { index: 1 / 3, acte: 1 / 3, plan_cadastraux: 1 / 3 } as const;

export type TaskMix = Record<JobKind, number>;

/** One busy worker's steady use of the shared Gemini quota, and its throughput. */
export interface WorkerRate {
  readonly documentsPerHour: number;
  readonly geminiRpm: number;
  readonly geminiTpm: number;
}

export function workerRates(): Record<JobKind, WorkerRate> {
  const rates = {} as Record<JobKind, WorkerRate>;
  for (const kind of JOB_KINDS) {
    const cost = DOCUMENT_COSTS[kind];
    const perMinute = 60 / cost.seconds;
    rates[kind] = { documentsPerHour: 3600 / cost.seconds, geminiRpm: cost.geminiCalls * perMinute, geminiTpm: cost.geminiTokens * perMinute };
  }
  return rates;
}

/** A server size; what is left out keeps its environment value (or default). */
export interface ServerSize {
  readonly vcpu?: number;
  readonly ramGb?: number;
  /** Percent of both vCPU and RAM never leased. */
  readonly reservePercent?: number;
}

export interface MixEvaluation {
  readonly mix: TaskMix;
  readonly fits: boolean;
  /** Why it does not fit, one line per budget exceeded (empty when it fits). */
  readonly overBy: readonly string[];
  readonly vcpu: { readonly used: number; readonly available: number };
  readonly ramGb: { readonly used: number; readonly available: number };
  readonly gemini: {
    readonly rpm: number;
    readonly rpmLimit: number;
    readonly tpm: number;
    readonly tpmLimit: number;
    /** The model whose limits these are (see tightestGeminiLimits). */
    readonly model: string;
  };
  /** Requests of the assumed mix taken through every stage per hour, and the stage that limits it. */
  readonly documentsPerHour: number;
  readonly bottleneck: JobKind | null;
}

/**
 * The budgets for a server size: the configured profiles and Gemini limits
 * (environment variables, as dispatch reads them) with the server's size and
 * reserve replaced. Throws CapacityConfigError when a single task of some
 * kind cannot fit (the same check dispatch makes at start).
 */
export function budgetFor(server: ServerSize, env: Record<string, string | undefined>): CapacityConfig {
  const overrides: Record<string, string> = {};
  if (server.vcpu !== undefined) overrides["SERVER_MAX_CPU"] = String(server.vcpu);
  if (server.ramGb !== undefined) overrides["SERVER_MAX_RAM"] = String(server.ramGb);
  if (server.reservePercent !== undefined) {
    overrides["SERVER_RESERVE_CPU_PERCENT"] = String(server.reservePercent);
    overrides["SERVER_RESERVE_RAM_PERCENT"] = String(server.reservePercent);
  }
  return parseCapacityConfig({ ...env, ...overrides });
}

export function evaluateMix(config: CapacityConfig, mix: TaskMix): MixEvaluation {
  const rates = workerRates();
  let vcpuMilli = 0;
  let ramMilli = 0;
  let rpm = 0;
  let tpm = 0;
  const overBy: string[] = [];
  for (const kind of JOB_KINDS) {
    const count = mix[kind];
    const profile = config.profiles[kind];
    vcpuMilli += count * toMilli(profile.vcpu);
    ramMilli += count * toMilli(profile.ramGb);
    rpm += count * rates[kind].geminiRpm;
    tpm += count * rates[kind].geminiTpm;
    if (profile.maxTasks !== null && count > profile.maxTasks) overBy.push(`${kind}: ${count} tasks > ${profile.maxTasks} allowed`);
  }
  const vcpuAvailable = toMilli(config.capacity.vcpu);
  const ramAvailable = toMilli(config.capacity.ramGb);
  if (vcpuMilli > vcpuAvailable) overBy.push(`vCPU: ${fromMilli(vcpuMilli)} > ${fromMilli(vcpuAvailable)}`);
  if (ramMilli > ramAvailable) overBy.push(`RAM: ${fromMilli(ramMilli)} GB > ${fromMilli(ramAvailable)} GB`);
  const gemini = tightestGeminiLimits(config);
  if (rpm > gemini.rpm) overBy.push(`Gemini RPM: ${round(rpm, 1)} > ${gemini.rpm} (${gemini.model})`);
  if (tpm > gemini.tpm) overBy.push(`Gemini TPM: ${Math.round(tpm)} > ${gemini.tpm} (${gemini.model})`);
  const flow = pipelineThroughput(mix);
  return {
    mix,
    fits: overBy.length === 0,
    overBy,
    vcpu: { used: fromMilli(vcpuMilli), available: fromMilli(vcpuAvailable) },
    ramGb: { used: fromMilli(ramMilli), available: fromMilli(ramAvailable) },
    gemini: { rpm: round(rpm, 1), rpmLimit: gemini.rpm, tpm: Math.round(tpm), tpmLimit: gemini.tpm, model: gemini.model },
    documentsPerHour: round(flow.documentsPerHour, 1),
    bottleneck: flow.bottleneck,
  };
}

/**
 * The Gemini quota is per model, and the seeds' per-worker rates do not say
 * which call goes to which model. Counting every call and token against the
 * smallest RPM and the smallest TPM among the models OCR calls is the safe
 * side: no model can see more than that.
 */
export function tightestGeminiLimits(config: CapacityConfig): { rpm: number; tpm: number; model: string } {
  const used = [...new Set(Object.values(ocrKindModels(config.gemini)).flat())];
  let rpm = { value: Number.POSITIVE_INFINITY, model: "" };
  let tpm = { value: Number.POSITIVE_INFINITY, model: "" };
  for (const model of used) {
    const limits = config.gemini.limits[model];
    if (limits === undefined) continue;
    if (limits.rpm < rpm.value) rpm = { value: limits.rpm, model };
    if (limits.tpm < tpm.value) tpm = { value: limits.tpm, model };
  }
  // Equal limits: name one model rather than two.
  if (config.gemini.limits[rpm.model]?.tpm === tpm.value) tpm = { value: tpm.value, model: rpm.model };
  const model = rpm.model === tpm.model ? rpm.model : `${rpm.model} RPM, ${tpm.model} TPM`;
  return { rpm: rpm.value, tpm: tpm.value, model };
}

/**
 * Requests per hour of the assumed mix that get through every stage at
 * once: each stage can carry its workers' rate divided by the share of
 * requests that need it; the slowest stage sets the pace.
 */
function pipelineThroughput(mix: TaskMix): { documentsPerHour: number; bottleneck: JobKind | null } {
  const rates = workerRates();
  const need: Record<JobKind, number> = { registre: 1, "index-ocr": REQUEST_SHARES.index, "acte-ocr": REQUEST_SHARES.acte };
  let best = Number.POSITIVE_INFINITY;
  let bottleneck: JobKind | null = null;
  for (const kind of JOB_KINDS) {
    if (need[kind] === 0) continue;
    const carried = (mix[kind] * rates[kind].documentsPerHour) / need[kind];
    if (carried < best) {
      best = carried;
      bottleneck = kind;
    }
  }
  return { documentsPerHour: best, bottleneck };
}

/**
 * The mix with the most documents per hour among those that fit every
 * budget. Ties go to the mix that uses more of the budget (spare OCR workers
 * absorb long indexes and bursts), then to more index workers (the slowest
 * OCR). When no mix can run every stage at once (a small server), the one
 * fetching the most comes first: dispatch then runs OCR whenever the
 * registre tasks are idle (priority 10 over 5).
 */
export function recommendMix(config: CapacityConfig): MixEvaluation {
  const most = (kind: JobKind) => {
    const profile = config.profiles[kind];
    const byCompute = Math.min(
      Math.floor(toMilli(config.capacity.vcpu) / toMilli(profile.vcpu)),
      Math.floor(toMilli(config.capacity.ramGb) / toMilli(profile.ramGb)),
    );
    return profile.maxTasks === null ? byCompute : Math.min(byCompute, profile.maxTasks);
  };
  let best: MixEvaluation | undefined;
  for (let registre = 0; registre <= most("registre"); registre += 1) {
    for (let index = 0; index <= most("index-ocr"); index += 1) {
      for (let acte = 0; acte <= most("acte-ocr"); acte += 1) {
        const candidate = evaluateMix(config, { registre, "index-ocr": index, "acte-ocr": acte });
        if (!candidate.fits) break; // more acte tasks only use more
        if (best === undefined || better(candidate, best)) best = candidate;
      }
    }
  }
  // The empty mix always fits, so `best` is set.
  return best ?? evaluateMix(config, { registre: 0, "index-ocr": 0, "acte-ocr": 0 });
}

function better(a: MixEvaluation, b: MixEvaluation): boolean {
  // The registre count only matters when nothing completes (0 documents/h for both).
  const rank = (m: MixEvaluation) => [m.documentsPerHour, m.documentsPerHour === 0 ? m.mix.registre : 0, m.vcpu.used, m.mix["index-ocr"]];
  const ra = rank(a);
  const rb = rank(b);
  for (let i = 0; i < ra.length; i += 1) {
    const x = ra[i] ?? 0;
    const y = rb[i] ?? 0;
    if (x !== y) return x > y;
  }
  return false;
}

function round(value: number, digits: number): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}
