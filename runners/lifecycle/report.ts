/** Recording a transition (complete, fail, release) with retries under a deadline, and how a report can end. */
import { setTimeout as delay } from "node:timers/promises";
import postgres from "postgres";
import { jitteredBackoffMs } from "./backoff.ts";
import { LeaseLostError } from "./job-queue.ts";
import type { Logger } from "./structured-log.ts";

export type ReportKind = "complete" | "fail" | "release";

/**
 * How a report ended: recorded, or not, and why not:
 * - lease-lost: someone else owns the job now; write nothing more;
 * - refused: the database rejected the values themselves (SQLSTATE class 22,
 *   23 or 54); sending them again would be refused again;
 * - rejected: the database refuses this runner whatever the values (class
 *   42, 28, 3F, 0A: a missing grant or function, a bad login): the
 *   deployment is wrong, and every job would meet it;
 * - lease-expired: it kept failing until the job lease ran out; the reaper
 *   returns the job;
 * - deadline: it kept failing for the report's whole deadline while the
 *   heartbeat held the lease; the caller stops the heartbeat so the lease
 *   lapses and the reaper returns the job, instead of holding the job, the
 *   task and its capacity until SIGKILL.
 */
export type ReportResult<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly why: "lease-lost" | "lease-expired" | "deadline" }
  | { readonly ok: false; readonly why: "refused" | "rejected"; readonly error: unknown };

/** Longest wait between two tries of a report: the database may come back any moment. */
const REPORT_RETRY_CAP_MS = 5_000;

/**
 * What a database error says about sending the same call again, by SQLSTATE
 * class (the first two characters; PostgreSQL's list:
 * https://www.postgresql.org/docs/15/errcodes-appendix.html):
 * - 22 data exception, 23 integrity constraint violation, 54 program limit
 *   exceeded (54000 a French tsvector over 1 MB, 54001 statement too
 *   complex): the values can never be stored → "refused";
 * - 42 syntax error or access rule violation (42501 insufficient_privilege,
 *   42883 undefined_function), 28 invalid authorization, 3F invalid schema,
 *   0A feature not supported: the deployment refuses this runner →
 *   "rejected";
 * - everything else, notably 08 connection exception, 40 transaction
 *   rollback, 53 insufficient resources (53300 too many connections, 53100
 *   disk full), 55 object not in prerequisite state, 57 operator
 *   intervention (57P01 admin shutdown, 57P03 cannot connect now, 57014
 *   statement timeout), 58 and XX: may pass → "transient", retried until
 *   the report's deadline.
 */
export function reportErrorClass(error: unknown): "refused" | "rejected" | "transient" {
  if (!(error instanceof postgres.PostgresError)) return "transient";
  const sqlClass = error.code.slice(0, 2);
  if (sqlClass === "22" || sqlClass === "23" || sqlClass === "54") return "refused";
  if (sqlClass === "42" || sqlClass === "28" || sqlClass === "3F" || sqlClass === "0A") return "rejected";
  return "transient";
}

export interface ReportLimits {
  /** The last confirmed expiry of the job lease; undefined once the lease is known lost. */
  readonly leaseExpiresAt: () => number | undefined;
  /** When to stop trying even though the lease is still held (epoch ms). */
  readonly deadlineAt: number;
}

/**
 * Records a transition, retrying with backoff while the job lease is valid
 * and the report's deadline has not passed: finished work is not given up
 * while a database outage may still pass, and a report that can never
 * succeed does not hold the job, the task and its capacity forever. Gives up
 * at once on a lost lease, a refusal of the values or a rejection of the
 * runner.
 */
export async function report<T>(log: Logger, what: ReportKind, call: () => Promise<T>, limits: ReportLimits): Promise<ReportResult<T>> {
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
      const errorClass = reportErrorClass(error);
      if (errorClass === "refused") {
        log.error(`${what} refused by the database: the values cannot be stored`, { error });
        return { ok: false, why: "refused", error };
      }
      if (errorClass === "rejected") {
        log.error(`${what} rejected by the database: this runner may not make the call (a grant, a function or the login is wrong)`, { error });
        return { ok: false, why: "rejected", error };
      }
      const now = Date.now();
      const expiresAt = limits.leaseExpiresAt();
      const leftMs = expiresAt === undefined ? 0 : expiresAt - now;
      const retryInMs = Math.max(100, jitteredBackoffMs(attempt, { baseMs: 250, capMs: REPORT_RETRY_CAP_MS }));
      if (leftMs <= retryInMs) {
        log.error(`${what} could not be recorded before the job lease expired; the reaper will requeue the job`, { error, attempts: attempt });
        return { ok: false, why: "lease-expired" };
      }
      if (limits.deadlineAt - now <= retryInMs) {
        log.error(`${what} could not be recorded before the report deadline; letting the job lease lapse so the reaper requeues the job`, {
          error,
          attempts: attempt,
        });
        return { ok: false, why: "deadline" };
      }
      log.warn(`${what} failed; retrying while the job lease lasts`, { error, attempt, retry_in_ms: retryInMs, lease_expires_in_ms: leftMs });
      await delay(retryInMs);
    }
  }
}
