/**
 * The life every runner shares, whatever its job: hold the capacity lease,
 * claim one job of its kind at a time, keep the job's lease alive while the
 * handler works, report the outcome, and leave cleanly.
 *
 * Leaving:
 * - nothing to claim for RUNNER_IDLE_EXIT_SECONDS → release the ledger
 *   lease, exit 0; sooner (RUNNER_HAND_BACK_SECONDS) when dispatch recorded
 *   another kind or environment waiting for room; after any such exit, hint
 *   dispatch so the returned room is planned at once;
 * - SIGTERM (ECS StopTask, Spot reclaim) or SIGINT → claim nothing more; the
 *   current job may finish within SHUTDOWN_GRACE_SECONDS, else its handler is
 *   aborted and the job released without spending an attempt; release the
 *   ledger lease, exit 0;
 * - the ledger lease lost (not renewed in time) → the capacity may already
 *   be someone else's: drain as on SIGTERM, exit non-zero;
 * - RUNNER_MAX_INFRASTRUCTURE_FAILURES in a row → this task cannot work:
 *   stop claiming, exit non-zero (dispatch starts a fresh task if work
 *   remains).
 */
import { setTimeout as delay } from "node:timers/promises";
import { Redis } from "@upstash/redis";
import postgres from "postgres";
import { CapacityLedger } from "../../supabase/functions/_shared/capacity-ledger.ts";
import { errorMessage } from "../../supabase/functions/_shared/error-message.ts";
import { UnmetDemandBoard, type WaitingKind } from "../../supabase/functions/_shared/unmet-demand.ts";
import { jitteredBackoffMs, sleepUnlessAborted } from "./backoff.ts";
import { requestDispatch } from "./dispatch-hint.ts";
import { classifyFailure, RetryableJobError } from "./job-errors.ts";
import { connectJobDatabase, JobQueue, LeaseLostError, type ClaimedJob, type CompletedAndNext } from "./job-queue.ts";
import { startLeaseRenewal, type LeaseRenewal } from "./lease-renewal.ts";
import { taskRecord } from "./task-record.ts";
import { secretValues, type RunnerConfig } from "./runner-config.ts";
import { createLogger, type Logger } from "./structured-log.ts";

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

export const RUNNER_EXIT_CODES = {
  /** Idle, or drained after SIGTERM. */
  ok: 0,
  /** A bug or a configuration error. */
  unexpected: 1,
  /** Too many infrastructure failures in a row, or the database unreachable for the whole idle period. */
  infrastructure: 2,
  /** The ledger lease expired or vanished: this task ran without capacity. */
  ledgerLeaseLost: 3,
  /** The deployment is misconfigured (a ConfigurationError: Gemini key, model, billing): no job can succeed until it is fixed. */
  configuration: 4,
} as const;
export type RunnerExitCode = (typeof RUNNER_EXIT_CODES)[keyof typeof RUNNER_EXIT_CODES];

export interface RunRunnerOptions {
  config: RunnerConfig;
  handle: JobHandler;
  /** @default a JSON-lines logger on stdout built from config */
  log?: Logger;
  /** Listen for SIGTERM and SIGINT on this process. @default true */
  handleSignals?: boolean;
}

/**
 * After aborting a handler, how long to wait for it to give up before the
 * job is reported anyway. A handler that ignores its signal must not hold the
 * runner past SIGKILL: Spot allows 120 s, the grace takes at most 110.
 */
export const HANDLER_ABORT_SETTLE_MS = 5_000;

/** One Upstash call (both tries) gives up after this long. */
const UPSTASH_CALL_TIMEOUT_MS = 5_000;

/** Tries of a ledger call (the first renewal, the release at exit) before giving up. Job outcomes retry for as long as the job lease lasts: see report(). */
const REPORT_ATTEMPTS = 3;

type JobResult = "completed" | "failed" | "released" | "released-infrastructure" | "released-configuration" | "lease-lost" | "unreported";

