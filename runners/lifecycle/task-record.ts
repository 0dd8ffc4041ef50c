/**
 * The runner's side of the `runner_tasks` bookkeeping: its start and each
 * ledger renewal as a heartbeat, its exit with the reason. Never throws and
 * never delays the lifecycle: a failed write is a warning, the next
 * heartbeat corrects it.
 */
import type postgres from "postgres";
import { recordTaskFinished, recordTaskHeartbeat } from "../../supabase/functions/_shared/runner-task-records.ts";
import type { RunnerConfig } from "./runner-config.ts";
import type { Logger } from "./structured-log.ts";

/** What each exit code means, for the exit_reason column (run-runner.ts RUNNER_EXIT_CODES). */
const EXIT_REASONS: Record<number, string> = {
  0: "done: nothing left to claim, RUNNER_MAX_JOBS reached, or drained",
  1: "unexpected error (see the task's log)",
  2: "infrastructure failures in a row, or the database unreachable",
  3: "capacity lease lost",
};

export interface TaskRecord {
  /** Records a start or heartbeat; returns at once. */
  heartbeat(leaseExpiresAt: number): void;
  /** Records the exit; resolves once written (or given up). */
  finished(exitCode: number, drainReason: string | undefined): Promise<void>;
}

export function taskRecord(sql: postgres.Sql, config: RunnerConfig, log: Logger): TaskRecord {
  const profile = config.capacity.profiles[config.jobKind];
  let pending: Promise<void> = Promise.resolve();
  return {
    heartbeat(leaseExpiresAt) {
      pending = recordTaskHeartbeat(sql, {
        leaseId: config.ledgerLeaseId,
        kind: config.jobKind,
        environment: config.environment,
        workerId: config.workerId,
        vcpu: profile.vcpu,
        ramGb: profile.ramGb,
        leaseExpiresAt,
      }).catch((error: unknown) => log.warn("could not record the task heartbeat in runner_tasks", { error }));
    },
    async finished(exitCode, drainReason) {
      await pending;
      const reason = [EXIT_REASONS[exitCode] ?? `exit code ${exitCode}`, drainReason].filter((part) => part !== undefined).join(": ");
      await recordTaskFinished(sql, config.ledgerLeaseId, reason, exitCode).catch((error: unknown) =>
        log.warn("could not record the task exit in runner_tasks", { error }),
      );
    },
  };
}
