// What the capacity ledger hands out and reports: leases, refusals, snapshots, options.
import type { CapacityConfig } from "./capacity-config.ts";
import type { Environment } from "./environments.ts";
import type { JobKind } from "./job-kinds.ts";

/** A grant of capacity. Its id is unique and at most 64 characters, so it doubles as the ECS RunTask `clientToken`. */
export interface Lease {
  readonly id: string;
  readonly kind: JobKind;
  readonly environment: Environment;
  readonly holder: string;
  readonly vcpu: number;
  readonly ramGb: number;
  /** ms since epoch; the lease must be renewed before then. */
  readonly expiresAt: number;
  /** The ECS task started for it, once RunTask answered (snapshot only). */
  readonly taskArn?: string;
  /** True once its runner renewed it: the task is up (snapshot only). */
  readonly registered?: boolean;
}

/**
 * Why an acquire was refused: a resource short, the caller's limits differ
 * from the budget's, the ledger is waiting for tasks to re-register after a
 * data loss, or the lease was released on purpose.
 */
export type LeaseResource = "vcpu" | "ram" | "kind_cap" | "limits" | "recovering" | "released";

/**
 * - "start-task": dispatch, before RunTask; waits out the recovery after a data loss.
 * - "re-register": a runner whose lease vanished (Redis lost its data, or it expired) takes it back if capacity allows.
 * - "unchecked": tests and tools that know nothing runs; a missing budget is written without a recovery wait.
 */
export type AcquireMode = "start-task" | "re-register" | "unchecked";

export interface AcquireOptions {
  /** The lease's id; pass the same id when retrying so a lost reply finds its own lease. @default a new uuid */
  leaseId?: string;
  /** @default "unchecked" */
  mode?: AcquireMode;
}

export type AcquireResult =
  | { readonly granted: true; readonly lease: Lease }
  | { readonly granted: false; readonly resource: LeaseResource; readonly reason: string };

export interface LeaseHolder {
  readonly environment: Environment;
  /** Who holds the lease, shown in status output (e.g. `dispatch@prod`, a task ARN). */
  readonly holder: string;
}

export interface ResourceUse {
  readonly leases: number;
  readonly vcpu: number;
  readonly ramGb: number;
}

export interface CapacitySnapshot {
  /** The clock reading the snapshot was taken at (ms since epoch). */
  readonly takenAt: number;
  readonly capacity: { readonly vcpu: number; readonly ramGb: number };
  readonly allocated: { readonly vcpu: number; readonly ramGb: number };
  readonly available: { readonly vcpu: number; readonly ramGb: number };
  readonly byKind: Readonly<Record<JobKind, ResourceUse>>;
  readonly byEnvironment: Readonly<Record<Environment, ResourceUse>>;
  /** Live leases, soonest expiry first. */
  readonly leases: readonly Lease[];
}

export interface CapacityLedgerOptions {
  /** Prefix of the ledger's keys; one budget per prefix. @default "ledger" */
  keyPrefix?: string;
  /** Clock in ms since epoch (see the comment on time in capacity-ledger-scripts.ts). @default Date.now */
  now?: () => number;
}

/** What the ledger needs from the configuration. */
export type LedgerConfig = Pick<CapacityConfig, "capacity" | "profiles" | "leaseTtlMs">;
