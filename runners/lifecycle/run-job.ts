/** One job's run: the handler under its job lease and abort signal, then its outcome reported. */
import { errorMessage } from "../../supabase/functions/_shared/error-message.ts";
import type { JobHandler, JobOutcome } from "./job-handler.ts";
import { classifyFailure, ConfigurationError, InfrastructureError, RetryableJobError } from "./job-errors.ts";
import { LeaseLostError, type ClaimedJob, type JobQueue } from "./job-queue.ts";
import { startLeaseRenewal } from "./lease-renewal.ts";
import { recordOutcome } from "./record-outcome.ts";
import { report, type ReportKind, type ReportResult } from "./report.ts";
import type { RunnerConfig } from "./runner-config.ts";
import type { JobBudget } from "./slot-pool-state.ts";
import type { Logger } from "./structured-log.ts";

/**
 * After aborting a handler, how long to wait for it to give up before the
 * job is reported anyway. A handler that ignores its signal must not hold the
 * runner past SIGKILL: Spot allows 120 s, the grace takes at most 110.
 */
export const HANDLER_ABORT_SETTLE_MS = 5_000;

/** What one job's run needs from the runner around it. */
export interface RunJobContext {
  config: RunnerConfig;
  queue: JobQueue;
  handle: JobHandler;
  log: Logger;
  /** Aborted when the runner drains: the job gets the shutdown grace, then is aborted. */
  draining: AbortSignal;
}

/**
 * How one job's run ended, for the claim loop. "rejected": the database
 * refused the runner's report whatever the values (a grant or function
 * missing) and even the release did not land: as misconfigured as
 * "released-configuration".
 */
export type JobResult = "completed" | "failed" | "released" | "released-infrastructure" | "released-configuration" | "rejected" | "lease-lost" | "unreported";

/** The result of a report that did not land. */
function notRecorded(reported: { readonly why: string }): JobResult {
  return reported.why === "rejected" ? "rejected" : "unreported";
}

/**
 * `nextJob`: RUNNER_MAX_JOBS' budget, drawn on when the completion claims the
 * slot's next job in the same round trip, given back when it found none.
 */
