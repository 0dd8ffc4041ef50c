import {
  GeminiModelNotConfiguredError,
  type Admission,
  type AdmittedCall,
  type GeminiBudgetName,
  type GeminiQuotaKind,
  type GeminiRateBudget,
} from "./gemini-rate-budget.ts";

export { GeminiModelNotConfiguredError };

/**
 * The one way to call Gemini's generateContent: every call waits for its
 * model's share of the shared budget first (requests per minute, input
 * tokens per minute, requests per day), reconciles the input tokens Google
 * counted afterwards, and turns a 429 into a cooldown of that model alone, or
 * into a pause until the daily reset when the 429 names the daily quota.
 * Types are structural so this module needs nothing from `@google/genai`:
 * `ApiError` carries `status` and a `message` that is the JSON error body,
 * whose `details` hold `google.rpc.QuotaFailure` and `google.rpc.RetryInfo`.
 */

export interface GeminiBudgetRequest {
  /** The model the call names, as in `generateContent({ model })`; it must have limits in GEMINI_LIMITS. */
  readonly model: string;
  /**
   * Input (prompt) tokens the call sends, counted before it runs: Google's
   * TPM counts input only. `countTokens` where it is cheap, else
   * `estimateInputTokens`. Output tokens are recorded after the call, in the
   * statistics.
   */
  readonly estimatedTokens: number;
  /** Longest wait for the minute budgets or a cooldown before giving up with `GeminiBudgetTimeoutError`. @default 120_000 */
  readonly maxWaitMs?: number;
  /** Stops the wait early (a runner draining on SIGTERM); the call is then not made. */
  readonly signal?: AbortSignal;
}

/** The minute budgets or a cooldown stayed exhausted for longer than the caller would wait. Retryable: they refill. */
export class GeminiBudgetTimeoutError extends Error {
  override readonly name = "GeminiBudgetTimeoutError";
  readonly retryable = true;
  constructor(
    readonly model: string,
    readonly blockedBy: GeminiBudgetName,
    readonly waitedMs: number,
    detail: string,
  ) {
    super(`Gemini ${BUDGET_NAMES[blockedBy]} of ${model} still exhausted after waiting ${waitedMs} ms: ${detail}`);
  }
}

/**
 * The model has no request left today (our daily budget, or Google's 429 for
 * the daily quota): nothing is sent and nothing waits; the model resumes at
 * `resumesAt`, the next midnight Pacific. Retryable, but not before then.
 */
export class GeminiDailyBudgetExhaustedError extends Error {
  override readonly name = "GeminiDailyBudgetExhaustedError";
  readonly retryable = true;
  constructor(
    readonly model: string,
    /** When the model's daily budget resets (ms since epoch). */
    readonly resumesAt: number,
    detail: string,
  ) {
    super(`Gemini requests-per-day budget of ${model} exhausted until ${new Date(resumesAt).toISOString()}: ${detail}`);
  }
}

/** Gemini answered 429. Retryable; every caller of that model now waits out `cooldownMs`. */
export class GeminiRateLimitedError extends Error {
  override readonly name = "GeminiRateLimitedError";
  readonly retryable = true;
  readonly status = 429;
  constructor(
    readonly model: string,
    /** The quota the 429 named (QuotaFailure), or "unknown". */
    readonly quota: GeminiQuotaKind,
    readonly cooldownMs: number,
    readonly retryDelay: string | undefined,
    /** For a daily quota: when the model resumes (ms since epoch). */
    readonly pausedUntil: number | null,
    options: { cause: unknown },
  ) {
    super(
      pausedUntil !== null
        ? `Gemini answered 429 for the daily quota of ${model}; ${model} pauses until ${new Date(pausedUntil).toISOString()}`
        : `Gemini answered 429 (${quota === "unknown" ? "quota not named" : QUOTA_NAMES[quota]}) for ${model}; its callers pause for ${cooldownMs} ms` +
          (retryDelay === undefined ? " (no retryDelay given: backing off)" : ` (retryDelay ${retryDelay})`),
      options,
    );
  }
}

