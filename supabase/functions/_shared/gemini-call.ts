import type { Admission, GeminiBudgetName, GeminiRateBudget } from "./gemini-rate-budget.ts";

/**
 * The one way to call Gemini: every call waits for the shared budget first,
 * charges what it really used afterwards, and turns a 429 into a cooldown that
 * every worker honours. Types are structural so this module needs nothing from
 * `@google/genai`: `ApiError` carries `status` and a `message` that is the
 * JSON error body, whose `details` hold `google.rpc.RetryInfo.retryDelay`.
 */

export interface GeminiBudgetRequest {
  /** Tokens the call is expected to use (prompt and answer), counted before it runs. */
  readonly estimatedTokens: number;
  /** Longest wait for the budget before giving up with `GeminiBudgetTimeoutError`. @default 120_000 */
  readonly maxWaitMs?: number;
  /** Stops the wait early (a runner draining on SIGTERM); the call is then not made. */
  readonly signal?: AbortSignal;
}

/** The budget stayed exhausted for longer than the caller would wait. Retryable: the budget refills. */
export class GeminiBudgetTimeoutError extends Error {
  override readonly name = "GeminiBudgetTimeoutError";
  readonly retryable = true;
  constructor(
    readonly blockedBy: GeminiBudgetName,
    readonly waitedMs: number,
    detail: string,
  ) {
    super(`Gemini ${BUDGET_NAMES[blockedBy]} still exhausted after waiting ${waitedMs} ms: ${detail}`);
  }
}

/** Gemini answered 429. Retryable; every caller now waits out `cooldownMs`. */
export class GeminiRateLimitedError extends Error {
  override readonly name = "GeminiRateLimitedError";
  readonly retryable = true;
  readonly status = 429;
  constructor(
    readonly cooldownMs: number,
    readonly retryDelay: string | undefined,
    options: { cause: unknown },
  ) {
    super(
      `Gemini answered 429 (quota exhausted); all callers pause for ${cooldownMs} ms` +
        (retryDelay === undefined ? " (no retryDelay given: backing off)" : ` (retryDelay ${retryDelay})`),
      options,
    );
  }
}

const BUDGET_NAMES: Record<GeminiBudgetName, string> = {
  cooldown: "429 cooldown",
  rpm: "requests-per-minute budget",
  tpm: "tokens-per-minute budget",
};

/** Spread callers that wake at the same window boundary, so they do not all retry in the same millisecond. */
const MAX_JITTER_MS = 250;
/** Floor on a wait, so a window that just ended does not turn the loop into a busy spin. */
const MIN_WAIT_MS = 10;

export async function withGeminiBudget<T>(
  budget: GeminiRateBudget,
  request: GeminiBudgetRequest,
  call: () => Promise<T>,
): Promise<T> {
  const { estimatedTokens, maxWaitMs = 120_000, signal } = request;
  if (estimatedTokens > budget.limits.tpmLimit) {
    // Not retryable: no window will ever hold it. Split the request or raise GEMINI_TPM_LIMIT.
    throw new RangeError(`a Gemini call estimated at ${estimatedTokens} tokens can never fit the ${budget.limits.tpmLimit}-token budget`);
  }
  const admittedTokens = Math.ceil(estimatedTokens);
  await waitForAdmission(budget, admittedTokens, maxWaitMs, signal);

  let response: T;
  try {
    response = await call();
  } catch (error) {
    if (!isRateLimited(error)) throw error;
    const retryDelay = retryDelayOf(error);
    const cooldownMs = await budget.recordRateLimited(retryDelay);
    throw new GeminiRateLimitedError(cooldownMs, retryDelay, { cause: error });
  }
  const actual = totalTokensOf(response);
  // A smaller actual count is not refunded: the window it was admitted in may already be over.
  if (actual !== undefined && actual > admittedTokens) await budget.charge(actual - admittedTokens);
  return response;
}

async function waitForAdmission(budget: GeminiRateBudget, tokens: number, maxWaitMs: number, signal: AbortSignal | undefined): Promise<void> {
  const startedAt = Date.now();
  const jitterSpan = Math.min(MAX_JITTER_MS, budget.windowMs / 20);
  for (;;) {
    signal?.throwIfAborted();
    const admission: Admission = await budget.tryAdmit(tokens);
    if (admission.admitted) return;
    const waited = Date.now() - startedAt;
    const left = maxWaitMs - waited;
    if (left <= 0) throw new GeminiBudgetTimeoutError(admission.blockedBy, waited, admission.detail);
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

/** `usageMetadata.totalTokenCount` of a generateContent-like response, when it has one. */
export function totalTokensOf(response: unknown): number | undefined {
  if (typeof response !== "object" || response === null || !("usageMetadata" in response)) return undefined;
  const usage = response.usageMetadata;
  if (typeof usage !== "object" || usage === null || !("totalTokenCount" in usage)) return undefined;
  return typeof usage.totalTokenCount === "number" ? usage.totalTokenCount : undefined;
}

/** An `ApiError`-like with HTTP status 429 (`@google/genai` sets `status`; the REST body says `code`). */
export function isRateLimited(error: unknown): boolean {
  if (typeof error !== "object" || error === null) return false;
  if ("status" in error && error.status === 429) return true;
  return "code" in error && error.code === 429;
}

const RETRY_INFO_TYPE = "type.googleapis.com/google.rpc.RetryInfo";

/**
 * The `retryDelay` of the RetryInfo detail in a Gemini error. `@google/genai`
 * puts the whole JSON body in `message`:
 * `{"error":{"code":429,…,"details":[{"@type":"…google.rpc.RetryInfo","retryDelay":"53s"}]}}`.
 */
export function retryDelayOf(error: unknown): string | undefined {
  if (typeof error !== "object" || error === null) return undefined;
  const message = "message" in error && typeof error.message === "string" ? error.message : undefined;
  if (message === undefined) return undefined;
  try {
    const body: unknown = JSON.parse(message);
    const found = findRetryDelay(body);
    if (found !== undefined) return found;
  } catch {
    // Not pure JSON (a wrapper may prefix text): fall through to a search in the text.
  }
  const match = /"@type"\s*:\s*"type\.googleapis\.com\/google\.rpc\.RetryInfo"[^}]*?"retryDelay"\s*:\s*"([^"]+)"/.exec(message);
  return match?.[1];
}

function findRetryDelay(value: unknown): string | undefined {
  if (Array.isArray(value)) {
    for (const item of value) {
      const found = findRetryDelay(item);
      if (found !== undefined) return found;
    }
    return undefined;
  }
  if (typeof value !== "object" || value === null) return undefined;
  if ("@type" in value && value["@type"] === RETRY_INFO_TYPE && "retryDelay" in value && typeof value.retryDelay === "string") {
    return value.retryDelay;
  }
  for (const nested of Object.values(value)) {
    const found = findRetryDelay(nested);
    if (found !== undefined) return found;
  }
  return undefined;
}
