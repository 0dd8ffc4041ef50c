import type { Redis } from "@upstash/redis";
import type postgres from "postgres";
import type { CapacityLedger, CapacitySnapshot } from "./capacity-ledger.ts";
import type { DispatchConfig } from "./dispatch-config.ts";
import { DispatchLock } from "./dispatch-lock.ts";
import { perKind, planDispatch, type DispatchPlan, type KindBacklog, type PerKind } from "./dispatch-plan.ts";
import { EcsError, runnerTaskEnvironment, runnerTaskFor, type EcsClient } from "./ecs-client.ts";
import { EnvironmentDemandBoard } from "./environment-demand.ts";
import { gatedModels, geminiGateInput } from "./gemini-gate.ts";
import type { GeminiBudgetStatus, GeminiRateBudget } from "./gemini-rate-budget.ts";
import { JOB_KINDS, isJobKind, type JobKind } from "./job-kinds.ts";
import { redisKeyPrefixes } from "./redis-keys.ts";
import { errorMessage } from "./error-message.ts";

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
  /** RunTask failures; their leases were released. */
  readonly failed: readonly { kind: JobKind; error: string }[];
}

/** Postgres or Upstash could not be read: nothing was started, rows wait for the next tick. */
export class DispatchUnavailableError extends Error {
  override readonly name = "DispatchUnavailableError";
}

export async function dispatch(deps: DispatchDependencies, reason: string): Promise<DispatchOutcome | { skipped: string }> {
  const { config, redis } = deps;
  const lock = new DispatchLock(redis, `${redisKeyPrefixes(config.redisKeyPrefix).dispatchLock}:${config.environment}`);
  let locked;
  let workFailure: unknown;
  try {
    locked = await lock.withLock(() =>
      dispatchHoldingLock(deps, reason).catch((error: unknown) => {
        workFailure = error;
        throw error;
      }),
    );
  } catch (error) {
    if (error === workFailure) throw error;
    // Anything else failed in taking or freeing the lock: that is Upstash.
    throw new DispatchUnavailableError(`upstash unreachable: ${errorMessage(error)}`, { cause: error });
  }
  if (!locked.ran) return { skipped: `another dispatch for ${config.environment} held the lock; the next tick retries` };
  return locked.value;
}

async function dispatchHoldingLock(deps: DispatchDependencies, reason: string): Promise<DispatchOutcome> {
  const { config, ledger, gemini, redis } = deps;
  const board = new EnvironmentDemandBoard(redis, { keyPrefix: redisKeyPrefixes(config.redisKeyPrefix).environmentDemand });

  const backlog = await readBacklog(deps.sql).catch((error: unknown) => {
    throw new DispatchUnavailableError(`postgres unreachable: ${errorMessage(error)}`, { cause: error });
  });
  let snapshot: CapacitySnapshot;
  let budget: GeminiBudgetStatus;
  let others;
  try {
    [snapshot, budget, others] = await Promise.all([ledger.snapshot(), gemini.status(gatedModels(config.capacity.gemini)), board.others(config.environment, config.weights)]);
  } catch (error) {
    throw new DispatchUnavailableError(`upstash unreachable: ${errorMessage(error)}`, { cause: error });
  }

  const tasks = countTasks(snapshot, config.environment);
  const plan = planDispatch({
    environment: config.environment,
    weight: config.weights[config.environment],
    backlog,
    tasks,
    tasksAllEnvironments: perKind((kind) => snapshot.byKind[kind].leases),
    profiles: config.capacity.profiles,
    capacity: snapshot.capacity,
    allocated: snapshot.allocated,
    allocatedHere: { vcpu: snapshot.byEnvironment[config.environment].vcpu },
    others,
    gemini: geminiGateInput(budget, config.capacity.gemini, config.tokensPerTask),
  });
  const wantedVcpu = JOB_KINDS.reduce((sum, kind) => sum + plan.wanted[kind] * config.capacity.profiles[kind].vcpu, 0);
  await board
    .publish({ environment: config.environment, weight: config.weights[config.environment], allocatedVcpu: snapshot.byEnvironment[config.environment].vcpu, wantedVcpu })
    .catch((error: unknown) => deps.log({ level: "warn", msg: "could not publish this environment's demand", error: errorMessage(error) }));

  const started: StartedTask[] = [];
  const refused: { kind: JobKind; reason: string }[] = [];
  const failed: { kind: JobKind; error: string }[] = [];
  for (const kind of JOB_KINDS) {
    for (let i = 0; i < plan.start[kind]; i += 1) {
      let grant;
      try {
        grant = await ledger.acquire(kind, { environment: config.environment, holder: `dispatch@${config.environment}` });
      } catch (error) {
        // Upstash went away mid-dispatch: what started stays started, the rest waits for the next tick.
        refused.push({ kind, reason: `upstash unreachable: ${errorMessage(error)}` });
        break;
      }
      if (!grant.granted) {
        refused.push({ kind, reason: grant.reason });
        break;
      }
      try {
        const taskArn = await deps.ecs.runTask({
          ...runnerTaskFor(config.ecs, kind),
          clientToken: grant.lease.id,
          environment: runnerTaskEnvironment({ kind, environment: config.environment, ledgerLeaseId: grant.lease.id }),
          startedBy: `dispatch-${config.environment}`.slice(0, 36),
        });
        started.push({ kind, leaseId: grant.lease.id, taskArn });
        deps.log({ level: "info", msg: "task started", kind, environment: config.environment, lease_id: grant.lease.id, task_arn: taskArn });
      } catch (error) {
        // The task never started, so nothing will renew or release this lease.
        await ledger.release(grant.lease.id).catch(() => {});
        failed.push({ kind, error: errorMessage(error) });
        deps.log({ level: "error", msg: "RunTask failed; lease released", kind, environment: config.environment, error: errorMessage(error), ecs: error instanceof EcsError });
        break;
      }
    }
  }
  return { environment: config.environment, reason, plan, started, refused, failed };
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
