/** Recording a transition (complete, fail, release) with retries, and how a report can end. */
import { setTimeout as delay } from "node:timers/promises";
import postgres from "postgres";
import { jitteredBackoffMs } from "./backoff.ts";
import { LeaseLostError } from "./job-queue.ts";
import type { Logger } from "./structured-log.ts";

export type ReportKind = "complete" | "fail" | "release";

/**
 * How a report ended: recorded, or not, and why not:
 * - lease-lost: someone else owns the job now; write nothing more;
 * - refused: the database rejected the values themselves (SQLSTATE class 22
 *   or 23); sending them again would be refused again;
 * - lease-expired: it kept failing until the job lease ran out; the reaper
 *   returns the job.
 */
export type ReportResult<T> =
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
export async function report<T>(log: Logger, what: ReportKind, call: () => Promise<T>, leaseExpiresAt: () => number | undefined): Promise<ReportResult<T>> {
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
