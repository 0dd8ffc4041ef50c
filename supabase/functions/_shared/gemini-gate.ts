import type { GeminiConfig } from "./gemini-config.ts";
import { ocrKindModels } from "./gemini-config.ts";
import type { GeminiBudgetStatus } from "./gemini-rate-budget.ts";
import type { JobKind } from "./job-kinds.ts";

/**
 * The dispatch plan's Gemini gate, per model as Google counts: an OCR task
 * starts only if every model its kind calls can take calls now (no 429
 * cooldown, requests left today) and its extraction model has the input
 * tokens one task sends in a minute. A task started otherwise could only
 * wait. Pure, so the plan's tests drive it with plain numbers.
 */

type OcrKind = Exclude<JobKind, "registre">;

/** What one model's budget has left, as the dispatcher read it. */
export interface GeminiModelHeadroom {
  /** A 429 cooldown left, ms; 0 when none. */
  readonly cooldownMs: number;
  /** Input tokens left in the current minute window. */
  readonly tokensLeft: number;
  /** Requests left today (0 when a daily-quota 429 paused the model). */
  readonly requestsLeftToday: number;
  /** When the model's day resets (ms since epoch), for the reason given. */
  readonly dayResetsAt: number;
}

export interface GeminiGateInput {
  readonly models: Readonly<Record<string, GeminiModelHeadroom>>;
  /** The models each OCR kind calls; the first is its extraction model, which `tokensPerTask` draws on. */
  readonly kindModels: Readonly<Record<OcrKind, readonly string[]>>;
  /** Input tokens per minute one running task of the kind sends to its extraction model. */
  readonly tokensPerTask: Readonly<Record<OcrKind, number>>;
  /**
   * A Gemini configuration fault an OCR task recorded (gemini-config-fault.ts):
   * a model Google does not serve, a refused key, billing off. While it
   * lasts no OCR task starts: each would fail the same way.
   */
  readonly configFault?: string | null;
}

export type GeminiVerdict = "yes" | "blocked" | "tokens";

export interface GeminiGate {
  /** Why no task of the kind may start at all now (a model cooling down or done for the day), or null. */
  blocked(kind: JobKind): string | null;
  /** Whether `count` more tasks of `kind` may start as far as Gemini is concerned. */
  allows(kind: JobKind, count: number): GeminiVerdict;
  /** Most tasks of `kind` what is left allows. */
  most(kind: JobKind): number;
  /** Whether a set of new tasks fits what is left together. */
  fitsTogether(counts: Readonly<Record<JobKind, number>>): boolean;
  /** Counts `count` more tasks of `kind` against what is left. */
  take(kind: JobKind, count: number): void;
  /** Why one more task of `kind` does not fit, for the plan's `held` lines. */
  shortage(kind: JobKind): string;
}

const UNLIMITED = Number.MAX_SAFE_INTEGER;