/** Runs until idle, shutdown or a fatal condition; resolves with the process exit code. */
export async function runRunner(options: RunRunnerOptions): Promise<RunnerExitCode> {
  const { config, handle, handleSignals = true } = options;
  const log =
    options.log ??
    createLogger({
      base: { kind: config.jobKind, environment: config.environment, worker_id: config.workerId },
      level: config.logLevel,
      secrets: secretValues(config),
    });

  const redis = new Redis({
    url: config.upstash.url,
    token: config.upstash.token,
    enableTelemetry: false,
    // The renewal loop retries on its own schedule; the client's default (5
    // retries, ≈12 s) would make one release at shutdown outlast Spot's
    // notice. A signal *function* makes a timed-out call throw, where a plain
    // signal would resolve with the abort reason as if Redis had answered it.
    retry: { retries: 1, backoff: () => 250 },
    signal: () => AbortSignal.timeout(UPSTASH_CALL_TIMEOUT_MS),
  });
  const ledger = new CapacityLedger(redis, config.capacity, { keyPrefix: config.ledgerKeyPrefix });
  const sql = connectJobDatabase(config.databaseUrl, { tls: config.databaseTls });
  const queue = new JobQueue(sql, { kind: config.jobKind, workerId: config.workerId, leaseSeconds: config.jobLeaseSeconds });
  // The runner_tasks row behind the running_tasks view (start, heartbeats, exit).
  const tasks = taskRecord(sql, config, log);
  const unmetDemand = new UnmetDemandBoard(redis, { keyPrefix: config.unmetDemandKeyPrefix });
  const othersWaitingForRoom = () => unmetDemand.waitingOtherThan({ environment: config.environment, kind: config.jobKind });

  // Aborted when the runner must stop claiming; the reason says why.
  const draining = new AbortController();
  let exitCode: RunnerExitCode = RUNNER_EXIT_CODES.ok;
  const drain = (reason: string, code: RunnerExitCode) => {
    if (draining.signal.aborted) return;
    if (code !== RUNNER_EXIT_CODES.ok) exitCode = code;
    log.info("draining: claiming no more jobs", { reason });
    draining.abort(reason);
  };
  const onSignal = (signal: NodeJS.Signals) => {
    if (draining.signal.aborted) log.info("signal received while already draining", { signal });
    else drain(`received ${signal}`, RUNNER_EXIT_CODES.ok);
  };
  if (handleSignals) {
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
  }

  let ledgerRenewal: LeaseRenewal | undefined;
  // Set when the claim loop ends on its own (idle, hand-back, RUNNER_MAX_JOBS, failures): the room is free for others.
  let capacityHandedBack = false;
  try {
    log.info("runner started", {
      ledger_lease_id: config.ledgerLeaseId,
      job_lease_seconds: config.jobLeaseSeconds,
      idle_exit_ms: config.idleExitMs,
      shutdown_grace_ms: config.shutdownGraceMs,
    });

    // Dispatch acquired the lease before starting this task; renewing it now
    // both proves it is still ours and restarts its TTL after the cold start.
    const ledgerTtlMs = config.capacity.leaseTtlMs;
    // A lease the ledger lost (Redis flushed, or it expired) is taken back
    // under the same id if capacity allows, else the runner drains: it never
    // works on capacity the ledger does not count.
    const renewLedger = async () => {
      const askedAt = Date.now();
      const kept = await ledger.renewOrReregister(config.ledgerLeaseId, config.jobKind, {
        environment: config.environment,
        holder: `runner:${config.workerId}`.slice(0, 200),
      });
      if (!kept.held) return { held: false as const, reason: kept.reason };
      if (kept.reregistered) log.warn("ledger lease was missing; re-registered it", { ledger_lease_id: config.ledgerLeaseId });
      tasks.heartbeat(askedAt + ledgerTtlMs);
      return { held: true as const, expiresAt: askedAt + ledgerTtlMs };
    };
    const first = await firstLedgerRenewal(renewLedger, log);
    if (!first.held) {
      log.error("not starting: the capacity lease is not held", { reason: first.reason });
      exitCode = first.unreachable ? RUNNER_EXIT_CODES.infrastructure : RUNNER_EXIT_CODES.ledgerLeaseLost;
      return exitCode;
    }
    ledgerRenewal = startLeaseRenewal({
      what: "ledger lease",
      renew: renewLedger,
      intervalMs: Math.floor(ledgerTtlMs / 3),
      expiresAt: first.expiresAt,
      log,
      onLost: (reason) => drain(`ledger lease lost: ${reason}`, RUNNER_EXIT_CODES.ledgerLeaseLost),
    });

    const loopCode = await claimLoop({ config, queue, handle, log, draining: draining.signal, othersWaitingForRoom });
    capacityHandedBack = !draining.signal.aborted;
    // A lost ledger lease (set by drain) says more than the loop's own ending.
    if (exitCode === RUNNER_EXIT_CODES.ok) exitCode = loopCode;
    return exitCode;
  } catch (error) {
    log.error("runner stopped by an unexpected error", { error });
    exitCode = RUNNER_EXIT_CODES.unexpected;
    return exitCode;
  } finally {
    if (handleSignals) {
      process.off("SIGTERM", onSignal);
      process.off("SIGINT", onSignal);
    }
    await ledgerRenewal?.stop();
    await releaseLedgerLease(ledger, config.ledgerLeaseId, log);
    if (capacityHandedBack) await requestDispatch(sql, log);
    await tasks.finished(exitCode, draining.signal.aborted ? String(draining.signal.reason) : undefined);
    await sql.end({ timeout: 5 }).catch((error: unknown) => log.warn("closing the database pool failed", { error }));
    log.info("runner exiting", { exit_code: exitCode });
  }
}

