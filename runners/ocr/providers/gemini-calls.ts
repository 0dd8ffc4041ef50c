/**
 * How the OCR runner talks to Gemini: every generateContent goes through the
 * shared budget (`withGeminiBudget`, the one path), and every failure ends
 * as one of the runner's three classes (job-errors.ts):
 *
 * - 429: the wrapper has set the model's shared cooldown from `retryDelay`;
 *   the call waits it out and tries again, without limit of count, spending
 *   no attempt. Only when the budget stays closed past GEMINI_BUDGET_MAX_WAIT_MS
 *   does the job go back to the queue as an infrastructure failure (quota
 *   trouble is not the document's fault).
 * - the daily quota exhausted: released at once (InfrastructureError).
 * - 5xx and timeouts: retried here with jittered exponential backoff; when
 *   the retries run out, the attempt fails (RetryableJobError).
 * - network trouble (connection refused/reset, DNS): retried likewise; when
 *   the retries run out, released without spending an attempt.
 * - 401/403: the key is wrong: the runner is broken, not the document.
 * - other 4xx: the request is refused as such; one attempt is spent.
 *
 * File API calls (upload, get, delete) are not model calls and count against
 * no generateContent quota, so they do not pass through the budget; they get
 * the same retry and classification.
 */
import { ApiError, type GenerateContentParameters, type GenerateContentResponse, type GoogleGenAI } from "@google/genai";
import {
  GeminiBudgetTimeoutError,
  GeminiDailyBudgetExhaustedError,
  GeminiModelNotConfiguredError,
  GeminiRateLimitedError,
  withGeminiBudget,
} from "../../../supabase/functions/_shared/gemini-call.ts";
import type { GeminiRateBudget } from "../../../supabase/functions/_shared/gemini-rate-budget.ts";
import { delayUnlessAborted, jitteredBackoffMs } from "../../lifecycle/backoff.ts";
import { FinalJobError, InfrastructureError, RetryableJobError } from "../../lifecycle/job-errors.ts";
import type { GeminiSettings } from "../ocr-config.ts";
import type { OcrCallContext } from "./ocr-provider.ts";

export interface GeminiCallStats {
  calls: number;
  rateLimited: number;
  transientRetries: number;
  inputTokens: number;
  outputTokens: number;
}

type Transient = "server" | "timeout" | "network";

export class GeminiCalls {
  readonly stats: GeminiCallStats = { calls: 0, rateLimited: 0, transientRetries: 0, inputTokens: 0, outputTokens: 0 };

  constructor(
    readonly ai: GoogleGenAI,
    readonly budget: GeminiRateBudget,
    readonly settings: GeminiSettings,
  ) {}

  /** One generateContent within the budget; `label` names the call in logs and errors. */
  async generate(label: string, request: GenerateContentParameters, estimatedInputTokens: number, context: OcrCallContext): Promise<GenerateContentResponse> {
    const startedAt = Date.now();
    let failures = 0;
    for (;;) {
      context.signal.throwIfAborted();
      const budgetWaitLeft = this.settings.budgetMaxWaitMs - (Date.now() - startedAt);
      try {
        const response = await withGeminiBudget(
          this.budget,
          { model: request.model, estimatedTokens: estimatedInputTokens, maxWaitMs: Math.max(1, budgetWaitLeft), signal: context.signal },
          () =>
            this.ai.models.generateContent({
              ...request,
              config: { ...request.config, abortSignal: context.signal, httpOptions: { ...request.config?.httpOptions, timeout: this.settings.callTimeoutMs } },
            }),
        );
        this.stats.calls += 1;
        this.stats.inputTokens += response.usageMetadata?.promptTokenCount ?? 0;
        this.stats.outputTokens += response.usageMetadata?.candidatesTokenCount ?? 0;
        return response;
      } catch (error) {
        if (context.signal.aborted) throw context.signal.reason;
        if (error instanceof GeminiRateLimitedError) {
          this.stats.rateLimited += 1;
          if (error.pausedUntil !== null) {
            throw new InfrastructureError(`Gemini ${label}: ${error.message}; the job goes back to the queue`, { cause: error });
          }
          context.log.warn("gemini rate limited: waiting for the shared cooldown", { call: label, model: error.model, cooldown_ms: error.cooldownMs, retry_delay: error.retryDelay });
          if (Date.now() - startedAt + error.cooldownMs > this.settings.budgetMaxWaitMs) {
            throw new InfrastructureError(`Gemini ${label}: quota still exhausted after ${Date.now() - startedAt} ms (${error.message}); the job goes back to the queue`, { cause: error });
          }
          continue; // The next admission waits out the cooldown the wrapper just set.
        }
        if (error instanceof GeminiBudgetTimeoutError || error instanceof GeminiDailyBudgetExhaustedError) {
          throw new InfrastructureError(`Gemini ${label}: ${error.message}; the job goes back to the queue`, { cause: error });
        }
        if (error instanceof GeminiModelNotConfiguredError) throw new InfrastructureError(`Gemini ${label}: ${error.message}`, { cause: error });
        if (error instanceof RangeError) {
          // The wrapper's "can never fit": no window holds this document at the configured quota.
          throw new FinalJobError(`Gemini ${label}: ${error.message}`, { cause: error });
        }
        failures += 1;
        await this.#afterFailure(label, error, failures, context);
      }
    }
  }

