/**
 * The Gemini tokens one OCR job attempt spent, per model, recorded on the
 * job (`queue.record_ocr_tokens`, fenced by its OCR lease) so Studio shows
 * what each document and each day cost (public.ocr_tokens_by_day). The
 * provider counts tokens per model since it started; a runner works one job
 * at a time, so the job's share is the difference across it.
 */
import type postgres from "postgres";
import type { ClaimedJob } from "../lifecycle/job-queue.ts";
import type { ModelTokenUsage } from "./providers/ocr-provider.ts";

export interface JobTokenUsage {
  readonly model: string;
  readonly calls: number;
  readonly input_tokens: number;
  readonly output_tokens: number;
  readonly thinking_tokens: number;
}

export type TokenRecorder = (job: ClaimedJob, usage: readonly JobTokenUsage[]) => Promise<void>;

/** What was spent between two readings of a provider's `tokenUsage()`; models with no call left out. */
export function tokensSpent(before: ReadonlyMap<string, ModelTokenUsage>, after: ReadonlyMap<string, ModelTokenUsage>): JobTokenUsage[] {
  const spent: JobTokenUsage[] = [];
  for (const [model, now] of after) {
    const then = before.get(model) ?? { calls: 0, inputTokens: 0, outputTokens: 0, thinkingTokens: 0 };
    const calls = now.calls - then.calls;
    if (calls <= 0) continue;
    spent.push({
      model,
      calls,
      input_tokens: now.inputTokens - then.inputTokens,
      output_tokens: now.outputTokens - then.outputTokens,
      thinking_tokens: now.thinkingTokens - then.thinkingTokens,
    });
  }
  return spent;
}

/** Writes through the fenced SQL function, under the job's lease. */
export function sqlTokenRecorder(sql: postgres.Sql, environment: string): TokenRecorder {
  return async (job, usage) => {
    if (usage.length === 0) return;
    await sql`select queue.record_ocr_tokens(${job.id}, ${job.leaseToken}, ${environment}, ${sql.json(usage.map((entry) => ({ ...entry })))}) as recorded`;
  };
}
