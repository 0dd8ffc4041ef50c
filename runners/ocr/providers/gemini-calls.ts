/**
 * How the OCR runner talks to Gemini: every generateContent goes through the
 * shared budget (`withGeminiBudget`, the one path), and every failure is read
 * by gemini-errors.ts (the one classification of Gemini's answers) and ends
 * as one of the runner's job errors (job-errors.ts):
 *
 * - 429 (with or without details): the wrapper has set the model's shared
 *   cooldown; the call waits it out and tries again, spending no attempt.
 *   Only when the budget stays closed past GEMINI_BUDGET_MAX_WAIT_MS does the
 *   job go back to the queue (InfrastructureError, kind quota).
 * - the daily quota exhausted: released at once (kind quota).
 * - 500/503/504 (Google's "overloaded" comes in bursts), timeouts and network
 *   trouble: retried here with jittered exponential backoff; when the retries
 *   run out, released without spending an attempt (InfrastructureError):
 *   Google being down is not the document's fault.
 * - a model Google does not serve, a refused key, billing off:
 *   ConfigurationError (no attempt spent, the pool stops, the fault is
 *   recorded for dispatch and status through `onConfigurationFault`).
 * - an uploaded file gone or forbidden (403/404): FileGoneError, which the
 *   acte path answers with a fresh upload.
 * - any other 4xx: the request is refused as such; one attempt is spent.
 *
 * File API calls (upload, get, delete) are not model calls and count against
 * no generateContent quota, so they do not pass through the budget; they get
 * the same retry and classification.
 */
import { type GenerateContentParameters, type GenerateContentResponse, type GoogleGenAI } from "@google/genai";
import {
  GeminiBudgetTimeoutError,
  GeminiDailyBudgetExhaustedError,
  GeminiModelNotConfiguredError,
  GeminiRateLimitedError,
  withGeminiBudget,
} from "../../../supabase/functions/_shared/gemini-call.ts";
import type { GeminiRateBudget } from "../../../supabase/functions/_shared/gemini-rate-budget.ts";
import { delayUnlessAborted, jitteredBackoffMs } from "../../lifecycle/backoff.ts";
import { ConfigurationError, FinalJobError, InfrastructureError, RetryableJobError } from "../../lifecycle/job-errors.ts";
import type { GeminiSettings } from "../ocr-config.ts";
import { classifyGeminiError, type GeminiCallKind } from "./gemini-errors.ts";
import { IncompleteReplyError, type ModelTokenUsage, type OcrCallContext } from "./ocr-provider.ts";

/** An uploaded file Gemini no longer lets us read (expired, deleted, another key's): upload it again. */
export class FileGoneError extends RetryableJobError {
}

export interface GeminiCallStats {
  calls: number;
  rateLimited: number;
  transientRetries: number;
  inputTokens: number;
  outputTokens: number;
  /** `usageMetadata.thoughtsTokenCount`: billed as output, not part of candidatesTokenCount. */
  thinkingTokens: number;
}

/** Records a configuration fault where dispatch and status read it (gemini-config-fault.ts). */
export type ConfigurationFaultRecorder = (reason: string) => Promise<void>;

export class GeminiCalls {
  readonly stats: GeminiCallStats = { calls: 0, rateLimited: 0, transientRetries: 0, inputTokens: 0, outputTokens: 0, thinkingTokens: 0 };
  /** The same counts per model, for the tokens recorded per job (ocr_token_usage). */
  readonly usageByModel = new Map<string, ModelTokenUsage>();

