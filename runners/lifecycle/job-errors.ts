/**
 * The one place that decides what a failure means for the job that hit it.
 * Handlers throw one of the three classes below when they know; anything
 * else goes through `classifyFailure`, which treats the unknown as retryable
 * (the attempt limit stops a loop, and a wrong "final" would lose a document).
 *
 * - final: the input can never succeed (the registry says the document does
 *   not exist, a field is wrong). The row ends in status 4 with this message,
 *   without burning the remaining attempts.
 * - retryable: this attempt failed for a reason that may pass (timeout, 5xx,
 *   429). One attempt is spent; the SQL retry policy decides what follows.
 * - infrastructure: the runner cannot work, whatever the document: the
 *   Gemini quota is exhausted (a 429, the shared budget stayed full past the
 *   wait, the day's requests are used up), Storage or the registry is unreachable, the network failed
 *   (ECONNRESET, ETIMEDOUT, ECONNREFUSED, EAI_AGAIN, `fetch failed`), the
 *   browser would not launch. The job is released without spending an
 *   attempt; SQL backs its `available_at` off and ends it in 4 after
 *   max_infrastructure_releases in a row, and a runner that keeps hitting
 *   these stops claiming instead of cycling through the queue.
 *
 * Recognised also when wrapped as another error's `cause`. Our own classes,
 * thrown on purpose, decide, except that a retryable verdict wrapped around
 * a recognised infrastructure fault counts as infrastructure.
 */
import { GeminiBudgetTimeoutError, GeminiDailyBudgetExhaustedError, GeminiRateLimitedError } from "../../supabase/functions/_shared/gemini-call.ts";

export type FailureDisposition = "final" | "retryable" | "infrastructure";

/** The input can never succeed: fail the job for good with this message. */
export class FinalJobError extends Error {
  override readonly name = "FinalJobError";
  readonly disposition = "final" as const;
}

/** This attempt failed but another may succeed: spend one attempt. */
export class RetryableJobError extends Error {
  override readonly name = "RetryableJobError";
  readonly disposition = "retryable" as const;
}

/** The runner cannot work (browser, storage, network of the task): release the job, spend nothing. */
export class InfrastructureError extends Error {
  override readonly name = "InfrastructureError";
  readonly disposition = "infrastructure" as const;
}

export interface ClassifiedFailure {
  readonly disposition: FailureDisposition;
  /** Human-readable reason stored on the row (`error_message` / `ocr_error`). */
  readonly message: string;
}

/**
 * Longest reason stored on a row. Error messages can quote whole pages
 * (Playwright's call logs do); the row needs the first lines, not a dump.
 */
export const MAX_FAILURE_MESSAGE_LENGTH = 1000;

/**
 * What to do with a job whose handler threw `error`. Our own classes (also
 * when wrapped as another error's `cause`) decide; anything else is
 * retryable.
 */
export function classifyFailure(error: unknown): ClassifiedFailure {
  const chain = causeChain(error);
  const known = chain.find(
    (link): link is KnownFailure => link instanceof FinalJobError || link instanceof RetryableJobError || link instanceof InfrastructureError,
  );
  // A retryable verdict is the default one, so a wrapper that says
  // "retryable" around a quota or network fault (a handler's catch-all) does
  // not make the document pay for it; a final verdict is specific knowledge
  // and stands.
  const faultBelow = known?.disposition === "retryable" ? causeChain(known.cause).some(isInfrastructureFault) : false;
  // Our classes carry a message written for the row (often the registry's
  // own words); anything else keeps its class name so the row says what broke.
  if (known !== undefined) return { disposition: faultBelow ? "infrastructure" : known.disposition, message: truncate(known.message) };
  const message = truncate(error instanceof Error ? describeChain(chain) : `thrown value: ${String(error)}`);
  if (chain.some(isInfrastructureFault)) return { disposition: "infrastructure", message };
  return { disposition: "retryable", message };
}

type KnownFailure = FinalJobError | RetryableJobError | InfrastructureError;

/**
 * Node's network error codes that say the peer could not be reached or the
 * connection broke, not that it answered: the same request may well succeed
 * once the network or the service is back.
 */
export const NETWORK_ERROR_CODES: ReadonlySet<string> = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "ECONNABORTED",
  "ETIMEDOUT",
  "EAI_AGAIN",
  "ENOTFOUND",
  "ENETUNREACH",
  "ENETDOWN",
  "EHOSTUNREACH",
  "EHOSTDOWN",
  "EPIPE",
  // undici (Node's fetch) names its own.
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_SOCKET",
  "UND_ERR_CLOSED",
]);

/**
 * Chromium's network errors as Playwright reports them (`page.goto: net::ERR_…`):
 * the registry could not be reached at all, as opposed to answering badly.
 */
const CHROMIUM_NETWORK_ERROR = /\bnet::ERR_(CONNECTION_(REFUSED|RESET|CLOSED|TIMED_OUT|FAILED|ABORTED)|NAME_NOT_RESOLVED|NAME_RESOLUTION_FAILED|INTERNET_DISCONNECTED|ADDRESS_UNREACHABLE|NETWORK_CHANGED|NETWORK_ACCESS_DENIED|TIMED_OUT|PROXY_CONNECTION_FAILED|TUNNEL_CONNECTION_FAILED)\b/;

/** Playwright's words when the browser itself could not start. */
const BROWSER_LAUNCH_FAILURE = /\b(browserType\.launch|launchPersistentContext)\b|Failed to launch|Executable doesn't exist/;

function isInfrastructureFault(link: Error): boolean {
  if (link instanceof GeminiRateLimitedError || link instanceof GeminiBudgetTimeoutError || link instanceof GeminiDailyBudgetExhaustedError) return true;
  // A raw 429 from an HTTP client (`@google/genai`'s ApiError carries `status`).
  const status: unknown = (link as { status?: unknown }).status;
  if (status === 429) return true;
  const code: unknown = (link as { code?: unknown }).code;
  if (typeof code === "string" && NETWORK_ERROR_CODES.has(code)) return true;
  // Node's fetch rejects with TypeError("fetch failed") and the reason as its cause.
  if (link instanceof TypeError && link.message === "fetch failed") return true;
  return CHROMIUM_NETWORK_ERROR.test(link.message) || BROWSER_LAUNCH_FAILURE.test(link.message);
}

/** The error and its causes, outermost first; a depth limit, because a cause chain can loop. */
function causeChain(error: unknown): Error[] {
  const chain: Error[] = [];
  let current: unknown = error;
  for (let depth = 0; depth < 10 && current instanceof Error && !chain.includes(current); depth += 1) {
    chain.push(current);
    current = current.cause;
  }
  return chain;
}

/** `Name: message`, followed by each cause's, so "fetch failed" says what failed. */
function describeChain(chain: readonly Error[]): string {
  return chain.map((link) => `${link.name}: ${link.message}`).join(" ← ");
}

function truncate(text: string): string {
  return text.length > MAX_FAILURE_MESSAGE_LENGTH ? `${text.slice(0, MAX_FAILURE_MESSAGE_LENGTH - 1)}…` : text;
}