const BUDGET_NAMES: Record<GeminiBudgetName, string> = {
  cooldown: "429 cooldown",
  rpm: "requests-per-minute budget",
  tpm: "input-tokens-per-minute budget",
  rpd: "requests-per-day budget",
};

const QUOTA_NAMES: Record<Exclude<GeminiQuotaKind, "unknown">, string> = {
  rpm: "requests per minute",
  tpm: "input tokens per minute",
  rpd: "requests per day",
};

/** Spread callers that wake at the same window boundary, so they do not all retry in the same millisecond. */
const MAX_JITTER_MS = 250;
/** Floor on a wait, so a window that just ended does not turn the loop into a busy spin. */
const MIN_WAIT_MS = 10;

export async function withGeminiBudget<T>(budget: GeminiRateBudget, request: GeminiBudgetRequest, call: () => Promise<T>): Promise<T> {
  const { model, estimatedTokens, maxWaitMs = 120_000, signal } = request;
  const slice = budget.sliceLimitsOf(model); // GeminiModelNotConfiguredError: never sent unmetered
  const inputTokens = Math.ceil(estimatedTokens);
  if (inputTokens > slice.tpm) {
    // Not retryable: no slice of the minute will ever hold it. Split the request or raise the model's tpm in GEMINI_LIMITS.
    throw new RangeError(`a ${model} call estimated at ${inputTokens} input tokens can never fit its ${slice.tpm}-token budget per ${budget.windowMs} ms`);
  }
  const admission = await waitForAdmission(budget, model, inputTokens, maxWaitMs, signal);

  let response: T;
  try {
    response = await call();
  } catch (error) {
    if (!isRateLimited(error)) throw error;
    const violation = quotaViolationOf(error);
    // Google names the model whose quota ran out; a name we do not meter falls back to the model we called.
    const cooled = violation.model !== undefined && budget.models.includes(violation.model) ? violation.model : model;
    const retryDelay = retryDelayOf(error);
    const { cooldownMs, pausedUntil } = await budget.recordRateLimited(cooled, violation.quota, retryDelay);
    throw new GeminiRateLimitedError(cooled, violation.quota, cooldownMs, retryDelay, pausedUntil, { cause: error });
  }
  await budget.settle(admission, usageOf(response));
  return response;
}

