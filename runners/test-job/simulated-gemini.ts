/**
 * Gemini use as the lifecycle test handler simulates it: an OCR job's tokens
 * go through the real shared budget (`tryAdmit`, waiting when it says so) in
 * a few calls spread over the job's simulated duration, so the utilization
 * benchmark sees the token load real OCR runners would put on the quota.
 * No model is called.
 */
import { setTimeout as delay } from "node:timers/promises";
import type { GeminiRateBudget } from "../../supabase/functions/_shared/gemini-rate-budget.ts";

export interface SimulatedGeminiWork {
  readonly budget: GeminiRateBudget;
  readonly model: string;
  /** Input tokens the whole document spends. */
  readonly tokens: number;
  /** Calls they are split into. */
  readonly calls: number;
  /** The job's whole simulated duration, ms. */
  readonly durationMs: number;
}

/** Spends `tokens` in `calls` admitted calls, one every durationMs / calls; rejects with the abort reason when `signal` fires. */
export async function workLikeOcr(work: SimulatedGeminiWork, signal: AbortSignal): Promise<void> {
  const calls = Math.max(1, work.calls);
  const tokensPerCall = Math.ceil(work.tokens / calls);
  for (let call = 0; call < calls; call += 1) {
    for (;;) {
      const admission = await work.budget.tryAdmit(work.model, tokensPerCall);
      if (admission.admitted) break;
      await delay(Math.max(50, admission.retryInMs), undefined, { signal });
    }
    await delay(work.durationMs / calls, undefined, { signal });
  }
}