  /** A File API call (not metered), with the same retries and classification. */
  async fileCall<T>(label: string, call: () => Promise<T>, context: OcrCallContext): Promise<T> {
    let failures = 0;
    for (;;) {
      context.signal.throwIfAborted();
      try {
        return await call();
      } catch (error) {
        if (context.signal.aborted) throw context.signal.reason;
        failures += 1;
        await this.#afterFailure(label, error, failures, context);
      }
    }
  }

  /** Classifies a failed call: returns after a backoff when it may be retried, else throws the job's error. */
  async #afterFailure(label: string, error: unknown, failures: number, context: OcrCallContext): Promise<void> {
    const transient = transientKind(error);
    const detail = describe(error);
    if (transient === undefined) {
      if (error instanceof ApiError && (error.status === 401 || error.status === 403)) {
        throw new InfrastructureError(`Gemini ${label} refused the API key (${error.status}): check GEMINI_API_KEY`, { cause: error });
      }
      throw new RetryableJobError(`Gemini ${label} failed: ${detail}`, { cause: error });
    }
    if (failures > this.settings.transientRetries) {
      const message = `Gemini ${label} failed ${failures} times (${transient}): ${detail}`;
      throw transient === "network" ? new InfrastructureError(`${message}; the job goes back to the queue`, { cause: error }) : new RetryableJobError(message, { cause: error });
    }
    this.stats.transientRetries += 1;
    const waitMs = jitteredBackoffMs(failures, { baseMs: this.settings.backoffBaseMs, capMs: 60_000 });
    context.log.warn("gemini call failed: retrying after backoff", { call: label, kind: transient, failures, wait_ms: waitMs, error: detail });
    await delayUnlessAborted(waitMs, context.signal);
  }
}

function transientKind(error: unknown): Transient | undefined {
  if (error instanceof ApiError) return error.status >= 500 ? "server" : error.status === 408 ? "timeout" : undefined;
  if (!(error instanceof Error)) return undefined;
  // The SDK's own timer aborts the fetch (an AbortError) when GEMINI_CALL_TIMEOUT_MS passes.
  if (error.name === "AbortError" || error.name === "TimeoutError") return "timeout";
  const code = networkCode(error);
  if (code !== undefined || (error instanceof TypeError && /fetch failed|network|socket/i.test(error.message))) return "network";
  return undefined;
}

function networkCode(error: Error): string | undefined {
  const codes = new Set(["ECONNREFUSED", "ECONNRESET", "ENOTFOUND", "EAI_AGAIN", "ETIMEDOUT", "EPIPE", "UND_ERR_SOCKET", "UND_ERR_CONNECT_TIMEOUT"]);
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current instanceof Error; depth += 1) {
    const code = (current as NodeJS.ErrnoException).code;
    if (code !== undefined && codes.has(code)) return code;
    current = current.cause;
  }
  return undefined;
}

function describe(error: unknown): string {
  if (error instanceof ApiError) {
    // The message is Google's JSON body: keep its human sentence, not the whole dump.
    try {
      const body: unknown = JSON.parse(error.message);
      const message = typeof body === "object" && body !== null && "error" in body && typeof body.error === "object" && body.error !== null && "message" in body.error ? String(body.error.message) : error.message;
      return `HTTP ${error.status}: ${message.slice(0, 300)}`;
    } catch {
      return `HTTP ${error.status}: ${error.message.slice(0, 300)}`;
    }
  }
  if (error instanceof Error) {
    const code = networkCode(error);
    return `${error.name}: ${error.message}${code === undefined ? "" : ` (${code})`}`.slice(0, 300);
  }
  return String(error);
}


/** The text of a generateContent reply; an empty or blocked answer is a failed attempt, not a blank document. */
export function replyText(label: string, response: GenerateContentResponse): string {
  const text = response.text;
  if (text === undefined || text.trim() === "") {
    const reason = response.candidates?.[0]?.finishReason ?? response.promptFeedback?.blockReason ?? "no text";
    throw new RetryableJobError(`Gemini ${label} returned no text (${String(reason)})`);
  }
  return text;
}
