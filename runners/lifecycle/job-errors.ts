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
 * - infrastructure: the runner itself is broken (the browser could not
 *   start, storage is unreachable). The document is not at fault, so the job
 *   is released without spending an attempt, and a runner that keeps hitting
 *   these stops claiming instead of cycling through the queue.
 */

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
  const known = findKnownFailure(error);
  // Our classes carry a message written for the row (often the registry's
  // own words); anything else keeps its class name so the row says what broke.
  if (known !== undefined) return { disposition: known.disposition, message: truncate(known.message) };
  return { disposition: "retryable", message: truncate(error instanceof Error ? `${error.name}: ${error.message}` : `thrown value: ${String(error)}`) };
}

type KnownFailure = FinalJobError | RetryableJobError | InfrastructureError;

function findKnownFailure(error: unknown): KnownFailure | undefined {
  // A depth limit, because a cause chain can loop.
  let current: unknown = error;
  for (let depth = 0; depth < 10 && current instanceof Error; depth += 1) {
    if (current instanceof FinalJobError || current instanceof RetryableJobError || current instanceof InfrastructureError) {
      return current;
    }
    current = current.cause;
  }
  return undefined;
}

function truncate(text: string): string {
  return text.length > MAX_FAILURE_MESSAGE_LENGTH ? `${text.slice(0, MAX_FAILURE_MESSAGE_LENGTH - 1)}…` : text;
}
