/** Writes a finished job's result through the matching complete_* SQL function. */
import type { JobOutcome } from "./job-handler.ts";
import type { ClaimedJob, CompletedAndNext, JobQueue } from "./job-queue.ts";

/** Records a finished job's outcome; with `claimNext`, claims the runner's next job in the same round trip. */
export async function recordOutcome(queue: JobQueue, job: ClaimedJob, outcome: JobOutcome, claimNext: boolean): Promise<CompletedAndNext> {
  if (outcome.kind === "extracted") {
    if (claimNext) return queue.completeExtractionAndClaimNext(job, outcome.supabasePath);
    return { status: await queue.completeExtraction(job, outcome.supabasePath), next: undefined };
  }
  if (claimNext) return queue.completeOcrAndClaimNext(job, outcome.fileContent, outcome.boostedFileContent);
  return { status: await queue.completeOcr(job, outcome.fileContent, outcome.boostedFileContent), next: undefined };
}
