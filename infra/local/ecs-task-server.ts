/**
 * The local stand-in for Amazon ECS: an HTTP endpoint speaking the ECS JSON
 * 1.1 protocol (RunTask, DescribeTasks, StopTask) that runs each task as a
 * local process instead of a Fargate container. Dispatch talks to it through
 * the same signed client it uses in production (`AWS_ENDPOINT_URL_ECS`).
 *
 * Semantics kept from ECS because dispatch and the runners rely on them:
 * - a RunTask retried with the same clientToken and the same parameters
 *   returns the first task and starts nothing; the same token with other
 *   parameters is a ConflictException (ECS keeps tokens 24 h; this server keeps
 *   them for its lifetime, which is shorter);
 * - RunTask answers PENDING; the task turns RUNNING once the process exists
 *   and STOPPED when it exits, with the container's exit code (128 + signal
 *   number when a signal ended it, as Docker reports);
 * - StopTask sends SIGTERM, then SIGKILL after the stop timeout;
 * - stopped tasks stay queryable.
 */
import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { constants as osConstants } from "node:os";
import { startProcess, type ManagedProcess } from "./child-process.ts";
import { errorMessage } from "../../supabase/functions/_shared/error-message.ts";

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

export type EcsTaskServerEvent =
  /** Emitted as soon as a RunTask request is authenticated, before anything else (for latency measurements). */
  | { type: "run-task-received"; at: number; clientToken: string | undefined; taskDefinition: string | undefined }
  /** RunTask answered with failures[] (failNextRunTasks) or an error; nothing started. */
  | { type: "run-task-refused"; at: number; clientToken: string | undefined; reason: string }
  /** RunTask repeated with a known clientToken; the existing task was returned. */
  | { type: "run-task-replayed"; at: number; task: LocalTaskSnapshot }
  | { type: "task-started"; at: number; task: LocalTaskSnapshot }
  /** One line the task's process wrote (stdout or stderr). */
  | { type: "task-output"; at: number; arn: string; line: string }
  | { type: "task-stopped"; at: number; task: LocalTaskSnapshot };

export interface EcsTaskServerOptions {
  port: number;
  /** @default "127.0.0.1" */
  host?: string;
  /** The process to start for a task definition; undefined makes RunTask fail as ECS does for an unknown definition. */
  commandFor(taskDefinition: string): LocalTaskCommand | undefined;
  /**
   * Environment every task starts with, under the request's overrides. A
   * container does not inherit its host's environment, so neither do tasks.
   * @default PATH and HOME of this process
   */
  baseEnv?: Record<string, string>;
  /**
   * Milliseconds between SIGTERM and SIGKILL on StopTask and close().
   * @default 30000 (ECS's default container stopTimeout)
   */
  stopTimeoutMs?: number;
  /** Called synchronously for each event; must not throw. */
  onEvent?(event: EcsTaskServerEvent): void;
}

export interface EcsTaskServer {
  /** Base URL to use as AWS_ENDPOINT_URL_ECS. */
  readonly url: string;
  /** Every task started since the server began, oldest first, stopped ones included. */
  tasks(): LocalTaskSnapshot[];
  /** The next `count` RunTask calls answer with `failures: [{ reason }]` and start nothing. */
  failNextRunTasks(count: number, reason: string): void;
  /** The next `count` RunTask calls answer with this HTTP error (e.g. 500 ServerException) and start nothing. */
  failNextRunTaskRequests(count: number, error: { status: number; awsType: string; message?: string }): void;
  /**
   * The next `count` RunTask calls are carried out (the task starts) but
   * answered only after `delayMs`: what a client that times out sees when
   * ECS did its work and the reply was slow or lost.
   */
  delayNextRunTaskReplies(count: number, delayMs: number): void;
  /** Stops every running task (SIGTERM, then SIGKILL after the stop timeout), then the server. */
  close(): Promise<void>;
}

const TARGET_PREFIX = "AmazonEC2ContainerServiceV20141113.";
const ACCOUNT_ID = "000000000000";

