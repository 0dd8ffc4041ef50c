/** The claim loop: claim one job at a time, run it, and decide when the task's life ends (idle, hand-back, RUNNER_MAX_JOBS, failures, drain). */
import type { WaitingKind } from "../../supabase/functions/_shared/unmet-demand.ts";
import { jitteredBackoffMs, sleepUnlessAborted } from "./backoff.ts";
import type { ClaimedJob } from "./job-queue.ts";
import { runJob, type RunJobContext } from "./run-job.ts";
import { RUNNER_EXIT_CODES, type RunnerExitCode } from "./runner-exit-codes.ts";

export interface ClaimLoopContext extends RunJobContext {
  /** Kinds (of any environment) other than this runner's own that dispatch found waiting for room. */
  othersWaitingForRoom: () => Promise<WaitingKind[]>;
}

export async function claimLoop(context: ClaimLoopContext): Promise<RunnerExitCode> {
  const { config, queue, log, draining } = context;
  let idleSince = Date.now();
  let claimFailures = 0;
  let infrastructureFailures = 0;

  let jobsTaken = 0;
  // The job claimed together with the last completion, if any.
  let next: ClaimedJob | undefined;
  while (!draining.aborted || next !== undefined) {
    if (next === undefined && jobsTaken >= config.maxJobs) {
      log.info("took RUNNER_MAX_JOBS jobs; exiting so dispatch can re-plan the capacity", { jobs: jobsTaken });
      return RUNNER_EXIT_CODES.ok;
    }
    let job: ClaimedJob | undefined = next;
    next = undefined;
    try {
      job ??= await queue.claim();
      claimFailures = 0;
    } catch (error) {
      claimFailures += 1;
      if (Date.now() - idleSince >= config.idleExitMs) {
        log.error("database unreachable for the whole idle period; exiting", { error, claim_failures: claimFailures });
        return RUNNER_EXIT_CODES.infrastructure;
      }
      const retryInMs = jitteredBackoffMs(claimFailures);
      log.warn("claim failed; backing off", { error, retry_in_ms: retryInMs });
      await sleepUnlessAborted(retryInMs, draining);
      continue;
    }

    if (job === undefined) {
      const idleMs = Date.now() - idleSince;
      if (idleMs >= config.idleExitMs) {
        log.info("nothing to claim; exiting idle", { idle_ms: idleMs });
        return RUNNER_EXIT_CODES.ok;
      }
      if (idleMs >= config.handBackMs) {
        // Idle capacity is worth more to a kind that waits for room than to
        // a possible row of ours later: hand it back now.
        const waiting = await context.othersWaitingForRoom().catch((error: unknown) => {
          log.warn("could not read the kinds waiting for room; staying until the idle period ends", { error });
          return [];
        });
        if (waiting.length > 0) {
          log.info("nothing to claim while other work waits for room; handing the capacity back", {
            idle_ms: idleMs,
            waiting_for_room: waiting.map((entry) => `${entry.environment}/${entry.kind}`),
          });
          return RUNNER_EXIT_CODES.ok;
        }
      }
      const untilHandBackCheck = idleMs < config.handBackMs ? config.handBackMs - idleMs : config.pollIntervalMs;
      await sleepUnlessAborted(Math.min(config.pollIntervalMs, untilHandBackCheck, config.idleExitMs - idleMs), draining);
      continue;
    }

    jobsTaken += 1;
    const { result, claimedNext } = await runJob(job, context, jobsTaken < config.maxJobs);
    next = claimedNext;
    idleSince = Date.now();
    if (result === "released-configuration" || result === "rejected") {
      // Every job would fail alike: stop the pool rather than cycle the queue.
      // (A released job claimed nothing next: only a completion claims one.)
      log.error("the deployment is misconfigured; exiting so no job is spent on it", {});
      return RUNNER_EXIT_CODES.configuration;
    }
    if (result === "released-infrastructure") {
      infrastructureFailures += 1;
      if (infrastructureFailures >= config.maxInfrastructureFailures) {
        log.error("too many infrastructure failures in a row; exiting", { infrastructure_failures: infrastructureFailures });
        return RUNNER_EXIT_CODES.infrastructure;
      }
      // The released job itself backs off in SQL; the next one may hit the same fault, so give it a moment to pass.
      await sleepUnlessAborted(jitteredBackoffMs(infrastructureFailures, { baseMs: 1000 }), draining);
    } else if (result === "completed" || result === "failed") {
      // Only a job that ran its course shows the runner works again.
      infrastructureFailures = 0;
    }
  }
  return RUNNER_EXIT_CODES.ok;
}
