/**
 * A small Amazon ECS client for the three calls dispatch needs (RunTask,
 * DescribeTasks, StopTask), speaking the ECS JSON 1.1 protocol over `fetch`
 * with requests signed by `aws4fetch`. The full AWS SDK is far heavier than an
 * edge function warrants; these three shapes are stable (API version
 * 2014-11-13). Runs unchanged in Deno and Node: web APIs only.
 *
 * Locally, `AWS_ENDPOINT_URL_ECS` points at `infra/local/ecs-task-server.ts`,
 * which answers the same requests by starting runner processes.
 */
import { AwsClient } from "aws4fetch";
import { z } from "zod";
import type { Environment } from "./environments.ts";
import type { JobKind } from "./job-kinds.ts";
import { setValues } from "./env-values.ts";
import { EcsError, type EcsFailure, type EcsOperation } from "./ecs-errors.ts";
import type { EcsPlacement } from "./ecs-placement.ts";
import { RUNNER_FAMILIES, runnerFamilyFor, type RunnerFamily } from "./runner-families.ts";
import { SpotPlacements, type SpotFallbackBoard } from "./spot-fallback.ts";

/**
 * Names of the variables dispatch puts in a runner container's environment.
 * The runner reads these exact names, so both sides import this object.
 */
export const RUNNER_TASK_ENV = {
  /** Which kind of job the runner claims (`registre`, `index-ocr`, `acte-ocr`). */
  jobKind: "JOB_KIND",
  /** Which Supabase project's queue the runner serves (`dev`, `staging`, `prod`). */
  environment: "ENVIRONMENT",
  /** The capacity-ledger lease the runner renews and releases on exit. */
  ledgerLeaseId: "LEDGER_LEASE_ID",
} as const;

/** The container environment for one runner task, keyed by RUNNER_TASK_ENV names. */
export function runnerTaskEnvironment(task: { kind: JobKind; environment: Environment; ledgerLeaseId: string }): Record<string, string> {
  return {
    [RUNNER_TASK_ENV.jobKind]: task.kind,
    [RUNNER_TASK_ENV.environment]: task.environment,
    [RUNNER_TASK_ENV.ledgerLeaseId]: task.ledgerLeaseId,
  };
}

const commaList = z
  .string()
  .transform((value) => value.split(",").map((item) => item.trim()).filter((item) => item.length > 0));

/** Variables read by parseEcsConfig; each names where its value comes from. */
const ecsEnvSchema = z.object({
  AWS_ACCESS_KEY_ID: z.string().min(1),
  AWS_SECRET_ACCESS_KEY: z.string().min(1),
  /** Only with temporary credentials. */
  AWS_SESSION_TOKEN: z.string().min(1).optional(),
  AWS_REGION: z.string().min(1),
  /** Overrides `https://ecs.<region>.amazonaws.com`; the local stack sets it. */
  AWS_ENDPOINT_URL_ECS: z.url().optional(),
  /** Short name or ARN of the cluster (an SST output). */
  ECS_CLUSTER: z.string().min(1),
  /** Task definition (family, family:revision or ARN) of the registre runner. */
  ECS_TASK_DEFINITION_REGISTRE: z.string().min(1),
  /** Task definition of the OCR runner (index-ocr and acte-ocr). */
  ECS_TASK_DEFINITION_OCR: z.string().min(1),
  /** Name of the container in the registre task definition that receives the environment. */
  ECS_CONTAINER_NAME_REGISTRE: z.string().min(1),
  /** Name of the container in the OCR task definition that receives the environment. */
  ECS_CONTAINER_NAME_OCR: z.string().min(1),
  /** Comma-separated subnet ids for the tasks' network interfaces (awsvpc). */
  ECS_SUBNETS: commaList.pipe(z.array(z.string()).min(1, "needs at least one subnet id")),
  /** Comma-separated security group ids; the VPC default group when empty. */
  ECS_SECURITY_GROUPS: commaList.optional(),
  /** `ENABLED` only when tasks run in public subnets without a NAT gateway. */
  ECS_ASSIGN_PUBLIC_IP: z.enum(["ENABLED", "DISABLED"]).default("DISABLED"),
  /**
   * A capacity provider (e.g. `FARGATE_SPOT`). When set, RunTask sends a
   * capacity provider strategy instead of `launchType: FARGATE`: ECS rejects
   * requests that carry both.
   */
  ECS_CAPACITY_PROVIDER: z.string().min(1).optional(),
  /**
   * Per family, instead of ECS_CAPACITY_PROVIDER: e.g. `FARGATE_SPOT` for
   * OCR (short jobs, cheap to redo) while registre stays on demand.
   */
  ECS_CAPACITY_PROVIDER_REGISTRE: z.string().min(1).optional(),
  ECS_CAPACITY_PROVIDER_OCR: z.string().min(1).optional(),
  /** Spot refusing a FARGATE_SPOT family this long makes dispatch start it on FARGATE (spot-fallback.ts). @default 300 */
  ECS_SPOT_FALLBACK_SECONDS: z.coerce.number().int().min(1).max(86_400).default(300),
});

