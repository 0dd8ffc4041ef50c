/** The contract between the lifecycle and a runner's handler: what it gets, what it returns. */
import type { ClaimedJob } from "./job-queue.ts";
import type { Logger } from "./structured-log.ts";

/** What a handler produced; the variant must match the runner's kind. */
export type JobOutcome =
  /** registre: the PDF is in Storage at `bucket/filename`. */
  | { readonly kind: "extracted"; readonly supabasePath: string }
  /** index-ocr, acte-ocr: the raw and the corrected text. */
  | { readonly kind: "ocr"; readonly fileContent: string; readonly boostedFileContent: string };

export interface JobContext {
  /**
   * Aborted when the runner must stop this job (shutdown grace over, job
   * lease lost). Pass it to every wait; after it fires, nothing the handler
   * returns is recorded.
   */
  readonly signal: AbortSignal;
  /** Lines carry the job id, kind and environment. */
  readonly log: Logger;
}

/**
 * Does one job. Throw FinalJobError, RetryableJobError or InfrastructureError
 * (job-errors.ts) when the failure's nature is known; anything else counts as
 * retryable.
 */
export type JobHandler = (job: ClaimedJob, context: JobContext) => Promise<JobOutcome>;