interface LocalTask {
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

/** An ECS-style error answer: `{ "__type": "...", "message": "..." }`. */
class EcsFault extends Error {
  constructor(readonly status: number, readonly awsType: string, message: string) {
    super(message);
  }
}

export async function startEcsTaskServer(options: EcsTaskServerOptions): Promise<EcsTaskServer> {
  const host = options.host ?? "127.0.0.1";
  const stopTimeoutMs = options.stopTimeoutMs ?? 30_000;
  const baseEnv = options.baseEnv ?? inheritedBaseEnv();
  const emit = options.onEvent ?? (() => {});
  const tasks = new Map<string, LocalTask>();
  /** `${cluster}\n${clientToken}` → task: ECS scopes tokens to a cluster. */
  const tasksByToken = new Map<string, LocalTask>();
  let pendingFailures: { remaining: number; reason: string } | undefined;
  let pendingHttpErrors: { remaining: number; status: number; awsType: string; message: string } | undefined;
  let pendingDelays: { remaining: number; delayMs: number } | undefined;
  let closing = false;

  function snapshot(task: LocalTask): LocalTaskSnapshot {
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

  function markStopped(task: LocalTask, exitCode: number | undefined, fallback: { stopCode: string; stoppedReason: string }): void {
    if (task.lastStatus === "STOPPED") return;
    task.lastStatus = "STOPPED";
    task.desiredStatus = "STOPPED";
    task.exitCode = exitCode;
    // A StopTask (or close) already set why the task stopped; keep that over "container exited".
    task.stopCode ??= fallback.stopCode;
    task.stoppedReason ??= fallback.stoppedReason;
    task.stoppedAt = Date.now();
    emit({ type: "task-stopped", at: now(), task: snapshot(task) });
  }

  function launch(task: LocalTask, command: LocalTaskCommand): void {
    const managed = startProcess(command.command, command.args, {
      name: `ecs-task ${task.id}`,
      ...(command.cwd === undefined ? {} : { cwd: command.cwd }),
      env: { ...baseEnv, ...task.environment },
      onLine: (line) => emit({ type: "task-output", at: now(), arn: task.arn, line }),
    });
    task.process = managed;
    task.pid = managed.child.pid;
    managed.child.once("spawn", () => {
      if (task.lastStatus !== "PENDING") return;
      task.lastStatus = "RUNNING";
      task.startedAt = Date.now();
      emit({ type: "task-started", at: now(), task: snapshot(task) });
    });
    managed.child.once("error", (error) => {
      markStopped(task, undefined, { stopCode: "TaskFailedToStart", stoppedReason: `CannotStartContainerError: ${error.message}` });
    });
    managed.child.once("exit", (code, signal) => {
      const exitCode = code ?? (signal === null ? undefined : 128 + osConstants.signals[signal]);
      markStopped(task, exitCode, { stopCode: "EssentialContainerExited", stoppedReason: "Essential container in task exited" });
    });
  }

  function stop(task: LocalTask, stopCode: string, reason: string): Promise<void> {
    if (task.lastStatus !== "STOPPED" && task.desiredStatus !== "STOPPED") {
      task.desiredStatus = "STOPPED";
      task.stopCode = stopCode;
      task.stoppedReason = reason;
      task.stoppingAt = Date.now();
    }
    return task.process?.stop(stopTimeoutMs) ?? Promise.resolve();
  }

  function runTask(body: Record<string, unknown>, authorization: string, receivedAt: number): unknown {
    const clientToken = optionalString(body, "clientToken");
    const taskDefinition = optionalString(body, "taskDefinition");
    emit({ type: "run-task-received", at: receivedAt, clientToken, taskDefinition });
    if (taskDefinition === undefined) throw new EcsFault(400, "InvalidParameterException", "taskDefinition can not be blank.");
    const count = body.count ?? 1;
    if (count !== 1) throw new EcsFault(400, "InvalidParameterException", "The local task server starts one task per RunTask call (count must be 1).");
    if (clientToken !== undefined && !/^[\x21-\x7e]{1,64}$/.test(clientToken)) {
      throw new EcsFault(400, "InvalidParameterException", "clientToken must be 1 to 64 ASCII characters in the range 33-126.");
    }
    if (body.launchType !== undefined && body.capacityProviderStrategy !== undefined) {
      throw new EcsFault(400, "InvalidParameterException", "Specifying both a launch type and capacity provider strategy is not supported.");
    }
    const cluster = optionalString(body, "cluster") ?? "default";
    const fingerprint = canonicalJson({ ...body, clientToken: undefined });
    const tokenKey = `${cluster}\n${clientToken}`;

    if (clientToken !== undefined) {
      const earlier = tasksByToken.get(tokenKey);
      if (earlier !== undefined) {
        if (earlier.fingerprint !== fingerprint) {
          throw new EcsFault(400, "ConflictException", `The clientToken ${clientToken} was already used with different parameters.`);
        }
        emit({ type: "run-task-replayed", at: now(), task: snapshot(earlier) });
        return { tasks: [describe(earlier)], failures: [] };
      }
    }

    if (pendingHttpErrors !== undefined && pendingHttpErrors.remaining > 0) {
      pendingHttpErrors.remaining -= 1;
      emit({ type: "run-task-refused", at: now(), clientToken, reason: `HTTP ${pendingHttpErrors.status} ${pendingHttpErrors.awsType}` });
      throw new EcsFault(pendingHttpErrors.status, pendingHttpErrors.awsType, pendingHttpErrors.message);
    }

    if (pendingFailures !== undefined && pendingFailures.remaining > 0) {
      const { reason } = pendingFailures;
      pendingFailures.remaining -= 1;
      emit({ type: "run-task-refused", at: now(), clientToken, reason });
      return { tasks: [], failures: [{ reason }] };
    }

    const command = options.commandFor(taskDefinition);
    if (command === undefined) {
      emit({ type: "run-task-refused", at: now(), clientToken, reason: `no command for ${taskDefinition}` });
      throw new EcsFault(400, "ClientException", `Unable to describe task definition: ${taskDefinition}.`);
    }
    const { containerName, environment } = containerOverride(body.overrides, taskDefinition);
    const region = credentialRegion(authorization);
    const family = taskDefinition.startsWith("arn:") ? taskDefinition.split("/").pop() ?? taskDefinition : taskDefinition;
    const id = randomUUID().replaceAll("-", "");
    const clusterName = cluster.startsWith("arn:") ? cluster.split("/").pop() ?? cluster : cluster;
    const task: LocalTask = {
      id,
      arn: `arn:aws:ecs:${region}:${ACCOUNT_ID}:task/${clusterName}/${id}`,
      clusterArn: `arn:aws:ecs:${region}:${ACCOUNT_ID}:cluster/${clusterName}`,
      taskDefinition,
      taskDefinitionArn: taskDefinition.startsWith("arn:")
        ? taskDefinition
        : `arn:aws:ecs:${region}:${ACCOUNT_ID}:task-definition/${family.includes(":") ? family : `${family}:1`}`,
      containerName,
      clientToken,
      fingerprint,
      environment,
      startedBy: optionalString(body, "startedBy"),
      group: optionalString(body, "group") ?? `family:${family.split(":")[0]}`,
      launchType: optionalString(body, "launchType"),
      overrides: body.overrides ?? {},
      runTaskReceivedAt: receivedAt,
      lastStatus: "PENDING",
      desiredStatus: "RUNNING",
      process: undefined,
      pid: undefined,
      exitCode: undefined,
      stopCode: undefined,
      stoppedReason: undefined,
      startedAt: undefined,
      stoppingAt: undefined,
      stoppedAt: undefined,
    };
    tasks.set(task.arn, task);
    if (clientToken !== undefined) tasksByToken.set(tokenKey, task);
    launch(task, command);
    return { tasks: [describe(task)], failures: [] };
  }

  function find(reference: string): LocalTask | undefined {
    // ECS accepts a task id as well as its ARN.
    return tasks.get(reference) ?? [...tasks.values()].find((task) => task.id === reference);
  }

  function describeTasks(body: Record<string, unknown>): unknown {
    const references = body.tasks;
    if (!Array.isArray(references) || references.some((r) => typeof r !== "string")) {
      throw new EcsFault(400, "InvalidParameterException", "tasks must be a list of task ids or ARNs.");
    }
    if (references.length > 100) throw new EcsFault(400, "InvalidParameterException", "Tasks cannot be longer than 100.");
    const found: unknown[] = [];
    const failures: unknown[] = [];
    for (const reference of references as string[]) {
      const task = find(reference);
      if (task === undefined) failures.push({ arn: reference, reason: "MISSING" });
      else found.push(describe(task));
    }
    return { tasks: found, failures };
  }

  function stopTask(body: Record<string, unknown>): unknown {
    const reference = optionalString(body, "task");
    const task = reference === undefined ? undefined : find(reference);
    if (task === undefined) throw new EcsFault(400, "InvalidParameterException", "The referenced task was not found.");
    void stop(task, "UserInitiated", optionalString(body, "reason") ?? "Task stopped by user");
    return { task: describe(task) };
  }

  /** The task in ECS's response shape (timestamps in epoch seconds, as the JSON protocol sends them). */
  function describe(task: LocalTask): Record<string, unknown> {
    const seconds = (ms: number | undefined) => (ms === undefined ? undefined : ms / 1000);
    return {
      taskArn: task.arn,
      clusterArn: task.clusterArn,
      taskDefinitionArn: task.taskDefinitionArn,
      lastStatus: task.lastStatus,
      desiredStatus: task.desiredStatus,
      launchType: task.launchType,
      startedBy: task.startedBy,
      group: task.group,
      overrides: task.overrides,
      createdAt: seconds(task.runTaskReceivedAt),
      startedAt: seconds(task.startedAt),
      stoppingAt: seconds(task.stoppingAt),
      stoppedAt: seconds(task.stoppedAt),
      stopCode: task.stopCode,
      stoppedReason: task.stoppedReason,
      containers: [
        {
          containerArn: `${task.arn.replace(":task/", ":container/")}/${task.containerName}`,
          taskArn: task.arn,
          name: task.containerName,
          lastStatus: task.lastStatus,
          exitCode: task.exitCode,
          ...(task.stopCode === "TaskFailedToStart" ? { reason: task.stoppedReason } : {}),
        },
      ],
    };
  }

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const arrivedAt = now();
    try {
      if (request.method !== "POST") throw new EcsFault(405, "UnknownOperationException", `${request.method} is not supported; ECS takes POST.`);
      // Signatures are not verified: the endpoint listens on loopback for a
      // private stack, and checking them would need the secret key shared
      // with the server while proving only what aws4fetch already tests.
      // Requiring the header still catches a client that forgot to sign.
      const authorization = request.headers.authorization;
      if (authorization === undefined || !authorization.startsWith("AWS4-HMAC-SHA256 ")) {
        throw new EcsFault(403, "MissingAuthenticationTokenException", "Missing Authentication Token");
      }
      const target = header(request, "x-amz-target");
      const operation = target?.startsWith(TARGET_PREFIX) ? target.slice(TARGET_PREFIX.length) : undefined;
      if (operation !== "RunTask" && operation !== "DescribeTasks" && operation !== "StopTask") {
        throw new EcsFault(400, "UnknownOperationException", `Unknown operation ${target ?? "(no X-Amz-Target)"}.`);
      }
      if (closing) throw new EcsFault(503, "ServerException", "The local task server is shutting down.");
      const body = await readJson(request);
      const result =
        operation === "RunTask" ? runTask(body, authorization, arrivedAt) : operation === "DescribeTasks" ? describeTasks(body) : stopTask(body);
      if (operation === "RunTask" && pendingDelays !== undefined && pendingDelays.remaining > 0) {
        pendingDelays.remaining -= 1;
        await new Promise((resolve) => setTimeout(resolve, pendingDelays?.delayMs ?? 0));
      }
      send(response, 200, result);
    } catch (error) {
      if (error instanceof EcsFault) send(response, error.status, { __type: error.awsType, message: error.message });
      else send(response, 500, { __type: "ServerException", message: errorMessage(error) });
    }
  }

  const server = createServer((request, response) => void handle(request, response));
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });

  let closed: Promise<void> | undefined;
  return {
    url: `http://${host.includes(":") ? `[${host}]` : host}:${options.port}`,
    tasks: () => [...tasks.values()].map(snapshot),
    failNextRunTasks(count, reason) {
      pendingFailures = { remaining: count, reason };
    },
    failNextRunTaskRequests(count, error) {
      pendingHttpErrors = { remaining: count, status: error.status, awsType: error.awsType, message: error.message ?? "injected failure" };
    },
    delayNextRunTaskReplies(count, delayMs) {
      pendingDelays = { remaining: count, delayMs };
    },
    close() {
      closed ??= (async () => {
        closing = true;
        await Promise.all([...tasks.values()].map((task) => stop(task, "UserInitiated", "The local task server was closed")));
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        });
      })();
      return closed;
    },
  };
}

function inheritedBaseEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of ["PATH", "HOME"]) {
    const value = process.env[name];
    if (value !== undefined) env[name] = value;
  }
  return env;
}

function now(): number {
  return performance.timeOrigin + performance.now();
}

function header(request: IncomingMessage, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function optionalString(body: Record<string, unknown>, key: string): string | undefined {
  const value = body[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "string") throw new EcsFault(400, "SerializationException", `${key} must be a string.`);
  return value;
}

async function readJson(request: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString("utf8");
  let parsed: unknown;
  try {
    parsed = text.length === 0 ? {} : JSON.parse(text);
  } catch {
    throw new EcsFault(400, "SerializationException", "The request body is not valid JSON.");
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new EcsFault(400, "SerializationException", "The request body must be a JSON object.");
  }
  return parsed as Record<string, unknown>;
}

/** The one container override a runner task carries: its name and environment. */
function containerOverride(overrides: unknown, taskDefinition: string): { containerName: string; environment: Record<string, string> } {
  const list = isRecord(overrides) ? overrides.containerOverrides : undefined;
  if (list === undefined) return { containerName: taskDefinition, environment: {} };
  if (!Array.isArray(list) || list.length > 1) {
    throw new EcsFault(400, "InvalidParameterException", "The local task server runs one container per task: give at most one container override.");
  }
  const override: unknown = list[0];
  if (override === undefined) return { containerName: taskDefinition, environment: {} };
  if (!isRecord(override) || typeof override.name !== "string" || override.name.length === 0) {
    throw new EcsFault(400, "InvalidParameterException", "Container.name should not be null or empty.");
  }
  const environment: Record<string, string> = {};
  const pairs = override.environment ?? [];
  if (!Array.isArray(pairs)) throw new EcsFault(400, "SerializationException", "environment must be a list of {name, value}.");
  for (const pair of pairs) {
    if (!isRecord(pair) || typeof pair.name !== "string" || typeof pair.value !== "string") {
      throw new EcsFault(400, "SerializationException", "environment must be a list of {name, value} strings.");
    }
    environment[pair.name] = pair.value;
  }
  return { containerName: override.name, environment };
}

/** The region of the credential scope (`Credential=AKID/20240101/ca-central-1/ecs/aws4_request`), for realistic ARNs. */
function credentialRegion(authorization: string): string {
  return /Credential=[^/]+\/\d{8}\/([^/]+)\//.exec(authorization)?.[1] ?? "local";
}

/** JSON with object keys sorted, so two equal requests compare equal whatever their key order. */
function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, inner: unknown) =>
    isRecord(inner) && !Array.isArray(inner)
      ? Object.fromEntries(Object.entries(inner).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : inner,
  );
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null;
}

function send(response: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  response.writeHead(status, { "Content-Type": "application/x-amz-json-1.1", "Content-Length": Buffer.byteLength(text) });
  response.end(text);
}