export interface EcsConfig {
  readonly credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  readonly region: string;
  readonly endpoint: string;
  readonly cluster: string;
  readonly taskDefinitions: Readonly<Record<RunnerFamily, string>>;
  readonly containerNames: Readonly<Record<RunnerFamily, string>>;
  readonly subnets: readonly string[];
  readonly securityGroups: readonly string[];
  readonly assignPublicIp: "ENABLED" | "DISABLED";
  /** FARGATE unless a capacity provider is configured. */
  readonly placement: EcsPlacement;
  /** Each family's placement: its own provider, else ECS_CAPACITY_PROVIDER, else FARGATE. */
  readonly familyPlacement: Readonly<Record<RunnerFamily, EcsPlacement>>;
  /** ECS_SPOT_FALLBACK_SECONDS in ms. */
  readonly spotFallbackMs: number;
}

function placementOf(capacityProvider: string | undefined): EcsPlacement {
  return capacityProvider === undefined ? { launchType: "FARGATE" } : { capacityProvider };
}

/** Raised when the ECS configuration is incomplete; names every offending variable. */
export class EcsConfigError extends Error {
  override readonly name = "EcsConfigError";
  constructor(readonly variables: readonly string[], detail: string) {
    super(`ECS configuration: ${detail}`);
  }
}

/** Parses and checks the ECS variables once, at start. */
export function parseEcsConfig(environment: Readonly<Record<string, string | undefined>>): EcsConfig {
  const env = setValues(environment);
  const parsed = ecsEnvSchema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => {
      const variable = String(issue.path[0] ?? "?");
      return { variable, text: env[variable] === undefined ? `${variable} is missing` : `${variable}: ${issue.message}` };
    });
    throw new EcsConfigError(problems.map((p) => p.variable), problems.map((p) => p.text).join("; "));
  }
  const e = parsed.data;
  return {
    credentials: {
      accessKeyId: e.AWS_ACCESS_KEY_ID,
      secretAccessKey: e.AWS_SECRET_ACCESS_KEY,
      ...(e.AWS_SESSION_TOKEN === undefined ? {} : { sessionToken: e.AWS_SESSION_TOKEN }),
    },
    region: e.AWS_REGION,
    endpoint: e.AWS_ENDPOINT_URL_ECS ?? `https://ecs.${e.AWS_REGION}.amazonaws.com`,
    cluster: e.ECS_CLUSTER,
    taskDefinitions: { registre: e.ECS_TASK_DEFINITION_REGISTRE, ocr: e.ECS_TASK_DEFINITION_OCR },
    containerNames: { registre: e.ECS_CONTAINER_NAME_REGISTRE, ocr: e.ECS_CONTAINER_NAME_OCR },
    subnets: e.ECS_SUBNETS,
    securityGroups: e.ECS_SECURITY_GROUPS ?? [],
    assignPublicIp: e.ECS_ASSIGN_PUBLIC_IP,
    placement: placementOf(e.ECS_CAPACITY_PROVIDER),
    familyPlacement: {
      registre: placementOf(e.ECS_CAPACITY_PROVIDER_REGISTRE ?? e.ECS_CAPACITY_PROVIDER),
      ocr: placementOf(e.ECS_CAPACITY_PROVIDER_OCR ?? e.ECS_CAPACITY_PROVIDER),
    },
    spotFallbackMs: e.ECS_SPOT_FALLBACK_SECONDS * 1000,
  };
}

/** The task definition and container that run jobs of `kind`. */
export function runnerTaskFor(config: EcsConfig, kind: JobKind): { taskDefinition: string; containerName: string } {
  const family = runnerFamilyFor(kind);
  return { taskDefinition: config.taskDefinitions[family], containerName: config.containerNames[family] };
}

export { EcsError, isDefiniteRunTaskRefusal, type EcsFailure, type EcsOperation } from "./ecs-errors.ts";
// Defined below the client so spot-fallback.ts can use them without importing it back; re-exported for the client's callers.
export type { EcsPlacement } from "./ecs-placement.ts";
export { RUNNER_FAMILIES, runnerFamilyFor, type RunnerFamily } from "./runner-families.ts";

