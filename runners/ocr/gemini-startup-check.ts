/**
 * What an OCR task does before it claims anything: ask Google for both
 * configured models (models.get). A model Google does not serve (retired
 * models answer 404), a refused key (400 API_KEY_INVALID) or billing off
 * (400 FAILED_PRECONDITION) fails every job alike, so the task records the
 * fault where dispatch and `npm run status` read it (gemini-config-fault.ts;
 * the provider's recorder does), hands its capacity lease back (no job was
 * claimed, so no attempt is spent) and exits RUNNER_EXIT_CODES.configuration.
 * Anything else (Google down, the network) is left to the first job's calls,
 * whose retries and classification are the same.
 */
import type { CapacityLedger } from "../../supabase/functions/_shared/capacity-ledger.ts";
import type { GeminiConfigFault } from "../../supabase/functions/_shared/gemini-config-fault.ts";
import { ConfigurationError } from "../lifecycle/job-errors.ts";
import { RUNNER_EXIT_CODES, type RunnerExitCode } from "../lifecycle/run-runner.ts";
import type { Logger } from "../lifecycle/structured-log.ts";
import type { GeminiOcrProvider } from "./providers/gemini-provider.ts";

export interface GeminiStartupCheck {
  readonly provider: Pick<GeminiOcrProvider, "checkModels" | "models">;
  readonly fault: Pick<GeminiConfigFault, "clear">;
  readonly ledger: Pick<CapacityLedger, "release">;
  readonly ledgerLeaseId: string;
  readonly log: Logger;
  /** Longest the check may take before the runner goes on without it. @default 120_000 */
  readonly timeoutMs?: number;
  /** Records the task's exit in runner_tasks (the lifecycle, which would, never starts). */
  readonly recordExit?: (reason: string, exitCode: number) => Promise<void>;
}

/** RUNNER_EXIT_CODES.ok to go on and claim jobs, else the code to exit with. */
export async function checkGeminiAtStart(check: GeminiStartupCheck): Promise<RunnerExitCode> {
  const { provider, log } = check;
  try {
    await provider.checkModels({ signal: AbortSignal.timeout(check.timeoutMs ?? 120_000), log });
  } catch (error) {
    if (!(error instanceof ConfigurationError)) {
      log.warn("could not check the Gemini models at start; the first job's calls will", { error });
      return RUNNER_EXIT_CODES.ok;
    }
    log.error("gemini misconfigured: no OCR job can succeed; exiting without claiming one", { error: error.message, fast_model: provider.models.fast, boost_model: provider.models.boost });
    await check.ledger.release(check.ledgerLeaseId).catch((releaseError: unknown) => {
      log.warn("could not hand the capacity lease back; it expires on its own", { error: releaseError });
    });
    await check.recordExit?.(`gemini misconfigured, no job claimed: ${error.message}`.slice(0, 500), RUNNER_EXIT_CODES.configuration).catch((recordError: unknown) => {
      log.warn("could not record the task exit in runner_tasks", { error: recordError });
    });
    return RUNNER_EXIT_CODES.configuration;
  }
  // A fixed deployment lifts the hold at once; its expiry does otherwise.
  await check.fault.clear().catch((error: unknown) => log.warn("could not clear the Gemini configuration fault; it expires on its own", { error }));
  log.info("gemini models checked", { fast_model: provider.models.fast, boost_model: provider.models.boost });
  return RUNNER_EXIT_CODES.ok;
}
