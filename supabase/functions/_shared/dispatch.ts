import type { Redis } from "@upstash/redis";
import type postgres from "postgres";
import type { CapacityLedger, CapacitySnapshot } from "./capacity-ledger.ts";
import type { DispatchConfig } from "./dispatch-config.ts";
import { DispatchLock } from "./dispatch-lock.ts";
import { perKind, planDispatch, type DispatchPlan, type KindBacklog, type PerKind } from "./dispatch-plan.ts";
import type { EcsClient } from "./ecs-client.ts";
import { EnvironmentDemandBoard } from "./environment-demand.ts";
import { UnmetDemandBoard } from "./unmet-demand.ts";
import { gatedModels, geminiGateInput } from "./gemini-gate.ts";
import { GeminiConfigFault } from "./gemini-config-fault.ts";
import type { GeminiBudgetStatus, GeminiRateBudget } from "./gemini-rate-budget.ts";
import { JOB_KINDS, isJobKind, type JobKind } from "./job-kinds.ts";
import { redisKeyPrefixes } from "./redis-keys.ts";
import { RegistryCooldown } from "./registry-cooldown.ts";
import { errorMessage } from "./error-message.ts";
import { startRunnerTask } from "./start-runner-task.ts";
import { recordTaskStarted } from "./runner-task-records.ts";
import { sharedSettingsOf, SharedSettingsBoard, type SettingsVerdict } from "./shared-settings.ts";
import { returnLeasesOfStoppedTasks, type ReturnedLease } from "./stopped-task-leases.ts";

/**
 * One dispatch: read the backlog (SQL) and the budgets (Upstash), plan, then
 * for each planned task take a ledger lease and start the task with RunTask,
 * the lease id as clientToken so a retried call never starts a duplicate.
 */

export interface DispatchDependencies {
  readonly config: DispatchConfig;
  readonly sql: postgres.Sql;
  readonly redis: Redis;
  readonly ledger: CapacityLedger;
  readonly gemini: GeminiRateBudget;
  readonly ecs: EcsClient;
  readonly log: (entry: { level: "info" | "warn" | "error"; msg: string } & Record<string, unknown>) => void;
}

export interface StartedTask {
  readonly kind: JobKind;
  readonly leaseId: string;
  readonly taskArn: string;
}

export interface DispatchOutcome {
  readonly environment: string;
  readonly reason: string;
  readonly plan: DispatchPlan;
  readonly started: readonly StartedTask[];
  /** Leases the ledger refused (another dispatcher took the room first). */
  readonly refused: readonly { kind: JobKind; reason: string }[];
  /** RunTask refusals (4xx, failures[]); their leases were released. */
  readonly failed: readonly { kind: JobKind; error: string }[];
  /** RunTask calls whose outcome stayed unknown (timeouts, 5xx); their leases are kept until renewed or expired. */
  readonly unknown: readonly { kind: JobKind; leaseId: string; error: string }[];
  /** Leases of tasks ECS stopped before their runner registered, returned before planning. */
  readonly returned: readonly ReturnedLease[];
}

/** Postgres or Upstash could not be read: nothing was started, rows wait for the next tick. */
export class DispatchUnavailableError extends Error {
  override readonly name = "DispatchUnavailableError";
}

export async function dispatch(deps: DispatchDependencies, reason: string): Promise<DispatchOutcome | { skipped: string }> {
  const { config, redis } = deps;
  const lock = new DispatchLock(redis, `${redisKeyPrefixes(config.redisKeyPrefix).dispatchLock}:${config.environment}`, {
    // The dispatch is done by then; the lock expires on its own.
    onReleaseError: (error) => deps.log({ level: "warn", msg: "could not free the dispatch lock; it expires on its own", error: errorMessage(error) }),
  });
  let locked;
  let workFailure: unknown;
  try {
    // Never waits for a running dispatch: it leaves a mark, and the running
    // one dispatches again once done (see runCoalesced).
    locked = await lock.runCoalesced((held) =>
      dispatchHoldingLock(deps, reason, held.signal).catch((error: unknown) => {
        workFailure = error;
        throw error;
      }),
    );
  } catch (error) {
    if (error === workFailure) throw error;
    // Anything else failed in taking the lock: that is Upstash.
    throw new DispatchUnavailableError(`upstash unreachable: ${errorMessage(error)}`, { cause: error });
  }
  if (!locked.ran) return { skipped: `another dispatch for ${config.environment} held the lock; it dispatches again once done` };
  return locked.value;
}

