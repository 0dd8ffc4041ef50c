/**
 * The claim loop: RUNNER_CONCURRENCY slots, each claiming and running one job
 * at a time under its own job lease and heartbeat (run-job.ts), and the
 * task's life decided across them (slot-pool-state.ts):
 * - idle and hand-back count from when the last slot's job ended, and only
 *   while no slot runs a job: a task with a job in flight is not idle;
 * - RUNNER_MAX_JOBS counts the task's jobs, whichever slot took them (and
 *   the ones a completion claimed next);
 * - RUNNER_MAX_INFRASTRUCTURE_FAILURES counts the task's infrastructure
 *   releases in a row, in the order they ended, any slot's completion or
 *   failure resetting it;
 * - a misconfiguration, too many infrastructure failures or the idle exit
 *   stop every slot from claiming; jobs in flight run their course (they are
 *   neither aborted nor released: nothing is wrong with them);
 * - on drain (SIGTERM, ledger lease lost) each slot's job gets the grace
 *   period, then is released (run-job.ts).
 */
import type { WaitingKind } from "../../supabase/functions/_shared/unmet-demand.ts";
import { jitteredBackoffMs, sleepUnlessAborted } from "./backoff.ts";
import type { JobHandler } from "./job-handler.ts";
import type { ClaimedJob } from "./job-queue.ts";
import { runJob, type RunJobContext } from "./run-job.ts";
import { RUNNER_EXIT_CODES, type RunnerExitCode } from "./runner-exit-codes.ts";
import { SlotPoolState } from "./slot-pool-state.ts";

/** One of the task's slots: its handler, and whether it may claim now. */
export interface RunnerSlot {
  readonly handle: JobHandler;
  /**
   * Asked before each claim: false keeps the slot from claiming (it waits as
   * an idle slot would), e.g. a registre slot with no registry account free,
   * so a job is never claimed only to be released for want of one.
   */
  readonly ready?: () => Promise<boolean>;
}

export interface ClaimLoopContext extends Omit<RunJobContext, "handle"> {
  /** Kinds (of any environment) other than this runner's own that dispatch found waiting for room. */
  othersWaitingForRoom: () => Promise<WaitingKind[]>;
  readonly slots: readonly RunnerSlot[];
}

export async function claimLoop(context: ClaimLoopContext): Promise<RunnerExitCode> {
  const state = new SlotPoolState(context.config.maxJobs);
  await Promise.all(context.slots.map((slot, index) => slotLoop(context, slot, index + 1, state)));
  return state.exitCode;
}

async function slotLoop(context: ClaimLoopContext, slot: RunnerSlot, slotNumber: number, state: SlotPoolState): Promise<void> {
  const { config, queue, draining } = context;
  const log = context.slots.length > 1 ? context.log.child({ slot: slotNumber }) : context.log;
  const jobContext: RunJobContext = { ...context, handle: slot.handle, log };
  // Sleeps end on shutdown and when another slot stopped the task's claiming.
  const wake = AbortSignal.any([draining, state.stopped]);
  let claimFailures = 0;
  let notReadyLogged = false;
  // The job claimed together with the last completion, if any.
  let next: ClaimedJob | undefined;
  while (next !== undefined || !(draining.aborted || state.stopped.aborted)) {
    let job: ClaimedJob | undefined = next;
    next = undefined;
    if (job === undefined) {
      if (!state.takeJob()) {
        if (!state.maxJobsLogged) {
          state.maxJobsLogged = true;
          log.info("took RUNNER_MAX_JOBS jobs; exiting so dispatch can re-plan the capacity", { jobs: state.jobsTaken });
        }
        return;
      }
      let ready = true;
      try {
        ready = slot.ready === undefined || (await slot.ready());
        job = ready ? await queue.claim() : undefined;
        if (ready) state.databaseAnswered();
        claimFailures = 0;
      } catch (error) {
        state.giveBackJob();
        claimFailures += 1;
        if (state.unreachableMs() >= config.idleExitMs) {
          log.error("database unreachable for the whole idle period; exiting", { error, claim_failures: claimFailures });
          state.stop(RUNNER_EXIT_CODES.infrastructure);
          return;
        }
        const retryInMs = jitteredBackoffMs(claimFailures);
        log.warn("claim failed; backing off", { error, retry_in_ms: retryInMs });
        await sleepUnlessAborted(retryInMs, wake);
        continue;
      }
      if (job === undefined) {
        state.giveBackJob();
        if (!ready && !notReadyLogged) log.info("slot not ready to claim (e.g. no registry account free); it waits as an idle slot", {});
        notReadyLogged = !ready;
        if (await idleEnds(context, state, log)) return;
        const idleMs = state.idleMs();
        const untilHandBackCheck = idleMs < config.handBackMs ? config.handBackMs - idleMs : config.pollIntervalMs;
        await sleepUnlessAborted(Math.max(1, Math.min(config.pollIntervalMs, untilHandBackCheck, config.idleExitMs - idleMs)), wake);
        continue;
      }
    }

    state.jobStarted();
    let outcome: Awaited<ReturnType<typeof runJob>>;
    try {
      outcome = await runJob(job, jobContext, state.nextJobBudget());
    } finally {
      state.jobEnded();
    }
    const { result, claimedNext } = outcome;
    next = claimedNext;
    if (result === "released-configuration" || result === "rejected") {
      // Every job would fail alike: stop the pool rather than cycle the queue.
      // (A released job claimed nothing next: only a completion claims one.)
      log.error("the deployment is misconfigured; exiting so no job is spent on it", {});
      state.stop(RUNNER_EXIT_CODES.configuration);
      return;
    }
    if (result === "released-infrastructure") {
      const failures = state.infrastructureFailed();
      if (failures >= config.maxInfrastructureFailures) {
        log.error("too many infrastructure failures in a row; exiting", { infrastructure_failures: failures });
        state.stop(RUNNER_EXIT_CODES.infrastructure);
        return;
      }
      // The released job itself backs off in SQL; the next one may hit the same fault, so give it a moment to pass.
      await sleepUnlessAborted(jitteredBackoffMs(failures, { baseMs: 1000 }), wake);
    } else if (result === "completed" || result === "failed") {
      // Only a job that ran its course shows the runner works again.
      state.infrastructureRecovered();
    }
  }
}

/** Whether the task's idle period (or its hand-back) is over; if so, every slot stops claiming. */
async function idleEnds(context: ClaimLoopContext, state: SlotPoolState, log: ClaimLoopContext["log"]): Promise<boolean> {
  const { config } = context;
  const idleMs = state.idleMs();
  if (idleMs >= config.idleExitMs) {
    if (state.stop(RUNNER_EXIT_CODES.ok)) log.info("nothing to claim; exiting idle", { idle_ms: idleMs });
    return true;
  }
  if (idleMs < config.handBackMs) return false;
  // Idle capacity is worth more to a kind that waits for room than to a
  // possible row of ours later: hand it back now.
  const waiting = await context.othersWaitingForRoom().catch((error: unknown) => {
    log.warn("could not read the kinds waiting for room; staying until the idle period ends", { error });
    return [];
  });
  // A slot may have claimed a job meanwhile: the task is no longer idle.
  if (waiting.length === 0 || state.idleMs() < config.handBackMs) return false;
  if (state.stop(RUNNER_EXIT_CODES.ok)) {
    log.info("nothing to claim while other work waits for room; handing the capacity back", {
      idle_ms: idleMs,
      waiting_for_room: waiting.map((entry) => `${entry.environment}/${entry.kind}`),
    });
  }
  return true;
}