  constructor(
    readonly ai: GoogleGenAI,
    readonly budget: GeminiRateBudget,
    readonly settings: GeminiSettings,
    readonly onConfigurationFault: ConfigurationFaultRecorder = async () => {},
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
        this.stats.thinkingTokens += response.usageMetadata?.thoughtsTokenCount ?? 0;
        const before = this.usageByModel.get(request.model) ?? { calls: 0, inputTokens: 0, outputTokens: 0, thinkingTokens: 0 };
        this.usageByModel.set(request.model, {
          calls: before.calls + 1,
          inputTokens: before.inputTokens + (response.usageMetadata?.promptTokenCount ?? 0),
          outputTokens: before.outputTokens + (response.usageMetadata?.candidatesTokenCount ?? 0),
          thinkingTokens: before.thinkingTokens + (response.usageMetadata?.thoughtsTokenCount ?? 0),
        });
        return response;
      } catch (error) {
        if (context.signal.aborted) throw context.signal.reason;
        if (error instanceof GeminiRateLimitedError) {
          this.stats.rateLimited += 1;
          if (error.pausedUntil !== null) {
            throw new InfrastructureError(`Gemini ${label}: ${error.message}; the job goes back to the queue`, { cause: error, kind: "quota" });
          }
          context.log.warn("gemini rate limited: waiting for the shared cooldown", { call: label, model: error.model, cooldown_ms: error.cooldownMs, retry_delay: error.retryDelay });
          if (Date.now() - startedAt + error.cooldownMs > this.settings.budgetMaxWaitMs) {
            throw new InfrastructureError(`Gemini ${label}: quota still exhausted after ${Date.now() - startedAt} ms (${error.message}); the job goes back to the queue`, { cause: error, kind: "quota" });
          }
          continue; // The next admission waits out the cooldown the wrapper just set.
        }
        if (error instanceof GeminiBudgetTimeoutError || error instanceof GeminiDailyBudgetExhaustedError) {
          throw new InfrastructureError(`Gemini ${label}: ${error.message}; the job goes back to the queue`, { cause: error, kind: "quota" });
        }
        if (error instanceof GeminiModelNotConfiguredError) throw new InfrastructureError(`Gemini ${label}: ${error.message}`, { cause: error });
        if (error instanceof RangeError) {
          // The wrapper's "can never fit": no window holds this document at the configured quota.
          throw new FinalJobError(`Gemini ${label}: ${error.message}`, { cause: error });
        }
        failures += 1;
        const namesFile = request.contents !== undefined && JSON.stringify(request.contents).includes('"fileData"');
        await this.#afterFailure(label, error, failures, context, { target: namesFile ? "file" : "model" });
      }
    }
  }

  /** A File API call (not metered), with the same retries and classification. */
  async fileCall<T>(label: string, call: () => Promise<T>, context: OcrCallContext): Promise<T> {
    return this.#unmeteredCall(label, call, context, { target: "file" });
  }

  /** A call that is not metered (models.get at start), with the same retries and classification. */
  async modelCall<T>(label: string, call: () => Promise<T>, context: OcrCallContext): Promise<T> {
    return this.#unmeteredCall(label, call, context, { target: "model" });
  }

  async #unmeteredCall<T>(label: string, call: () => Promise<T>, context: OcrCallContext, kind: GeminiCallKind): Promise<T> {
    let failures = 0;
    for (;;) {
      context.signal.throwIfAborted();
      try {
        return await call();
      } catch (error) {
        if (context.signal.aborted) throw context.signal.reason;
        failures += 1;
        await this.#afterFailure(label, error, failures, context, kind);
      }
    }
  }

  /** Classifies a failed call (gemini-errors.ts): returns after a backoff when it may be retried, else throws the job's error. */
  async #afterFailure(label: string, error: unknown, failures: number, context: OcrCallContext, call: GeminiCallKind): Promise<void> {
    const fault = classifyGeminiError(error, call);
    switch (fault.kind) {
      case "configuration": {
        await this.onConfigurationFault(fault.message).catch((recordError: unknown) => {
          context.log.warn("could not record the Gemini configuration fault for dispatch", { error: recordError instanceof Error ? recordError.message : String(recordError) });
        });
        throw new ConfigurationError(`Gemini ${label}: ${fault.message}`, { cause: error });
      }
      case "quota":
        // A raw 429 (the File API is not metered by the budget wrapper, which turns generateContent 429s into cooldowns).
        throw new InfrastructureError(`Gemini ${label}: ${fault.message}; the job goes back to the queue`, { cause: error, kind: "quota" });
      case "file":
        throw new FileGoneError(`Gemini ${label}: ${fault.message}`, { cause: error });
      case "refused":
        throw new RetryableJobError(`Gemini ${label} failed: ${fault.message}`, { cause: error });
      case "transient":
        break;
    }
    if (failures > this.settings.transientRetries) {
      throw new InfrastructureError(`Gemini ${label} failed ${failures} times (${fault.transient}): ${fault.message}; the job goes back to the queue`, { cause: error });
    }
    this.stats.transientRetries += 1;
    const waitMs = jitteredBackoffMs(failures, { baseMs: this.settings.backoffBaseMs, capMs: 60_000 });
    context.log.warn("gemini call failed: retrying after backoff", { call: label, kind: fault.transient, failures, wait_ms: waitMs, error: fault.message });
    await delayUnlessAborted(waitMs, context.signal);
  }
}

/**
 * The text of a generateContent reply, only when it is complete. Google's
 * FinishReason (js-genai src/types.ts): STOP is "natural stop point of the
 * model or provided stop sequence"; MAX_TOKENS, SAFETY, RECITATION,
 * LANGUAGE, BLOCKLIST, PROHIBITED_CONTENT, SPII, MALFORMED_FUNCTION_CALL,
 * OTHER… all mean the text is cut or withheld. A prompt blocked outright has
 * no candidate and a `promptFeedback.blockReason`.
 */
export function replyText(label: string, response: GenerateContentResponse): string {
  const candidate = response.candidates?.[0];
  const finishReason = candidate?.finishReason === undefined ? (response.promptFeedback?.blockReason === undefined ? "NO_CANDIDATE" : `BLOCKED_${String(response.promptFeedback.blockReason)}`) : String(candidate.finishReason);
  const text = response.text ?? "";
  if (finishReason !== "STOP") {
    throw new IncompleteReplyError(`Gemini ${label} stopped with ${finishReason}${text.trim() === "" ? " and no text" : ` after ${text.length} characters`}: not a complete reply`, finishReason, text);
  }
  if (text.trim() === "") throw new IncompleteReplyError(`Gemini ${label} returned no text (STOP)`, finishReason, text);
  return text;
}
