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
 *
 * With `leaseTtlMs`, also the leases of registered runners that missed their
 * renewals (a runner renews every third of the TTL; one not renewed for half
 * of it is suspect) whose task ECS reports STOPPED: a runner killed by
 * SIGKILL or the OOM killer never releases its lease, and its kind would
 * wait a whole TTL for a replacement (found by
 * tests/ocr/ocr-runner-signals.test.ts). A STOPPED task can renew nothing
 * more, so returning its lease counts nobody's capacity twice.
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
    /** The ledger's lease TTL; when given, silent registered leases are checked too. */
    leaseTtlMs?: number;
    log: (entry: { level: "info" | "warn" | "error"; msg: string } & Record<string, unknown>) => void;
  },
): Promise<ReturnedLease[]> {
  const { ledger, ecs, environment, log } = deps;
  const now = Date.now();
  const silent = (lease: { registered?: boolean; expiresAt: number }) =>
    lease.registered === true && deps.leaseTtlMs !== undefined && lease.expiresAt - now < deps.leaseTtlMs / 2;
  const booting = (await ledger.snapshot()).leases.filter(
    (lease) => lease.environment === environment && lease.taskArn !== undefined && (lease.registered !== true || silent(lease)),
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
      log({ level: "warn", msg: "task stopped without releasing its lease (before its runner registered, or killed); lease returned", environment, lease_id: leaseId, task_arn: task.taskArn, reason });
    }
  }
  return returned;
}