export async function runJob(job: ClaimedJob, context: RunJobContext, nextJob: JobBudget): Promise<{ result: JobResult; claimedNext?: ClaimedJob }> {
  const { config, queue, handle, draining } = context;
  const log = context.log.child({ job_id: job.id, attempt: job.attempt, document_source: job.documentSource });
  const startedAt = Date.now();

  // A claim that raced with SIGTERM: hand the job straight back.
  if (draining.aborted) {
    const released = await report(log, "release", () => queue.release(job), {
      leaseExpiresAt: () => job.leaseExpiresAt.getTime(),
      deadlineAt: Date.now() + config.reportDeadlineMs,
    });
    log.info("job released unstarted: claimed as the runner began draining", released.ok ? { status_id: released.value } : { outcome: released.why });
    return { result: released.ok ? "released" : notRecorded(released) };
  }
  log.info("job claimed", { lease_expires_at: job.leaseExpiresAt });

  const stopJob = new AbortController();
  let stopReason: "shutdown" | "lease-lost" | "deadline" | undefined;
  const abortJob = (reason: "shutdown" | "lease-lost" | "deadline", detail: string) => {
    if (stopJob.signal.aborted) return;
    stopReason = reason;
    log.warn("aborting the job handler", { reason, detail });
    stopJob.abort(new Error(`job aborted: ${detail}`));
  };

  // Set while the outcome is being recorded; resolves true once it landed.
  let reportLanded: Promise<boolean> | undefined;
  const heartbeat = startLeaseRenewal({
    what: "job lease",
    renew: async () => {
      try {
        return { held: true, expiresAt: (await queue.heartbeat(job)).getTime() };
      } catch (error) {
        if (error instanceof LeaseLostError) {
          // Our own completion, fail or release ends the lease: a heartbeat
          // that raced with it and lost is not a lost job.
          if (reportLanded !== undefined && (await reportLanded)) return { held: true, expiresAt: Date.now() };
          return { held: false, reason: error.message };
        }
        throw error;
      }
    },
    intervalMs: Math.floor((config.jobLeaseSeconds * 1000) / 3),
    expiresAt: job.leaseExpiresAt.getTime(),
    log,
    onLost: (reason) => abortJob("lease-lost", reason),
  });

  /**
   * Records a transition while the heartbeat keeps the job lease alive, so a
   * report that has to wait out a database outage still holds the lease it
   * reports under. Retries until it lands, the lease is gone or
   * RUNNER_REPORT_DEADLINE_SECONDS pass (then the heartbeat stops with
   * this function, the lease lapses and the reaper requeues the job).
   */
  const reportUnderLease = async <T>(what: ReportKind, call: () => Promise<T>): Promise<ReportResult<T>> => {
    let settle: (landed: boolean) => void = () => {};
    reportLanded = new Promise<boolean>((resolve) => {
      settle = resolve;
    });
    const limits = { leaseExpiresAt: () => (heartbeat.lost ? undefined : heartbeat.expiresAt), deadlineAt: Date.now() + config.reportDeadlineMs };
    const reported = await report(log, what, call, limits).catch((error: unknown) => {
      settle(false);
      throw error;
    });
    settle(reported.ok);
    return reported;
  };

  // On shutdown the job keeps running for the grace period, then is aborted.
  let graceTimer: NodeJS.Timeout | undefined;
  const onDrain = () => {
    log.info("shutdown: letting the job finish within the grace period", { grace_ms: config.shutdownGraceMs });
    graceTimer = setTimeout(() => abortJob("shutdown", "the shutdown grace period ended"), config.shutdownGraceMs);
  };
  draining.addEventListener("abort", onDrain, { once: true });
  // A hung handler must not hold the job and the capacity while the heartbeat renews.
  const runTimer = setTimeout(() => abortJob("deadline", `the job ran past its maximum run time of ${config.maxRunMs / 1000} s (JOB_MAX_RUN_SECONDS)`), config.maxRunMs);

  try {
    let settled: { ok: true; outcome: JobOutcome; afterAbort: boolean } | { ok: false; error: unknown } | undefined;
    try {
      const running = Promise.resolve()
        .then(() => handle(job, { signal: stopJob.signal, log }))
        .then(
          // Whether the handler returned before or after we aborted it decides whether its result counts.
          (outcome) => ({ ok: true as const, outcome, afterAbort: stopJob.signal.aborted }),
          (error: unknown) => ({ ok: false as const, error }),
        );
      settled = await untilSettledOrAbandoned(running, stopJob.signal);
    } finally {
      draining.removeEventListener("abort", onDrain);
      if (graceTimer !== undefined) clearTimeout(graceTimer);
      clearTimeout(runTimer);
    }

    const durationMs = Date.now() - startedAt;
    if (stopReason === "lease-lost" || heartbeat.lost) {
      log.warn("job dropped: its lease is no longer ours, so nothing is written", { duration_ms: durationMs });
      return { result: "lease-lost" };
    }

    if (settled?.ok && settled.afterAbort) {
      // Cut short by us: whatever it returned may be partial, so it is never recorded as a result.
      log.warn("the handler returned after it was aborted; its result is not recorded", { duration_ms: durationMs });
      settled = undefined;
    }

    if (settled?.ok) {
      const outcome = settled.outcome;
      const mismatch = outcomeMismatch(job, outcome);
      if (mismatch === undefined) {
        // Not draining: claim the next job in the same round trip. (Should a
        // retry follow a lost reply, the SQL replays the first call's answer,
        // its claim included: migration 20261205030500.)
        const claimNext = !draining.aborted && nextJob.take();
        const completed = await reportUnderLease("complete", () => recordOutcome(queue, job, outcome, claimNext));
        if (claimNext && !(completed.ok && completed.value.next !== undefined)) nextJob.giveBack();
        if (completed.ok) {
          log.info("job completed", { status_id: completed.value.status, duration_ms: durationMs });
          return { result: "completed", ...(completed.value.next ? { claimedNext: completed.value.next } : {}) };
        }
        if (completed.why === "refused") {
          // The database refused the result itself (blank OCR text, a malformed
          // path, a value past a limit): it is a failed attempt, recorded as one below.
          settled = { ok: false, error: new RetryableJobError(`the result was refused: ${errorMessage(completed.error)}`) };
        } else if (completed.why === "rejected") {
          // The database refuses this runner (a grant or a function missing):
          // the deployment's fault; release the job and stop the pool.
          settled = { ok: false, error: new ConfigurationError(`the database rejected the runner's result: ${errorMessage(completed.error)}`) };
        } else return { result: "unreported" };
      } else {
        settled = { ok: false, error: new Error(mismatch) };
      }
    }

    if (stopReason === "shutdown") {
      // The handler was cut short by us, not by the document: no attempt spent.
      const released = await reportUnderLease("release", () => queue.release(job));
      if (!released.ok) return { result: notRecorded(released) };
      log.info("job released at shutdown", { status_id: released.value, duration_ms: durationMs });
      return { result: "released" };
    }

    // Past its maximum run time the handler was cut short by us: whatever it
    // threw on the way out (an AbortError) is not the document's verdict.
    const failure =
      stopReason === "deadline"
        ? classifyFailure(new InfrastructureError(`the job ran past its maximum run time of ${config.maxRunMs / 1000} s and was aborted`))
        : classifyFailure(settled === undefined ? new Error("the handler did not settle") : settled.error);
    if (failure.disposition === "infrastructure" || failure.disposition === "configuration") {
      const released = await reportUnderLease("release", () => queue.releaseAfterInfrastructureFailure(job, log.redact(failure.message), failure.kind));
      log.warn("job released after an infrastructure failure (no attempt spent)", {
        error: failure.message,
        error_kind: failure.kind,
        ...(released.ok ? { status_id: released.value } : { outcome: released.why }),
        duration_ms: durationMs,
      });
      if (!released.ok) return { result: notRecorded(released) };
      return { result: failure.disposition === "configuration" ? "released-configuration" : "released-infrastructure" };
    }
    const isFinal = failure.disposition === "final";
    const failed = await reportUnderLease("fail", () => queue.fail(job, log.redact(failure.message), isFinal, failure.kind));
    if (!failed.ok) return { result: notRecorded(failed) };
    log.warn("job failed", { disposition: failure.disposition, error_kind: failure.kind, error: failure.message, status_id: failed.value, duration_ms: durationMs });
    return { result: "failed" };
  } finally {
    // Only now: the heartbeat had to outlive the report. After this no
    // heartbeat runs, so none can find the lease gone and cry wolf.
    await heartbeat.stop();
  }
}

