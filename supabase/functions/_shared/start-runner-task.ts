import type { CapacityLedger, Lease } from "./capacity-ledger.ts";
import type { DispatchConfig } from "./dispatch-config.ts";
import { isDefiniteRunTaskRefusal, runnerTaskEnvironment, runnerTaskFor, type EcsClient } from "./ecs-client.ts";
import { errorMessage } from "./error-message.ts";

/**
 * RunTask for one leased task, so that capacity is never counted twice nor
 * lost to a doubt:
 * - the lease id is the clientToken, so a retry after a timeout, a 5xx or a
 *   network error returns the task the first call started instead of a
 *   second one;
 * - the lease is released only when ECS certainly started nothing (a 4xx
 *   or `failures[]` to the first call);
 * - a refusal of a retry after an unknown outcome does not say the first
 *   call started nothing (ECS may throttle the retry, 400
 *   ThrottlingException, while the first call's task boots), so the lease
 *   is kept: the task's runner registers on it, or the stopped-task sweep
 *   or its expiry returns it;
 * - when the outcome stays unknown, the lease is kept: if the task did
 *   start, its runner renews it; if not, it expires after one TTL;
 * - once started, the task's ARN is written on the lease so a later
 *   dispatch can return it should ECS stop the task before its runner
 *   registers.
 */

/** Calls after the first on an unknown outcome, with the same clientToken. */
export const RUN_TASK_RETRIES = 2;

export type RunnerTaskStart =
  | { readonly status: "started"; readonly taskArn: string }
  /** ECS refused for sure; the lease was released (or its release is left to expiry when Upstash failed). */
  | { readonly status: "refused"; readonly error: string }
  /** Whether the task started is unknown; the lease is kept. */
  | { readonly status: "unknown"; readonly error: string };

export interface StartRunnerTaskDependencies {
  readonly config: Pick<DispatchConfig, "ecs" | "environment">;
  readonly ledger: CapacityLedger;
  readonly ecs: EcsClient;
  readonly log: (entry: { level: "info" | "warn" | "error"; msg: string } & Record<string, unknown>) => void;
  /** Wait between attempts. @default 250 ms, then 500 ms */
  readonly retryDelayMs?: (retry: number) => number;
}

export async function startRunnerTask(deps: StartRunnerTaskDependencies, lease: Lease): Promise<RunnerTaskStart> {
  const { config, ledger, ecs, log } = deps;
  const { kind } = lease;
  const request = {
    ...runnerTaskFor(config.ecs, kind),
    clientToken: lease.id,
    environment: runnerTaskEnvironment({ kind, environment: config.environment, ledgerLeaseId: lease.id }),
    startedBy: `dispatch-${config.environment}`.slice(0, 36),
  };
  const context = { kind, environment: config.environment, lease_id: lease.id };

  let lastError: unknown;
  // Set once a call's outcome is unknown: from then on no refusal proves nothing started.
  let outcomeUnknown = false;
  for (let attempt = 0; attempt <= RUN_TASK_RETRIES; attempt += 1) {
    if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, deps.retryDelayMs?.(attempt) ?? 250 * attempt));
    try {
      const taskArn = await ecs.runTask(request);
      // Best effort: without the ARN only the lease's expiry can return a task that never started.
      await ledger
        .attachTask(lease.id, taskArn)
        .catch((error: unknown) => log({ level: "warn", msg: "could not note the task on its lease", ...context, task_arn: taskArn, error: errorMessage(error) }));
      return { status: "started", taskArn };
    } catch (error) {
      lastError = error;
      if (isDefiniteRunTaskRefusal(error) && outcomeUnknown) {
        log({
          level: "error",
          msg: "RunTask retry refused after an unknown outcome; lease kept (the first call may have started the task: its runner renews the lease, else the stopped-task sweep or its expiry returns it)",
          ...context,
          error: errorMessage(error),
        });
        return { status: "unknown", error: errorMessage(error) };
      }
      if (isDefiniteRunTaskRefusal(error)) {
        // The task never started, so nothing will renew or release this lease.
        const released = await ledger.release(lease.id).then(
          () => true,
          () => false,
        );
        log({ level: "error", msg: released ? "RunTask refused; lease released" : "RunTask refused; lease left to expire (release failed)", ...context, error: errorMessage(error) });
        return { status: "refused", error: errorMessage(error) };
      }
      outcomeUnknown = true;
      log({ level: "warn", msg: "RunTask outcome unknown; retrying with the same clientToken", ...context, attempt: attempt + 1, error: errorMessage(error) });
    }
  }
  log({
    level: "error",
    msg: "RunTask outcome still unknown; lease kept (its runner renews it if the task started, else it expires)",
    ...context,
    error: errorMessage(lastError),
  });
  return { status: "unknown", error: errorMessage(lastError) };
}