async function waitForAdmission(budget: GeminiRateBudget, model: string, tokens: number, maxWaitMs: number, signal: AbortSignal | undefined): Promise<AdmittedCall> {
  const startedAt = Date.now();
  const jitterSpan = Math.min(MAX_JITTER_MS, budget.windowMs / 20);
  for (;;) {
    signal?.throwIfAborted();
    const admission: Admission = await budget.tryAdmit(model, tokens);
    if (admission.admitted) return admission;
    // Hours until midnight Pacific: waiting would only hold a task; say so at once.
    if (admission.blockedBy === "rpd") throw new GeminiDailyBudgetExhaustedError(model, admission.resumesAt ?? Date.now() + admission.retryInMs, admission.detail);
    const waited = Date.now() - startedAt;
    const left = maxWaitMs - waited;
    if (left <= 0) throw new GeminiBudgetTimeoutError(model, admission.blockedBy, waited, admission.detail);
    await sleep(Math.min(left, Math.max(MIN_WAIT_MS, admission.retryInMs + Math.random() * jitterSpan)), signal);
  }
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * Tokens of a generateContent-like response as Google counts them:
 * `promptTokenCount` is the input (what TPM counts); candidates and thoughts
 * are the output (billed, not rate-limited by TPM).
 */
export function usageOf(response: unknown): { inputTokens?: number; outputTokens?: number } {
  if (typeof response !== "object" || response === null || !("usageMetadata" in response)) return {};
  const usage = response.usageMetadata;
  if (typeof usage !== "object" || usage === null) return {};
  const count = (name: string): number | undefined => {
    const value: unknown = (usage as Record<string, unknown>)[name];
    return typeof value === "number" && Number.isFinite(value) && value >= 0 ? value : undefined;
  };
  const candidates = count("candidatesTokenCount");
  const thoughts = count("thoughtsTokenCount");
  return {
    inputTokens: count("promptTokenCount"),
    outputTokens: candidates === undefined && thoughts === undefined ? undefined : (candidates ?? 0) + (thoughts ?? 0),
  };
}

/**
 * A documented estimate of a prompt's input tokens when `countTokens` is not
 * worth its round trip, as Google counts them for the model called:
 * - text: about 4 characters per token (ai.google.dev/gemini-api/docs/tokens);
 * - Gemini 3 and later: a fixed budget per image and per PDF page by media
 *   resolution, whatever the pixels (media-resolution docs, "Token counts":
 *   LOW 280, MEDIUM 560, HIGH 1,120, ULTRA_HIGH 2,240; unset, an image 1,120
 *   and a PDF page 560), or the figure measured from the replies'
 *   `promptTokensDetails` (`mediaTokens`, gemini-token-calibration.ts);
 * - older models: 258 per PDF page, 258 per image up to 384 px on both
 *   sides, else 258 per 768×768 tile.
 * Rounded up, plus a 10 % margin, so the estimate errs high (the
 * reconciliation after the call gives back the excess while the window lasts).
 */
export function estimateInputTokens(prompt: {
  readonly textChars?: number;
  readonly pdfPages?: number;
  readonly images?: readonly { readonly width: number; readonly height: number }[];
  /** The model called; without it, the older tile formula (which over-counts Gemini 3 images many times). */
  readonly model?: string;
  /** `generationConfig.mediaResolution` of the call, if set. */
  readonly mediaResolution?: string;
  /** Measured tokens per image / per PDF page for this model and resolution, when known. */
  readonly mediaTokens?: { readonly image?: number; readonly pdfPage?: number };
}): number {
  const text = Math.ceil((prompt.textChars ?? 0) / 4);
  const fixed = prompt.model === undefined ? undefined : mediaTokenBudget(prompt.model, prompt.mediaResolution);
  const perPage = prompt.mediaTokens?.pdfPage ?? fixed?.pdfPage ?? 258;
  const pages = (prompt.pdfPages ?? 0) * perPage;
  const images = (prompt.images ?? []).reduce((sum, { width, height }) => {
    const perImage = prompt.mediaTokens?.image ?? fixed?.image;
    if (perImage !== undefined) return sum + perImage;
    if (width <= 384 && height <= 384) return sum + 258;
    return sum + Math.ceil(width / 768) * Math.ceil(height / 768) * 258;
  }, 0);
  return Math.ceil((text + pages + images) * 1.1);
}

/** Gemini 3's fixed input budget per image and per PDF page at a media resolution (see estimateInputTokens); undefined for older models. */
export function mediaTokenBudget(model: string, mediaResolution: string | undefined): { readonly image: number; readonly pdfPage: number } | undefined {
  if (!/^gemini-(3|[4-9])([.-]|$)/.test(model)) return undefined;
  switch (mediaResolution) {
    case "MEDIA_RESOLUTION_LOW":
      return { image: 280, pdfPage: 280 };
    case "MEDIA_RESOLUTION_MEDIUM":
      return { image: 560, pdfPage: 560 };
    case "MEDIA_RESOLUTION_HIGH":
      return { image: 1_120, pdfPage: 1_120 };
    case "MEDIA_RESOLUTION_ULTRA_HIGH":
      return { image: 2_240, pdfPage: 2_240 };
    default:
      return { image: 1_120, pdfPage: 560 };
  }
}

/** An `ApiError`-like with HTTP status 429 (`@google/genai` sets `status`; the REST body says `code`). */
export function isRateLimited(error: unknown): boolean {
  if (typeof error !== "object" || error === null) return false;
  if ("status" in error && error.status === 429) return true;
  return "code" in error && error.code === 429;
}

const RETRY_INFO_TYPE = "type.googleapis.com/google.rpc.RetryInfo";
const QUOTA_FAILURE_TYPE = "type.googleapis.com/google.rpc.QuotaFailure";

/** The JSON error body `@google/genai` puts in an ApiError's message, if it parses. */
function errorBody(error: unknown): unknown {
  if (typeof error !== "object" || error === null) return undefined;
  const message = "message" in error && typeof error.message === "string" ? error.message : undefined;
  if (message === undefined) return undefined;
  try {
    return JSON.parse(message);
  } catch {
    // Not pure JSON (a wrapper may prefix text): try the first {...} in it.
    const start = message.indexOf("{");
    if (start < 0) return undefined;
    try {
      return JSON.parse(message.slice(start));
    } catch {
      return undefined;
    }
  }
}

/**
 * The `retryDelay` of the RetryInfo detail in a Gemini error. `@google/genai`
 * puts the whole JSON body in `message`:
 * `{"error":{"code":429,…,"details":[{"@type":"…google.rpc.RetryInfo","retryDelay":"53s"}]}}`.
 */
export function retryDelayOf(error: unknown): string | undefined {
  const found = detailsOf(errorBody(error), RETRY_INFO_TYPE).find((detail) => typeof detail.retryDelay === "string");
  if (found && typeof found.retryDelay === "string") return found.retryDelay;
  const message = typeof error === "object" && error !== null && "message" in error && typeof error.message === "string" ? error.message : "";
  const match = /"@type"\s*:\s*"type\.googleapis\.com\/google\.rpc\.RetryInfo"[^}]*?"retryDelay"\s*:\s*"([^"]+)"/.exec(message);
  return match?.[1];
}

