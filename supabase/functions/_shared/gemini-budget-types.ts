/**
 * What the Gemini rate budget (gemini-rate-budget.ts) answers and is
 * configured with: admissions, status, options, the error for an unknown
 * model, and the parsing of Google's retryDelay.
 */
import type { ModelLimits } from "./gemini-config.ts";
import type { GeminiDayShares } from "./gemini-day-shares.ts";

export type GeminiBudgetName = "cooldown" | "rpm" | "tpm" | "rpd";

/** Which of Google's per-model quotas a 429 named: minute requests, minute input tokens, or the day. */
export type GeminiQuotaKind = "rpm" | "tpm" | "rpd" | "unknown";

/** A call named a model GEMINI_LIMITS does not list. Final: no retry will configure it. */
export class GeminiModelNotConfiguredError extends Error {
  override readonly name = "GeminiModelNotConfiguredError";
  readonly retryable = false;
  constructor(
    readonly model: string,
    configured: readonly string[],
  ) {
    super(`Gemini model "${model}" has no limits in GEMINI_LIMITS (configured: ${configured.join(", ")}); the call was not sent`);
  }
}

export interface AdmittedCall {
  readonly admitted: true;
  readonly model: string;
  /** Input tokens counted for the call, to reconcile with promptTokenCount after it. */
  readonly tokens: number;
  /** End of the minute window the call was counted in (ms since epoch). */
  readonly windowEndsAt: number;
  /** The Pacific day the request was counted in. */
  readonly day: string;
}

export type Admission =
  | AdmittedCall
  | {
      readonly admitted: false;
      readonly model: string;
      readonly blockedBy: GeminiBudgetName;
      /** How long until trying again can succeed (end of the window, of the cooldown, or of the day). */
      readonly retryInMs: number;
      /** What was short, for error messages and logs. */
      readonly detail: string;
      /** For "rpd": when the model's day resets (ms since epoch). */
      readonly resumesAt?: number;
    };

export interface BudgetUse {
  readonly limit: number;
  readonly used: number;
  readonly remaining: number;
  /** used / limit: the share of the quota spent in the current window. */
  readonly fraction: number;
}

export interface ModelBudgetStatus {
  readonly model: string;
  readonly limits: ModelLimits;
  /** Requests in the current slice of the minute, against the slice's share of RPM. */
  readonly rpm: BudgetUse;
  /** Input tokens in the current slice of the minute, against the slice's share of TPM. */
  readonly tpm: BudgetUse;
  /** Today's requests (Pacific day). */
  readonly rpd: BudgetUse;
  /** End of the current minute window (ms since epoch). */
  readonly windowEndsAt: number;
  /** While above 0, no call to this model is admitted. */
  readonly cooldownRemainingMs: number;
  /** When the model may be called again if today's requests are used up or Google said so (ms since epoch); null otherwise. */
  readonly pausedUntil: number | null;
  /** Today's statistics: output tokens are kept here, never in the TPM budget. */
  readonly today: { readonly requests: number; readonly inputTokens: number; readonly outputTokens: number; readonly rateLimited: number };
}

export interface GeminiBudgetStatus {
  /** Length of the window `rpm` and `tpm` count in: one slice of the minute. */
  readonly windowMs: number;
  /** Slices per minute: a slice's limits are the minute's divided by this. */
  readonly slicesPerWindow: number;
  /** "slices": `rpm` and `tpm` are the current slice's against its share; "rolling": the minute's last slices against the minute's limit. */
  readonly minuteAdmission: "slices" | "rolling";
  /** The Pacific day the daily budgets count. */
  readonly day: string;
  /** When the daily budgets reset (ms since epoch). */
  readonly dayResetsAt: number;
  readonly models: Readonly<Record<string, ModelBudgetStatus>>;
}

export interface GeminiRateBudgetOptions {
  /** Prefix of the budget's keys; one budget per prefix. @default "gemini" */
  keyPrefix?: string;
  /** Length of the window the RPM/TPM limits are for, ms. @default 60_000 (Gemini's quotas are per minute) */
  windowMs?: number;
  /** Fixed slices the window is cut into, each admitting its share of the limits (see above). @default 8 */
  slicesPerWindow?: number;
  /**
   * How the minute's requests and tokens are admitted (gemini-minute-counters.ts):
   * "slices", each slice its share; "rolling", the last slices' sum against
   * the minute's limit, so refunds free room for as long as their slice is
   * in the minute. @default "slices"
   */
  minuteAdmission?: "slices" | "rolling";
  /** Cooldown after a 429 that carries no retryDelay, ms; doubles with each such 429 in a row. @default 5_000 */
  backoffMs?: number;
  /** Longest cooldown the fallback backoff reaches, ms. @default 120_000 */
  maxBackoffMs?: number;
  /** The clock that decides the day (ms since epoch). @default Date.now */
  now?: () => number;
  /** Where the daily quota resets at midnight. @default "America/Los_Angeles" (Google's reset) */
  dayTimeZone?: string;
  /** Each environment's share of the day (gemini-day-shares.ts). @default none: one pool */
  dayShares?: GeminiDayShares;
}

export function use(limit: number, used: number): BudgetUse {
  const clamped = Math.max(0, used);
  return { limit, used: clamped, remaining: Math.max(0, limit - clamped), fraction: limit > 0 ? clamped / limit : 0 };
}

export function numbers(reply: unknown): [number, number] {
  if (!Array.isArray(reply)) throw new Error(`unexpected reply from Redis: ${JSON.stringify(reply)}`);
  return [Number(reply[0]), Number(reply[1])];
}

/**
 * Gemini's `RetryInfo.retryDelay` is a protobuf Duration in its JSON form:
 * seconds with an `s` suffix ("53s", "1.5s", "0.000500s"). Returns ms, rounded
 * up, or null for anything else (the caller then backs off on its own).
 */
export function parseRetryDelay(retryDelay: string): number | null {
  const match = /^\s*(\d+(?:\.\d+)?)s\s*$/.exec(retryDelay);
  if (!match?.[1]) return null;
  return Math.ceil(Number(match[1]) * 1000);
}