async function dispatchHoldingLock(deps: DispatchDependencies, reason: string, lockHeld: AbortSignal): Promise<DispatchOutcome> {
  const { config, ledger, gemini, redis } = deps;
  const board = new EnvironmentDemandBoard(redis, { keyPrefix: redisKeyPrefixes(config.redisKeyPrefix).environmentDemand });
  const unmet = new UnmetDemandBoard(redis, { keyPrefix: redisKeyPrefixes(config.redisKeyPrefix).unmetDemand });

  const backlog = await readBacklog(deps.sql).catch((error: unknown) => {
    throw new DispatchUnavailableError(`postgres unreachable: ${errorMessage(error)}`, { cause: error });
  });
  let snapshot: CapacitySnapshot;
  let budget: GeminiBudgetStatus;
  let others;
  let returned: ReturnedLease[];
  let settings: SettingsVerdict;
  try {
    settings = await new SharedSettingsBoard(redis, redisKeyPrefixes(config.redisKeyPrefix).sharedSettings).check(sharedSettingsOf(config));
    // First, so the plan sees the room of tasks that stopped before their runner registered.
    returned = await returnLeasesOfStoppedTasks({ ledger, ecs: deps.ecs, environment: config.environment, leaseTtlMs: config.capacity.leaseTtlMs, log: deps.log });
    [snapshot, budget, others] = await Promise.all([ledger.snapshot(), gemini.status(gatedModels(config.capacity.gemini)), board.others(config.environment, config.weights)]);
  } catch (error) {
    throw new DispatchUnavailableError(`upstash unreachable: ${errorMessage(error)}`, { cause: error });
  }

  const tasks = countTasks(snapshot, config.environment);
  // The registry unreachable (registry-cooldown.ts): no registre task until the pause ends; the other kinds plan as usual.
  const registryPausedMs = await new RegistryCooldown(redis, config.redisKeyPrefix, config.environment).remainingMs().catch(() => 0);
  // A Gemini configuration fault an OCR task recorded: no OCR task until it is fixed (or the record expires and one task checks again).
  const geminiFault = await new GeminiConfigFault(redis, config.redisKeyPrefix, config.environment).read().catch((error: unknown) => {
    deps.log({ level: "warn", msg: "could not read the Gemini configuration fault; planning as if none", error: errorMessage(error) });
    return null;
  });
  if (registryPausedMs > 0 && backlog.registre.waiting > 0) deps.log({ level: "info", msg: "registre dispatch paused: the registry was unreachable", paused_ms: registryPausedMs });
  // This environment's daily registry spend cap (registre_spend_policy): reached, no registre task until tomorrow.
  const spendCapped = await registreSpendCapped(deps.sql, config.environment).catch(() => false);
  if (spendCapped && backlog.registre.waiting > 0) deps.log({ level: "info", msg: "registre dispatch paused: the daily registry spend cap is reached" });
  const plan = planDispatch({
    environment: config.environment,
    weight: config.weights[config.environment],
    backlog: registryPausedMs > 0 || spendCapped ? { ...backlog, registre: { ...backlog.registre, waiting: 0 } } : backlog,
    tasks,
    tasksAllEnvironments: perKind((kind) => snapshot.byKind[kind].leases),
    profiles: config.capacity.profiles,
    capacity: snapshot.capacity,
    allocated: snapshot.allocated,
    allocatedHere: { vcpu: snapshot.byEnvironment[config.environment].vcpu },
    others,
    gemini: geminiGateInput(budget, config.capacity.gemini, config.tokensPerTask, geminiFault?.reason ?? null),
    jobsPerTask: config.jobsPerTask,
  });
  const wantedVcpu = JOB_KINDS.reduce((sum, kind) => sum + plan.wanted[kind] * config.capacity.profiles[kind].vcpu, 0);
  await board
    .publish({ environment: config.environment, weight: config.weights[config.environment], allocatedVcpu: snapshot.byEnvironment[config.environment].vcpu, wantedVcpu })
    .catch((error: unknown) => deps.log({ level: "warn", msg: "could not publish this environment's demand", error: errorMessage(error) }));

  const started: StartedTask[] = [];
  const refused: { kind: JobKind; reason: string }[] = [];
  // Kinds that wanted tasks and found no vCPU or RAM: idle runners read this and hand their room back.
  const waitingForRoom = new Set<JobKind>(plan.waitingForRoom);
  const failed: { kind: JobKind; error: string }[] = [];
  const unknown: { kind: JobKind; leaseId: string; error: string }[] = [];
  if (!settings.ok) deps.log({ level: "error", msg: "starting nothing: the shared settings differ", error: settings.message });
  starting: for (const kind of JOB_KINDS) {
    for (let i = 0; i < plan.start[kind]; i += 1) {
      if (!settings.ok) {
        // Over-admitting or splitting the shared budget is worse than waiting for the fix.
        refused.push({ kind, reason: settings.message });
        break;
      }
      if (lockHeld.aborted) {
        // Another dispatch may hold the lock now and plan over the same room: start nothing more.
        refused.push({ kind, reason: `the dispatch lock was lost (${errorMessage(lockHeld.reason)}); the next dispatch starts the rest` });
        break starting;
      }
      let grant;
      try {
        // "start-task": after Redis lost its data, nothing new starts until running tasks re-registered.
        grant = await ledger.acquire(kind, { environment: config.environment, holder: `dispatch@${config.environment}` }, { mode: "start-task" });
      } catch (error) {
        // Upstash went away mid-dispatch: what started stays started, the rest waits for the next tick.
        refused.push({ kind, reason: `upstash unreachable: ${errorMessage(error)}` });
        break;
      }
      if (!grant.granted) {
        refused.push({ kind, reason: grant.reason });
        if (grant.resource === "vcpu" || grant.resource === "ram") waitingForRoom.add(kind);
        break;
      }
      const start = await startRunnerTask(deps, grant.lease);
      if (start.status === "started") {
        started.push({ kind, leaseId: grant.lease.id, taskArn: start.taskArn });
        deps.log({ level: "info", msg: "task started", kind, environment: config.environment, lease_id: grant.lease.id, task_arn: start.taskArn });
        // Bookkeeping for the running_tasks view; never stops a start.
        await recordTaskStarted(deps.sql, { leaseId: grant.lease.id, kind, environment: config.environment, taskArn: start.taskArn, vcpu: grant.lease.vcpu, ramGb: grant.lease.ramGb, leaseExpiresAt: grant.lease.expiresAt }).catch(
          (error: unknown) => deps.log({ level: "warn", msg: "could not record the task in runner_tasks", kind, lease_id: grant.lease.id, error: errorMessage(error) }),
        );
        continue;
      }
      if (start.status === "refused") failed.push({ kind, error: start.error });
      else unknown.push({ kind, leaseId: grant.lease.id, error: start.error });
      break;
    }
  }
  await unmet
    .record(config.environment, [...waitingForRoom])
    .catch((error: unknown) => deps.log({ level: "warn", msg: "could not record the kinds waiting for room", error: errorMessage(error) }));
  return { environment: config.environment, reason, plan, started, refused, failed, unknown, returned };
}

/** Whether `environment` has spent its daily registry cap (queue.registre_spend_today). */
export async function registreSpendCapped(sql: postgres.Sql, environment: string): Promise<boolean> {
  const rows = await sql<{ paused: boolean }[]>`select paused from queue.registre_spend_today(${environment})`;
  return rows[0]?.paused === true;
}

export async function readBacklog(sql: postgres.Sql): Promise<PerKind<KindBacklog>> {
  const rows = await sql<{ kind: string; waiting: string; running: string }[]>`select kind, waiting, running from queue.queue_backlog()`;
  const backlog = perKind<KindBacklog>(() => ({ waiting: 0, running: 0 }));
  for (const row of rows) {
    if (isJobKind(row.kind)) backlog[row.kind] = { waiting: Number(row.waiting), running: Number(row.running) };
  }
  return backlog;
}

function countTasks(snapshot: CapacitySnapshot, environment: string): PerKind<number> {
  const tasks = perKind(() => 0);
  for (const lease of snapshot.leases) if (lease.environment === environment) tasks[lease.kind] += 1;
  return tasks;
}