/**
 * Which quota a Gemini 429 names, and for which model. The body's
 * `google.rpc.QuotaFailure` lists violations such as
 * `{"quotaMetric":"generativelanguage.googleapis.com/generate_content_paid_tier_input_token_count",
 *   "quotaId":"GenerateContentPaidTierInputTokensPerModelPerMinute-PaidTier2",
 *   "quotaDimensions":{"location":"global","model":"gemini-2.5-flash"},"quotaValue":"3000000"}`
 * (as Gemini answered a Tier 3 project on discuss.ai.google.dev). With several
 * violations the longest wait wins: the day over input tokens over requests.
 */
export function quotaViolationOf(error: unknown): { readonly quota: GeminiQuotaKind; readonly model: string | undefined } {
  const severity: Record<GeminiQuotaKind, number> = { unknown: 0, rpm: 1, tpm: 2, rpd: 3 };
  let worst: { quota: GeminiQuotaKind; model: string | undefined } = { quota: "unknown", model: undefined };
  for (const failure of detailsOf(errorBody(error), QUOTA_FAILURE_TYPE)) {
    const violations = Array.isArray(failure.violations) ? failure.violations : [];
    for (const violation of violations) {
      if (typeof violation !== "object" || violation === null) continue;
      const fields = violation as Record<string, unknown>;
      const quota = quotaKind(String(fields.quotaId ?? ""), String(fields.quotaMetric ?? ""));
      const dimensions = typeof fields.quotaDimensions === "object" && fields.quotaDimensions !== null ? (fields.quotaDimensions as Record<string, unknown>) : {};
      const model = typeof dimensions.model === "string" ? dimensions.model.replace(/^models\//, "") : undefined;
      if (severity[quota] > severity[worst.quota] || (severity[quota] === severity[worst.quota] && worst.model === undefined)) worst = { quota, model: model ?? worst.model };
    }
  }
  return worst;
}

/** Google's quota ids: GenerateRequestsPerDayPerProjectPerModel, GenerateContentInputTokensPerModelPerMinute, GenerateRequestsPerMinutePerProjectPerModel (with tier suffixes). */
export function quotaKind(quotaId: string, quotaMetric: string): GeminiQuotaKind {
  const text = `${quotaId} ${quotaMetric}`.toLowerCase();
  if (text.includes("perday") || text.includes("per_day")) return "rpd";
  if (text.includes("token")) return "tpm";
  if (text.includes("request")) return "rpm";
  return "unknown";
}

function detailsOf(body: unknown, type: string): Record<string, unknown>[] {
  const found: Record<string, unknown>[] = [];
  const visit = (value: unknown): void => {
    if (Array.isArray(value)) {
      for (const item of value) visit(item);
      return;
    }
    if (typeof value !== "object" || value === null) return;
    const record = value as Record<string, unknown>;
    if (record["@type"] === type) found.push(record);
    for (const nested of Object.values(record)) visit(nested);
  };
  visit(body);
  return found;
}