async function firstLedgerRenewal(
  renew: () => Promise<{ held: true; expiresAt: number } | { held: false; reason: string }>,
  log: Logger,
): Promise<{ held: true; expiresAt: number } | { held: false; reason: string; unreachable: boolean }> {
  let lastError: unknown;
  for (let attempt = 1; attempt <= REPORT_ATTEMPTS; attempt += 1) {
    try {
      const result = await renew();
      return result.held ? result : { ...result, unreachable: false };
    } catch (error) {
      lastError = error;
      log.warn("first ledger renewal failed", { error, attempt });
      if (attempt < REPORT_ATTEMPTS) await delay(jitteredBackoffMs(attempt, { baseMs: 1000 }));
    }
  }
  return { held: false, reason: `the ledger could not be reached: ${String(lastError)}`, unreachable: true };
}

async function releaseLedgerLease(ledger: CapacityLedger, leaseId: string, log: Logger): Promise<void> {
  for (let attempt = 1; attempt <= REPORT_ATTEMPTS; attempt += 1) {
    try {
      const freed = await ledger.release(leaseId);
      log.info("ledger lease released", { freed_capacity: freed });
      return;
    } catch (error) {
      log.warn("releasing the ledger lease failed", { error, attempt });
      if (attempt < REPORT_ATTEMPTS) await delay(jitteredBackoffMs(attempt));
    }
  }
  log.error("ledger lease left to expire: release kept failing");
}

interface ClaimLoopContext {
  config: RunnerConfig;
  queue: JobQueue;
  handle: JobHandler;
  log: Logger;
  draining: AbortSignal;
  /** Kinds (of any environment) other than this runner's own that dispatch found waiting for room. */
  othersWaitingForRoom: () => Promise<WaitingKind[]>;
}