export const ECS_TARGET_PREFIX = "AmazonEC2ContainerServiceV20141113";
export const ECS_CONTENT_TYPE = "application/x-amz-json-1.1";

/** What DescribeTasks and StopTask tell about one task. */
export interface EcsTaskStatus {
  taskArn: string;
  /** PROVISIONING, PENDING, ACTIVATING, RUNNING, DEACTIVATING, STOPPING, DEPROVISIONING, STOPPED. */
  lastStatus: string;
  desiredStatus?: string;
  /** TaskFailedToStart, EssentialContainerExited, UserInitiated, … once stopping. */
  stopCode?: string;
  stoppedReason?: string;
  containers: { name?: string; lastStatus?: string; exitCode?: number; reason?: string }[];
}

const failureSchema = z.object({ arn: z.string().optional(), reason: z.string().optional(), detail: z.string().optional() });
const taskSchema = z.object({
  taskArn: z.string(),
  lastStatus: z.string(),
  desiredStatus: z.string().optional(),
  stopCode: z.string().optional(),
  stoppedReason: z.string().optional(),
  containers: z
    .array(z.object({ name: z.string().optional(), lastStatus: z.string().optional(), exitCode: z.number().optional(), reason: z.string().optional() }))
    .default([]),
});
const tasksResponseSchema = z.object({ tasks: z.array(taskSchema).default([]), failures: z.array(failureSchema).default([]) });
const stopTaskResponseSchema = z.object({ task: taskSchema });
const errorBodySchema = z.object({ __type: z.string().optional(), message: z.string().optional(), Message: z.string().optional() });

export interface RunTaskInput {
  /** Family, family:revision or ARN; see runnerTaskFor. */
  taskDefinition: string;
  /** Makes a retry return the first task instead of starting another (ECS: ≤ 64 ASCII characters, kept 24 h). The ledger lease id. */
  clientToken: string;
  /** The container in the task definition that receives `environment`. */
  containerName: string;
  environment: Readonly<Record<string, string>>;
  /** Shown in the console and filterable in ListTasks (≤ 128 letters, digits, `-`, `_`, `/`). */
  startedBy?: string;
}

export interface EcsClientOptions {
  /**
   * Attempts after the first on 5xx and 429, with aws4fetch's jittered backoff.
   * Safe for RunTask because every call carries a clientToken.
   * @default 2
   */
  retries?: number;
  /**
   * Gives up on one call (all attempts) after this long.
   * @default 10000
   */
  timeoutMs?: number;
  /** Spot, then on demand after a wait (spot-fallback.ts). @default none: always the configured placement */
  spotFallback?: SpotFallbackBoard;
}

const CLIENT_TOKEN = /^[\x21-\x7e]{1,64}$/;
const STARTED_BY = /^[A-Za-z0-9_/-]{1,128}$/;

export class EcsClient {
  readonly #config: EcsConfig;
  readonly #aws: AwsClient;
  readonly #timeoutMs: number;
  readonly #spot: SpotPlacements;