/**
 * Waits for the handler; once `stop` fires, gives it HANDLER_ABORT_SETTLE_MS
 * to give up, then resolves undefined so the job can be reported anyway.
 */
async function untilSettledOrAbandoned<T>(running: Promise<T>, stop: AbortSignal): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  const abandoned = new Promise<undefined>((resolve) => {
    const startSettleTimer = () => {
      timer = setTimeout(() => resolve(undefined), HANDLER_ABORT_SETTLE_MS);
    };
    if (stop.aborted) startSettleTimer();
    else {
      onAbort = startSettleTimer;
      stop.addEventListener("abort", onAbort, { once: true });
    }
  });
  try {
    return await Promise.race([running, abandoned]);
  } finally {
    if (timer !== undefined) clearTimeout(timer);
    if (onAbort !== undefined) stop.removeEventListener("abort", onAbort);
  }
}

function outcomeMismatch(job: ClaimedJob, outcome: JobOutcome): string | undefined {
  const expected = job.kind === "registre" ? "extracted" : "ocr";
  // Checked at run time too: a handler written in plain JS may return anything.
  const actual: unknown = (outcome as Partial<JobOutcome> | undefined)?.kind;
  if (actual === expected) return undefined;
  return `the ${job.kind} handler returned outcome ${JSON.stringify(actual)}; expected "${expected}"`;
}
