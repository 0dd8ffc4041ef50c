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
 *   browser would not launch, Upstash (the shared budgets) answered with an
 *   error or an unreadable body. The job is released without spending an
 *   attempt; SQL backs its `available_at` off and ends it in 4 after
 *   max_infrastructure_releases in a row, and a runner that keeps hitting
 *   these stops claiming instead of cycling through the queue.
 *
 * Recognised also when wrapped as another error's `cause`. Our own classes,
 * thrown on purpose, decide, except that a retryable verdict wrapped around
 * a recognised infrastructure fault counts as infrastructure.
 */
import { errors as upstashErrors } from "@upstash/redis";
import { GeminiBudgetTimeoutError, GeminiDailyBudgetExhaustedError, GeminiRateLimitedError } from "../../supabase/functions/_shared/gemini-call.ts";

/**
 * What happens to the job: `final` ends it in 4, `retryable` spends one
 * attempt, `infrastructure` releases it without spending one, and
 * `configuration` releases it the same way and stops the runner's pool (a
 * bad Gemini key or a missing model fails every job alike: see
 * ConfigurationError).
 */
export type FailureDisposition = "final" | "retryable" | "infrastructure" | "configuration";

/**
 * Whose problem a failure is, recorded on the row (`error_kind`) so staff can
 * filter in Studio. Mirrors the `public.error_kind` table (a test keeps the
 * two in agreement); each kind goes with one disposition.
 */
export const ERROR_KINDS = {
  /** The registry says the document does not exist. */
  document_not_found: "final",
  /** The row can never succeed as written (paper-only, no exact number, a PDF past the limits). */
  invalid_input: "final",
  /** OCR found no readable page. */
  document_unreadable: "final",
  /** This attempt failed in a way another may not (a timeout, a truncated answer). */
  document_retryable: "retryable",
  /** A page or answer nobody recognised: spend an attempt, and staff should look. */
  needs_attention: "retryable",
  /** The registry refused the account (login, session, payment): released, the account is charged. */
  account: "infrastructure",
  /** The registry is down, in maintenance, or answering 5xx. */
  registry_unavailable: "infrastructure",
  /** The environment's daily registry spend cap is reached: registre work waits (registre_spend_policy). */
  spend_cap: "infrastructure",
  /** The Gemini quota or the shared budget held the call. */
  quota: "infrastructure",
  /** Network, Storage, Upstash, the database or the browser could not work. */
  infrastructure: "infrastructure",
  /** The deployment is misconfigured (Gemini key, model, billing). */
  configuration: "configuration",
} as const satisfies Record<string, FailureDisposition>;

export type ErrorKind = keyof typeof ERROR_KINDS;
type KindOf<D extends FailureDisposition> = { [K in ErrorKind]: (typeof ERROR_KINDS)[K] extends D ? K : never }[ErrorKind];

interface JobErrorOptions<K> extends ErrorOptions {
  /** Whose problem it is; each class has a default. */
  readonly kind?: K;
}

/** The input can never succeed: fail the job for good with this message. */
export class FinalJobError extends Error {
  override readonly name = "FinalJobError";
  readonly disposition = "final" as const;
  readonly kind: KindOf<"final">;
  constructor(message: string, options: JobErrorOptions<KindOf<"final">> = {}) {
    super(message, options);
    this.kind = options.kind ?? "invalid_input";
  }
}

/** This attempt failed but another may succeed: spend one attempt. */
export class RetryableJobError extends Error {
  override readonly name = "RetryableJobError";
  readonly disposition = "retryable" as const;
  readonly kind: KindOf<"retryable">;
  constructor(message: string, options: JobErrorOptions<KindOf<"retryable">> = {}) {
    super(message, options);
    this.kind = options.kind ?? "document_retryable";
  }
}

