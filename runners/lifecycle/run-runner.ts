/**
 * The life every runner shares, whatever its job: hold the capacity lease,
 * run up to RUNNER_CONCURRENCY jobs of its kind at once (one per slot, each
 * claiming one job at a time: claim-loop.ts), keep each job's lease alive
 * while its handler works, report each outcome, and leave cleanly.
 *
 * Leaving:
 * - nothing to claim for RUNNER_IDLE_EXIT_SECONDS → release the ledger
 *   lease, exit 0; sooner (RUNNER_HAND_BACK_SECONDS) when dispatch recorded
 *   another kind or environment waiting for room; after any such exit, hint
 *   dispatch so the returned room is planned at once;
 * - SIGTERM (ECS StopTask, Spot reclaim) or SIGINT → claim nothing more; each
 *   slot's current job may finish within SHUTDOWN_GRACE_SECONDS, else its
 *   handler is aborted and the job released without spending an attempt;
 *   release the ledger lease, exit 0;
 * - the ledger lease lost (not renewed in time) → the capacity may already
 *   be someone else's: drain as on SIGTERM, exit non-zero;
 * - RUNNER_MAX_INFRASTRUCTURE_FAILURES in a row → this task cannot work:
 *   stop claiming, exit non-zero (dispatch starts a fresh task if work
 *   remains).
 */
import { Redis } from "@upstash/redis";
import { CapacityLedger } from "../../supabase/functions/_shared/capacity-ledger.ts";
import { UnmetDemandBoard } from "../../supabase/functions/_shared/unmet-demand.ts";
import { claimLoop, type RunnerSlot } from "./claim-loop.ts";
import { requestDispatch } from "./dispatch-hint.ts";
import type { JobHandler } from "./job-handler.ts";
import { connectJobDatabase, JobQueue } from "./job-queue.ts";
import { firstLedgerRenewal, releaseLedgerLease } from "./ledger-lease.ts";
import { startLeaseRenewal, type LeaseRenewal } from "./lease-renewal.ts";
import { secretValues, type RunnerConfig } from "./runner-config.ts";
import { RUNNER_EXIT_CODES, type RunnerExitCode } from "./runner-exit-codes.ts";
import { createLogger, type Logger } from "./structured-log.ts";
import { taskRecord } from "./task-record.ts";

// The handler contract and the exit codes, for the runners' entries.
export type { JobContext, JobHandler, JobOutcome } from "./job-handler.ts";
export { RUNNER_EXIT_CODES, type RunnerExitCode } from "./runner-exit-codes.ts";
export type { RunnerSlot } from "./claim-loop.ts";

export interface RunRunnerOptions {
  config: RunnerConfig;
  /**
   * One handler for every slot (config.concurrency of them), or one slot
   * each (a handler that holds per-slot state, such as a registre slot's
   * browser session); then their number is the concurrency.
   */
  handle: JobHandler | readonly RunnerSlot[];
  /** @default a JSON-lines logger on stdout built from config */
  log?: Logger;
  /** Listen for SIGTERM and SIGINT on this process. @default true */
  handleSignals?: boolean;
}

/** One Upstash call (both tries) gives up after this long. */
const UPSTASH_CALL_TIMEOUT_MS = 5_000;

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
  const slots: readonly RunnerSlot[] = typeof handle === "function" ? Array.from({ length: config.concurrency }, () => ({ handle })) : handle;
  if (slots.length === 0) throw new RangeError("runRunner needs at least one slot");
  // One connection per slot's claims and reports, one more so a heartbeat never waits behind them all.
  const sql = connectJobDatabase(config.databaseUrl, { tls: config.databaseTls, max: slots.length + 1 });
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
      concurrency: slots.length,
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

    const loopCode = await claimLoop({ config, queue, slots, log, draining: draining.signal, othersWaitingForRoom });
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
    // After a drain too: a job released at shutdown went back to waiting while
    // this task still held its lease, so the release's own hint planned no new
    // task for it; now the room is free, ask again (request_dispatch sends only
    // when jobs are claimable) rather than leave the job to the next tick.
    if (capacityHandedBack || draining.signal.aborted) await requestDispatch(sql, log);
    await tasks.finished(exitCode, draining.signal.aborted ? String(draining.signal.reason) : undefined);
    await sql.end({ timeout: 5 }).catch((error: unknown) => log.warn("closing the database pool failed", { error }));
    log.info("runner exiting", { exit_code: exitCode });
  }
}
