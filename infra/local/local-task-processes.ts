// The local ECS tasks as processes: their state, start (PENDING → RUNNING), stop (SIGTERM, then SIGKILL) and exit (STOPPED with ECS's exit code and stop code).
import { constants as osConstants } from "node:os";
import { startProcess, type ManagedProcess } from "./child-process.ts";

export type LocalTaskStatus = "PENDING" | "RUNNING" | "STOPPED";

/** How to run the tasks of one task definition. */
export interface LocalTaskCommand {
  command: string;
  args: string[];
  cwd?: string;
}

/** What tests and benchmarks can see of one task. */
export interface LocalTaskSnapshot {
  arn: string;
  /** As the RunTask request named it (family, family:revision or ARN). */
  taskDefinition: string;
  clientToken: string | undefined;
  /** The containerOverrides environment the request carried (not baseEnv). */
  environment: Record<string, string>;
  lastStatus: LocalTaskStatus;
  /** Undefined until the process has exited. */
  exitCode: number | undefined;
  stopCode: string | undefined;
  stoppedReason: string | undefined;
  pid: number | undefined;
  /** Epoch milliseconds (fractional) when the RunTask request that created the task arrived. */
  runTaskReceivedAt: number;
  /** Epoch milliseconds when the process was spawned; undefined while PENDING or if it never started. */
  startedAt: number | undefined;
  stoppedAt: number | undefined;
}

/** What happens to a task's process, as the ECS task server reports it. */
export type LocalTaskEvent =
  | { type: "task-started"; at: number; task: LocalTaskSnapshot }
  /** One line the task's process wrote (stdout or stderr). */
  | { type: "task-output"; at: number; arn: string; line: string }
  | { type: "task-stopped"; at: number; task: LocalTaskSnapshot };

export interface LocalTask {
  readonly id: string;
  readonly arn: string;
  readonly clusterArn: string;
  readonly taskDefinition: string;
  readonly taskDefinitionArn: string;
  readonly containerName: string;
  readonly clientToken: string | undefined;
  /** Canonical JSON of the request without its clientToken, to detect a token reused for another request. */
  readonly fingerprint: string;
  readonly environment: Record<string, string>;
  readonly startedBy: string | undefined;
  readonly group: string;
  readonly launchType: string | undefined;
  readonly overrides: unknown;
  readonly runTaskReceivedAt: number;
  lastStatus: LocalTaskStatus;
  desiredStatus: "RUNNING" | "STOPPED";
  process: ManagedProcess | undefined;
  pid: number | undefined;
  exitCode: number | undefined;
  stopCode: string | undefined;
  stoppedReason: string | undefined;
  startedAt: number | undefined;
  stoppingAt: number | undefined;
  stoppedAt: number | undefined;
}

export interface LocalTaskSupervisorOptions {
  /** Environment every task starts with, under the request's overrides. */
  baseEnv: Record<string, string>;
  /** Milliseconds between SIGTERM and SIGKILL. */
  stopTimeoutMs: number;
  /** Called synchronously for each event; must not throw. */
  emit(event: LocalTaskEvent): void;
}

/** Starts, watches and stops the processes of local tasks, keeping each task's ECS status. */
export class LocalTaskSupervisor {
  readonly #options: LocalTaskSupervisorOptions;

  constructor(options: LocalTaskSupervisorOptions) {
    this.#options = options;
  }

  snapshot(task: LocalTask): LocalTaskSnapshot {
    return {
      arn: task.arn,
      taskDefinition: task.taskDefinition,
      clientToken: task.clientToken,
      environment: { ...task.environment },
      lastStatus: task.lastStatus,
      exitCode: task.exitCode,
      stopCode: task.stopCode,
      stoppedReason: task.stoppedReason,
      pid: task.pid,
      runTaskReceivedAt: task.runTaskReceivedAt,
      startedAt: task.startedAt,
      stoppedAt: task.stoppedAt,
    };
  }

  launch(task: LocalTask, command: LocalTaskCommand): void {
    const emit = this.#options.emit;
    const managed = startProcess(command.command, command.args, {
      name: `ecs-task ${task.id}`,
      ...(command.cwd === undefined ? {} : { cwd: command.cwd }),
      env: { ...this.#options.baseEnv, ...task.environment },
      onLine: (line) => emit({ type: "task-output", at: eventTime(), arn: task.arn, line }),
    });
    task.process = managed;
    task.pid = managed.child.pid;
    managed.child.once("spawn", () => {
      if (task.lastStatus !== "PENDING") return;
      task.lastStatus = "RUNNING";
      task.startedAt = Date.now();
      emit({ type: "task-started", at: eventTime(), task: this.snapshot(task) });
    });
    managed.child.once("error", (error) => {
      this.#markStopped(task, undefined, { stopCode: "TaskFailedToStart", stoppedReason: `CannotStartContainerError: ${error.message}` });
    });
    managed.child.once("exit", (code, signal) => {
      const exitCode = code ?? (signal === null ? undefined : 128 + osConstants.signals[signal]);
      this.#markStopped(task, exitCode, { stopCode: "EssentialContainerExited", stoppedReason: "Essential container in task exited" });
    });
  }

  stop(task: LocalTask, stopCode: string, reason: string): Promise<void> {
    if (task.lastStatus !== "STOPPED" && task.desiredStatus !== "STOPPED") {
      task.desiredStatus = "STOPPED";
      task.stopCode = stopCode;
      task.stoppedReason = reason;
      task.stoppingAt = Date.now();
    }
    return task.process?.stop(this.#options.stopTimeoutMs) ?? Promise.resolve();
  }

  #markStopped(task: LocalTask, exitCode: number | undefined, fallback: { stopCode: string; stoppedReason: string }): void {
    if (task.lastStatus === "STOPPED") return;
    task.lastStatus = "STOPPED";
    task.desiredStatus = "STOPPED";
    task.exitCode = exitCode;
    // A StopTask (or close) already set why the task stopped; keep that over "container exited".
    task.stopCode ??= fallback.stopCode;
    task.stoppedReason ??= fallback.stoppedReason;
    task.stoppedAt = Date.now();
    this.#options.emit({ type: "task-stopped", at: eventTime(), task: this.snapshot(task) });
  }
}

/** PATH and HOME of this process: a container does not inherit its host's environment, so neither do tasks. */
export function inheritedBaseEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of ["PATH", "HOME"]) {
    const value = process.env[name];
    if (value !== undefined) env[name] = value;
  }
  return env;
}

/** Epoch milliseconds with sub-millisecond precision, for the latency measurements events feed. */
export function eventTime(): number {
  return performance.timeOrigin + performance.now();
}
