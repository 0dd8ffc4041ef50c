import type postgres from "postgres";
import type { Environment } from "./environments.ts";
import type { JobKind } from "./job-kinds.ts";

/**
 * The `runner_tasks` bookkeeping (migration create_runner_tasks): dispatch
 * records each task it starts, each runner its start, heartbeats and exit,
 * so Supabase Studio's `running_tasks` view shows the fleet without Redis.
 * Bookkeeping only: callers log a failure here and carry on, never letting
 * it stop a task or a job.
 */

export interface TaskStarted {
  readonly leaseId: string;
  readonly kind: JobKind;
  readonly environment: Environment;
  readonly taskArn: string;
  readonly vcpu: number;
  readonly ramGb: number;
  /** The ledger lease's expiry, ms since epoch. */
  readonly leaseExpiresAt: number;
}

export interface TaskHeartbeat {
  readonly leaseId: string;
  readonly kind: JobKind;
  readonly environment: Environment;
  readonly workerId: string;
  readonly vcpu: number;
  readonly ramGb: number;
  /** The ledger lease's expiry as just renewed, ms since epoch. */
  readonly leaseExpiresAt: number;
}

export async function recordTaskStarted(sql: postgres.Sql, task: TaskStarted): Promise<void> {
  await sql`select queue.record_task_started(${task.leaseId}, ${task.kind}, ${task.environment}, ${task.taskArn},
    ${task.vcpu}, ${task.ramGb}, ${new Date(task.leaseExpiresAt)})`;
}

export async function recordTaskHeartbeat(sql: postgres.Sql, task: TaskHeartbeat): Promise<void> {
  await sql`select queue.record_task_heartbeat(${task.leaseId}, ${task.kind}, ${task.environment}, ${task.workerId},
    ${task.vcpu}, ${task.ramGb}, ${new Date(task.leaseExpiresAt)})`;
}

export async function recordTaskFinished(sql: postgres.Sql, leaseId: string, exitReason: string, exitCode: number): Promise<void> {
  await sql`select queue.record_task_finished(${leaseId}, ${exitReason}, ${exitCode})`;
}
