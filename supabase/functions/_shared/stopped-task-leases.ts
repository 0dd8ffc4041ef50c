import type { CapacityLedger } from "./capacity-ledger.ts";
import type { EcsClient } from "./ecs-client.ts";
import type { Environment } from "./environments.ts";
import { errorMessage } from "./error-message.ts";

/**
 * Returns the leases of tasks ECS stopped before their runner registered
 * (image pull failure, no capacity, a crash at start): such a runner never
 * renews nor releases its lease, which would otherwise hold its room for a
 * whole TTL. Only this environment's unregistered leases with a known task
 * are checked, so one DescribeTasks call covers them. A task ECS no longer
 * knows (MISSING) is left to its lease's expiry: right after RunTask, ECS
 * may not list a task yet.
 */
export interface ReturnedLease {
  readonly leaseId: string;
  readonly taskArn: string;
  readonly reason: string;
}

export async function returnLeasesOfStoppedTasks(
  deps: {
    ledger: CapacityLedger;
    ecs: EcsClient;
    environment: Environment;
    log: (entry: { level: "info" | "warn" | "error"; msg: string } & Record<string, unknown>) => void;
  },
): Promise<ReturnedLease[]> {
  const { ledger, ecs, environment, log } = deps;
  const booting = (await ledger.snapshot()).leases.filter(
    (lease) => lease.environment === environment && lease.registered !== true && lease.taskArn !== undefined,
  );
  if (booting.length === 0) return [];
  const leaseOf = new Map(booting.map((lease) => [lease.taskArn ?? "", lease.id]));
  let tasks;
  try {
    ({ tasks } = await ecs.describeTasks([...leaseOf.keys()]));
  } catch (error) {
    log({ level: "warn", msg: "could not check booting tasks; their leases wait for renewal or expiry", environment, error: errorMessage(error) });
    return [];
  }
  const returned: ReturnedLease[] = [];
  for (const task of tasks) {
    const leaseId = leaseOf.get(task.taskArn);
    if (leaseId === undefined || task.lastStatus !== "STOPPED") continue;
    const reason = [task.stopCode, task.stoppedReason].filter(Boolean).join(": ") || "stopped";
    if (await ledger.release(leaseId)) {
      returned.push({ leaseId, taskArn: task.taskArn, reason });
      log({ level: "warn", msg: "task stopped before its runner registered; lease returned", environment, lease_id: leaseId, task_arn: task.taskArn, reason });
    }
  }
  return returned;
}