export function geminiGate(input: GeminiGateInput): GeminiGate {
  const tokensLeft = new Map(Object.entries(input.models).map(([model, headroom]) => [model, headroom.tokensLeft]));
  const requestsLeft = new Map(Object.entries(input.models).map(([model, headroom]) => [model, headroom.requestsLeftToday]));
  const isOcr = (kind: JobKind): kind is OcrKind => kind !== "registre";
  const extractionModel = (kind: OcrKind) => input.kindModels[kind][0];

  const blocked = (kind: JobKind): string | null => {
    if (!isOcr(kind)) return null;
    if (input.configFault !== undefined && input.configFault !== null) return `gemini: configuration fault (${input.configFault}); no ${kind} task starts until it is fixed`;
    if (input.kindModels[kind].length === 0) return `gemini: ${kind} names no model; no ${kind} task starts`;
    for (const model of input.kindModels[kind]) {
      const headroom = input.models[model];
      if (!headroom) return `gemini: no budget read for ${model}; no ${kind} task starts`;
      if (headroom.cooldownMs > 0) return `gemini: ${model} cooling down after a 429 for ${Math.ceil(headroom.cooldownMs / 1000)} s more; no ${kind} task starts`;
      if (headroom.requestsLeftToday <= 0) {
        return `gemini: ${model} has no request left today; no ${kind} task starts before the reset at ${new Date(headroom.dayResetsAt).toISOString()}`;
      }
    }
    return null;
  };

  /** Tokens and day's requests a set of new tasks needs, per model. */
  const needs = (counts: Readonly<Record<JobKind, number>>) => {
    const tokens = new Map<string, number>();
    const requests = new Map<string, number>();
    for (const kind of Object.keys(input.kindModels) as OcrKind[]) {
      const count = counts[kind];
      if (count <= 0) continue;
      const extraction = extractionModel(kind);
      if (extraction !== undefined) tokens.set(extraction, (tokens.get(extraction) ?? 0) + input.tokensPerTask[kind] * count);
      // Each task makes at least one call to each of its models today.
      for (const model of input.kindModels[kind]) requests.set(model, (requests.get(model) ?? 0) + count);
    }
    return { tokens, requests };
  };

  const fitsTogether = (counts: Readonly<Record<JobKind, number>>): boolean => {
    for (const kind of Object.keys(input.kindModels) as OcrKind[]) if (counts[kind] > 0 && blocked(kind) !== null) return false;
    const { tokens, requests } = needs(counts);
    for (const [model, need] of tokens) if (need > (tokensLeft.get(model) ?? 0)) return false;
    for (const [model, need] of requests) if (need > (requestsLeft.get(model) ?? 0)) return false;
    return true;
  };

  const only = (kind: JobKind, count: number): Record<JobKind, number> => ({ registre: 0, "index-ocr": 0, "acte-ocr": 0, [kind]: count });

  return {
    blocked,
    allows(kind, count) {
      if (!isOcr(kind)) return "yes";
      if (blocked(kind) !== null) return "blocked";
      return fitsTogether(only(kind, count)) ? "yes" : "tokens";
    },
    most(kind) {
      if (!isOcr(kind)) return UNLIMITED;
      if (blocked(kind) !== null) return 0;
      let most = UNLIMITED;
      const extraction = extractionModel(kind);
      const perTask = input.tokensPerTask[kind];
      if (extraction !== undefined && perTask > 0) most = Math.min(most, Math.floor(Math.max(0, tokensLeft.get(extraction) ?? 0) / perTask));
      for (const model of input.kindModels[kind]) most = Math.min(most, Math.max(0, requestsLeft.get(model) ?? 0));
      return most;
    },
    fitsTogether,
    take(kind, count) {
      if (!isOcr(kind) || count <= 0) return;
      const { tokens, requests } = needs(only(kind, count));
      for (const [model, need] of tokens) tokensLeft.set(model, (tokensLeft.get(model) ?? 0) - need);
      for (const [model, need] of requests) requestsLeft.set(model, (requestsLeft.get(model) ?? 0) - need);
    },
    shortage(kind) {
      if (!isOcr(kind)) return `gemini: ${kind} does not call Gemini`;
      const why = blocked(kind);
      if (why !== null) return why;
      const short = input.kindModels[kind].find((model) => (requestsLeft.get(model) ?? 0) <= 0);
      if (short !== undefined) return `gemini: ${short} has too few requests left today for more ${kind} tasks`;
      const model = extractionModel(kind) ?? "(no model)";
      return `gemini: ${Math.max(0, tokensLeft.get(model) ?? 0)} input tokens left this minute on ${model}, a ${kind} task needs ${input.tokensPerTask[kind]}`;
    },
  };
}

/** The gate's input from what the budget reported for the models of both OCR kinds. */
export function geminiGateInput(status: GeminiBudgetStatus, config: GeminiConfig, tokensPerTask: Readonly<Record<OcrKind, number>>, configFault: string | null = null): GeminiGateInput {
  const models: Record<string, GeminiModelHeadroom> = {};
  for (const [model, budget] of Object.entries(status.models)) {
    models[model] = {
      cooldownMs: budget.cooldownRemainingMs,
      // Per minute, like tokensPerTask: the slice's tokens left at the slice's rate.
      tokensLeft: Math.floor(budget.tpm.remaining * (60_000 / status.windowMs)),
      requestsLeftToday: budget.pausedUntil !== null ? 0 : budget.rpd.remaining,
      dayResetsAt: status.dayResetsAt,
    };
  }
  return { models, kindModels: ocrKindModels(config), tokensPerTask, configFault };
}

/** The models the gate reads: those of every OCR kind. */
export function gatedModels(config: GeminiConfig): readonly string[] {
  const kinds = ocrKindModels(config);
  return [...new Set([...kinds["index-ocr"], ...kinds["acte-ocr"]])];
}