async function claimLoop(context: ClaimLoopContext): Promise<RunnerExitCode> {
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
    if (result === "released-configuration") {
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

async function runJob(job: ClaimedJob, context: ClaimLoopContext, mayClaimNext: boolean): Promise<{ result: JobResult; claimedNext?: ClaimedJob }> {
  const { config, queue, handle, draining } = context;
  const log = context.log.child({ job_id: job.id, attempt: job.attempt, document_source: job.documentSource });
  const startedAt = Date.now();

  // A claim that raced with SIGTERM: hand the job straight back.
  if (draining.aborted) {
    const released = await report(log, "release", () => queue.release(job), () => job.leaseExpiresAt.getTime());
    log.info("job released unstarted: claimed as the runner began draining", released.ok ? { status_id: released.value } : { outcome: released.why });
    return { result: released.ok ? "released" : "unreported" };
  }
  log.info("job claimed", { lease_expires_at: job.leaseExpiresAt });

  const stopJob = new AbortController();
  let stopReason: "shutdown" | "lease-lost" | undefined;
  const abortJob = (reason: "shutdown" | "lease-lost", detail: string) => {
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
   * reports under. Retries until it lands or the lease is gone.
   */
  const reportUnderLease = async <T>(what: ReportKind, call: () => Promise<T>): Promise<ReportResult<T>> => {
    let settle: (landed: boolean) => void = () => {};
    reportLanded = new Promise<boolean>((resolve) => {
      settle = resolve;
    });
    const reported = await report(log, what, call, () => (heartbeat.lost ? undefined : heartbeat.expiresAt)).catch((error: unknown) => {
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
        // retry follow a lost reply, the first call's claim is never seen; its
        // lease expires and the reaper returns that job.)
        const claimNext = mayClaimNext && !draining.aborted;
        const completed = await reportUnderLease("complete", () => recordOutcome(queue, job, outcome, claimNext));
        if (completed.ok) {
          log.info("job completed", { status_id: completed.value.status, duration_ms: durationMs });
          return { result: "completed", ...(completed.value.next ? { claimedNext: completed.value.next } : {}) };
        }
        if (completed.why !== "refused") return { result: "unreported" };
        // The database refused the result itself (blank OCR text, a malformed
        // path): it is a failed attempt, recorded as one below.
        settled = { ok: false, error: new RetryableJobError(`the result was refused: ${errorMessage(completed.error)}`) };
      } else {
        settled = { ok: false, error: new Error(mismatch) };
      }
    }

    if (stopReason === "shutdown") {
      // The handler was cut short by us, not by the document: no attempt spent.
      const released = await reportUnderLease("release", () => queue.release(job));
      if (!released.ok) return { result: "unreported" };
      log.info("job released at shutdown", { status_id: released.value, duration_ms: durationMs });
      return { result: "released" };
    }

    const failure = classifyFailure(settled === undefined ? new Error("the handler did not settle") : settled.error);
    if (failure.disposition === "infrastructure" || failure.disposition === "configuration") {
      const released = await reportUnderLease("release", () => queue.releaseAfterInfrastructureFailure(job, log.redact(failure.message), failure.kind));
      log.warn("job released after an infrastructure failure (no attempt spent)", {
        error: failure.message,
        error_kind: failure.kind,
        ...(released.ok ? { status_id: released.value } : { outcome: released.why }),
        duration_ms: durationMs,
      });
      if (!released.ok) return { result: "unreported" };
      return { result: failure.disposition === "configuration" ? "released-configuration" : "released-infrastructure" };
    }
    const isFinal = failure.disposition === "final";
    const failed = await reportUnderLease("fail", () => queue.fail(job, log.redact(failure.message), isFinal, failure.kind));
    if (!failed.ok) return { result: "unreported" };
    log.warn("job failed", { disposition: failure.disposition, error_kind: failure.kind, error: failure.message, status_id: failed.value, duration_ms: durationMs });
    return { result: "failed" };
  } finally {
    // Only now: the heartbeat had to outlive the report. After this no
    // heartbeat runs, so none can find the lease gone and cry wolf.
    await heartbeat.stop();
  }
}

/** Records a finished job's outcome; with `claimNext`, claims the runner's next job in the same round trip. */
async function recordOutcome(queue: JobQueue, job: ClaimedJob, outcome: JobOutcome, claimNext: boolean): Promise<CompletedAndNext> {
  if (outcome.kind === "extracted") {
    if (claimNext) return queue.completeExtractionAndClaimNext(job, outcome.supabasePath);
    return { status: await queue.completeExtraction(job, outcome.supabasePath), next: undefined };
  }
  if (claimNext) return queue.completeOcrAndClaimNext(job, outcome.fileContent, outcome.boostedFileContent);
  return { status: await queue.completeOcr(job, outcome.fileContent, outcome.boostedFileContent), next: undefined };
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

type ReportKind = "complete" | "fail" | "release";

/**
 * How a report ended: recorded, or not, and why not:
 * - lease-lost: someone else owns the job now; write nothing more;
 * - refused: the database rejected the values themselves (SQLSTATE class 22
 *   or 23); sending them again would be refused again;
 * - lease-expired: it kept failing until the job lease ran out; the reaper
 *   returns the job.
 */
type ReportResult<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly why: "lease-lost" | "lease-expired" }
  | { readonly ok: false; readonly why: "refused"; readonly error: unknown };

/** Longest wait between two tries of a report: the database may come back any moment. */
const REPORT_RETRY_CAP_MS = 5_000;

/**
 * Records a transition, retrying with backoff for as long as the job lease
 * is valid (`leaseExpiresAt` gives the last confirmed expiry, undefined once
 * the lease is known lost): finished work is never given up while it could
 * still be written. Gives up at once on a lost lease or a refusal of the
 * values.
 */
async function report<T>(log: Logger, what: ReportKind, call: () => Promise<T>, leaseExpiresAt: () => number | undefined): Promise<ReportResult<T>> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      const value = await call();
      if (attempt > 1) log.info(`${what} recorded after ${attempt} tries`);
      return { ok: true, value };
    } catch (error) {
      if (error instanceof LeaseLostError) {
        log.warn(`${what} refused: the job's lease is no longer ours`, { error });
        return { ok: false, why: "lease-lost" };
      }
      if (error instanceof postgres.PostgresError && /^2[23]/.test(error.code)) {
        log.error(`${what} refused by the database`, { error });
        return { ok: false, why: "refused", error };
      }
      const expiresAt = leaseExpiresAt();
      const leftMs = expiresAt === undefined ? 0 : expiresAt - Date.now();
      const retryInMs = Math.max(100, jitteredBackoffMs(attempt, { baseMs: 250, capMs: REPORT_RETRY_CAP_MS }));
      if (leftMs <= retryInMs) {
        log.error(`${what} could not be recorded before the job lease expired; the reaper will requeue the job`, { error, attempts: attempt });
        return { ok: false, why: "lease-expired" };
      }
      log.warn(`${what} failed; retrying while the job lease lasts`, { error, attempt, retry_in_ms: retryInMs, lease_expires_in_ms: leftMs });
      await delay(retryInMs);
    }
  }
}