/** The runner cannot work (browser, storage, network of the task, the registry down, the account refused): release the job, spend nothing. */
export class InfrastructureError extends Error {
  override readonly name = "InfrastructureError";
  readonly disposition = "infrastructure" as const;
  readonly kind: KindOf<"infrastructure">;
  constructor(message: string, options: JobErrorOptions<KindOf<"infrastructure">> = {}) {
    super(message, options);
    this.kind = options.kind ?? "infrastructure";
  }
}

/**
 * The deployment cannot work for any job (Gemini answered API_KEY_INVALID, a
 * configured model does not exist, billing refused): release the job, spend
 * nothing, and stop the pool; the runner exits with
 * RUNNER_EXIT_CODES.configuration and says what to fix.
 */
export class ConfigurationError extends Error {
  override readonly name = "ConfigurationError";
  readonly disposition = "configuration" as const;
  readonly kind = "configuration" as const;
}

export interface ClassifiedFailure {
  readonly disposition: FailureDisposition;
  /** Whose problem it is, stored on the row as `error_kind`. */
  readonly kind: ErrorKind;
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
    (link): link is KnownFailure => link instanceof FinalJobError || link instanceof RetryableJobError || link instanceof InfrastructureError || link instanceof ConfigurationError,
  );
  // A retryable verdict is the default one, so a wrapper that says
  // "retryable" around a quota or network fault (a handler's catch-all) does
  // not make the document pay for it; a final verdict is specific knowledge
  // and stands.
  const faultBelow = known?.disposition === "retryable" ? causeChain(known.cause).find(isInfrastructureFault) : undefined;
  // Our classes carry a message written for the row (often the registry's
  // own words); anything else keeps its class name so the row says what broke.
  if (known !== undefined) {
    if (faultBelow !== undefined) return { disposition: "infrastructure", kind: infrastructureKindOf(faultBelow), message: truncate(known.message) };
    return { disposition: known.disposition, kind: known.kind, message: truncate(known.message) };
  }
  const message = truncate(error instanceof Error ? describeChain(chain) : `thrown value: ${String(error)}`);
  const fault = chain.find(isInfrastructureFault);
  if (fault !== undefined) return { disposition: "infrastructure", kind: infrastructureKindOf(fault), message };
  // Nobody recognised it: spend an attempt (the limit stops a loop) and flag it for staff.
  return { disposition: "retryable", kind: "needs_attention", message };
}

type KnownFailure = FinalJobError | RetryableJobError | InfrastructureError | ConfigurationError;

function infrastructureKindOf(fault: Error): KindOf<"infrastructure"> {
  return isQuotaFault(fault) ? "quota" : "infrastructure";
}

function isQuotaFault(link: Error): boolean {
  if (link instanceof GeminiRateLimitedError || link instanceof GeminiBudgetTimeoutError || link instanceof GeminiDailyBudgetExhaustedError) return true;
  return (link as { status?: unknown }).status === 429;
}

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

/**
 * An answer from Upstash that is an error (`{"error": "ERR max requests
 * limit exceeded", …}`, WRONGPASS, OOM, a 5xx body that is not JSON): the
 * shared budgets could not be consulted, which says nothing about the
 * document. @upstash/redis throws UpstashError for an error answer and
 * UpstashJSONParseError (a subclass) for an unreadable one
 * (node_modules/@upstash/redis/chunk-*.mjs, `HttpClient.request`: `throw new
 * UpstashError(`${body2.error}, command was: …`)`). Matched by name as well,
 * so a second copy of the package (another bundle) is recognised too.
 */
function isUpstashFault(link: Error): boolean {
  return link instanceof upstashErrors.UpstashError || link.name === "UpstashError" || link.name === "UpstashJSONParseError";
}

function isInfrastructureFault(link: Error): boolean {
  // The budget's own refusals, or a raw 429 from an HTTP client (`@google/genai`'s ApiError carries `status`).
  if (isQuotaFault(link)) return true;
  // Every Upstash failure is infrastructure: spending OCR attempts on an Upstash incident would sweep every environment's backlog into 4.
  if (isUpstashFault(link)) return true;
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