  constructor(config: EcsConfig, options: EcsClientOptions = {}) {
    this.#config = config;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.#spot = new SpotPlacements(options.spotFallback);
    this.#aws = new AwsClient({
      ...config.credentials,
      // Given explicitly: aws4fetch guesses both from the hostname, which fails for a local endpoint.
      service: "ecs",
      region: config.region,
      retries: options.retries ?? 2,
    });
  }

  /** Starts one task; resolves to its ARN. Throws EcsError when ECS refuses or places nothing. */
  async runTask(input: RunTaskInput): Promise<string> {
    if (!CLIENT_TOKEN.test(input.clientToken)) {
      throw new RangeError(`clientToken must be 1 to 64 printable ASCII characters, got ${JSON.stringify(input.clientToken)}`);
    }
    if (input.startedBy !== undefined && !STARTED_BY.test(input.startedBy)) {
      throw new RangeError(`startedBy must be 1 to 128 letters, digits, '-', '_' or '/', got ${JSON.stringify(input.startedBy)}`);
    }
    const config = this.#config;
    const family = RUNNER_FAMILIES.find((candidate) => config.taskDefinitions[candidate] === input.taskDefinition);
    const configured = family === undefined ? config.placement : config.familyPlacement[family];
    const placement = family === undefined ? configured : await this.#spot.choose(input.clientToken, family, configured);
    const body = {
      cluster: config.cluster,
      taskDefinition: input.taskDefinition,
      count: 1,
      clientToken: input.clientToken,
      ...("launchType" in placement
        ? { launchType: placement.launchType }
        : { capacityProviderStrategy: [{ capacityProvider: placement.capacityProvider, weight: 1 }] }),
      networkConfiguration: {
        awsvpcConfiguration: {
          subnets: config.subnets,
          ...(config.securityGroups.length > 0 ? { securityGroups: config.securityGroups } : {}),
          assignPublicIp: config.assignPublicIp,
        },
      },
      overrides: {
        containerOverrides: [
          {
            name: input.containerName,
            environment: Object.entries(input.environment).map(([name, value]) => ({ name, value })),
          },
        ],
      },
      ...(input.startedBy === undefined ? {} : { startedBy: input.startedBy }),
    };
    let response: z.infer<typeof tasksResponseSchema>;
    try {
      response = parseResponse("RunTask", tasksResponseSchema, await this.#call("RunTask", body));
    } catch (error) {
      if (family !== undefined && error instanceof EcsError) await this.#spot.refused(family, placement, error.failures, error.message);
      throw error;
    }
    const task = response.tasks[0];
    if (response.failures.length > 0 || task === undefined) {
      const reasons = response.failures.map((f) => [f.reason, f.detail].filter(Boolean).join(": ")).join("; ");
      if (family !== undefined) await this.#spot.refused(family, placement, response.failures, reasons);
      throw new EcsError("RunTask", `ECS RunTask placed no task: ${reasons || "no reason given"}`, { failures: response.failures });
    }
    if (family !== undefined) await this.#spot.started(family, placement);
    return task.taskArn;
  }

  /** Status of the given tasks; unknown ARNs come back in `failures` with reason MISSING. */
  async describeTasks(taskArns: readonly string[]): Promise<{ tasks: EcsTaskStatus[]; failures: EcsFailure[] }> {
    const tasks: EcsTaskStatus[] = [];
    const failures: EcsFailure[] = [];
    // ECS accepts at most 100 tasks per DescribeTasks call.
    for (let start = 0; start < taskArns.length; start += 100) {
      const body = { cluster: this.#config.cluster, tasks: taskArns.slice(start, start + 100) };
      const page = parseResponse("DescribeTasks", tasksResponseSchema, await this.#call("DescribeTasks", body));
      tasks.push(...page.tasks);
      failures.push(...page.failures);
    }
    return { tasks, failures };
  }

  /** Asks ECS to stop a task (SIGTERM, then SIGKILL after the container's stopTimeout). */
  async stopTask(taskArn: string, reason: string): Promise<EcsTaskStatus> {
    // ECS truncates longer reasons; cutting here keeps the request valid.
    const body = { cluster: this.#config.cluster, task: taskArn, reason: reason.slice(0, 255) };
    return parseResponse("StopTask", stopTaskResponseSchema, await this.#call("StopTask", body)).task;
  }

  async #call(operation: EcsOperation, body: unknown): Promise<unknown> {
    const response = await this.#aws.fetch(this.#config.endpoint, {
      method: "POST",
      headers: { "Content-Type": ECS_CONTENT_TYPE, "X-Amz-Target": `${ECS_TARGET_PREFIX}.${operation}` },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(this.#timeoutMs),
    });
    const text = await response.text();
    let json: unknown;
    try {
      json = text.length > 0 ? JSON.parse(text) : {};
    } catch {
      json = undefined;
    }
    if (!response.ok) {
      const error = errorBodySchema.safeParse(json);
      // ECS sometimes qualifies the type (`com.amazonaws.ecs#ClientException`); keep the short name.
      const awsType = error.success ? error.data.__type?.split("#").pop() : undefined;
      const message = (error.success ? error.data.message ?? error.data.Message : undefined) ?? text.slice(0, 200);
      const label = awsType === undefined ? `HTTP ${response.status}` : `HTTP ${response.status} ${awsType}`;
      throw new EcsError(operation, `ECS ${operation} failed with ${label}: ${message}`, {
        httpStatus: response.status,
        ...(awsType === undefined ? {} : { awsType }),
      });
    }
    if (json === undefined) throw new EcsError(operation, `ECS ${operation} answered with a body that is not JSON`, { httpStatus: response.status });
    return json;
  }
}

function parseResponse<T>(operation: EcsOperation, schema: z.ZodType<T>, json: unknown): T {
  const parsed = schema.safeParse(json);
  if (!parsed.success) throw new EcsError(operation, `ECS ${operation} answered with an unexpected shape: ${z.prettifyError(parsed.error)}`, {});
  return parsed.data;
}
