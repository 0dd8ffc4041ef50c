/**
 * What the mocked evaluation registered, reduced to what a reviewer (and the
 * checks in infra-rules.ts) need: each runner task with its size, image,
 * environment names, secret names and roles; the dispatch user's policy; the
 * cluster; the outputs. Names only: no value of any variable or secret.
 *
 * Plain TypeScript without SST globals: the scripts and tests import it.
 */
import { relative } from "node:path";
import { RUNNER_FAMILIES, type RunnerFamily } from "../../supabase/functions/_shared/ecs-client.ts";
import { RUNNER_CONTAINER_NAMES } from "../runner-containers.ts";
import type { MockedStackResult, RecordedResource } from "./mocked-evaluation.ts";

export interface PolicyStatement {
  readonly sid?: string;
  readonly effect: string;
  readonly actions: string[];
  readonly resources: string[];
  readonly conditions: Record<string, Record<string, string[]>>;
}

export interface RoleSummary {
  readonly name: string;
  readonly arn: string;
  readonly managedPolicies: string[];
  readonly statements: PolicyStatement[];
}

export interface TaskSummary {
  /** The sst.aws.Task's name (RegistreRunner, OcrRunner). */
  readonly component: string;
  /** The task definition family dispatch names in RunTask. */
  readonly family: string;
  /** The runner family (registre, ocr), known by the container's name; undefined for a stray task. */
  readonly runnerFamily: RunnerFamily | undefined;
  readonly arnWithoutRevision: string;
  /** Fargate units as the task definition holds them: CPU units (1024 per vCPU) and MiB. */
  readonly cpu: number;
  readonly memory: number;
  readonly requiresCompatibilities: string[];
  readonly container: string;
  /** Repository-relative, e.g. runners/registre/Dockerfile. */
  readonly dockerfile: string;
  readonly imageContext: string;
  readonly imagePlatforms: string[];
  readonly environment: string[];
  /** Variable names injected from SSM, with the ARN of the parameter each comes from. */
  readonly secrets: string[];
  readonly secretParameters: Record<string, string>;
  readonly stopTimeout: number | undefined;
  readonly taskRole: RoleSummary;
  readonly executionRole: RoleSummary;
  /** Plain environment values that are capacity numbers (sizes, budgets), for the size checks; never secrets. */
  readonly capacityValues: Record<string, string>;
}

export interface InfraSummary {
  readonly stage: string;
  readonly region: string;
  readonly cluster: { readonly name: string; readonly arn: string; readonly capacityProviders: string[] };
  readonly tasks: TaskSummary[];
  /** Every IAM action granted to the dispatch user (what the dispatch function signs with). */
  readonly dispatchPolicyActions: string[];
  readonly dispatchPolicy: PolicyStatement[];
  readonly outputs: string[];
  /** The values of the outputs that are not secret (ids, names, ARNs), for the checks. */
  readonly outputValues: Record<string, string>;
  /** The `sst.Secret`s a deploy of this stage needs set. */
  readonly sstSecrets: string[];
  readonly resourceTypes: Record<string, number>;
}

/** Environment variables of the task definitions whose values are capacity numbers. */
const CAPACITY_VALUE = /^(SERVER_|REGISTRE_|INDEX_OCR_|ACTE_OCR_|MAX_|LEDGER_LEASE_TTL_SECONDS$)/;

function asArray(value: unknown): string[] {
  if (value === undefined || value === null) return [];
  return (Array.isArray(value) ? value : [value]).map(String);
}

/** Pulumi wraps secret inputs as `{ <signature>: …, value }`; the mocks see that wrapper. */
function unwrapSecret(value: unknown): unknown {
  if (typeof value === "object" && value !== null && !Array.isArray(value) && "value" in value && "4dabf18193072939515e22adb298388d" in value) {
    return (value as { value: unknown }).value;
  }
  return value;
}

function parseJson(value: unknown): unknown {
  const unwrapped = unwrapSecret(value);
  return typeof unwrapped === "string" ? JSON.parse(unwrapped) : unwrapped;
}

export function policyStatements(document: unknown): PolicyStatement[] {
  const parsed = parseJson(document) as { Statement?: unknown };
  return Array.isArray(parsed?.Statement)
    ? (parsed.Statement as Record<string, unknown>[]).map((statement) => ({
        ...(typeof statement.Sid === "string" ? { sid: statement.Sid } : {}),
        effect: String(statement.Effect ?? "Allow"),
        actions: asArray(statement.Action),
        resources: asArray(statement.Resource),
        conditions: Object.fromEntries(
          Object.entries((statement.Condition ?? {}) as Record<string, Record<string, unknown>>).map(([test, variables]) => [
            test,
            Object.fromEntries(Object.entries(variables).map(([variable, values]) => [variable, asArray(values)])),
          ]),
        ),
      }))
    : [];
}

function stringState(resource: RecordedResource, key: string): string {
  const value = resource.state[key];
  return typeof value === "string" ? value : "";
}

function roleSummary(roles: RecordedResource[], arn: string): RoleSummary {
  const role = roles.find((candidate) => stringState(candidate, "arn") === arn);
  if (role === undefined) throw new Error(`no role with ARN ${arn} was registered`);
  const inline = Array.isArray(role.inputs.inlinePolicies) ? (role.inputs.inlinePolicies as { policy?: unknown }[]) : [];
  return {
    name: stringState(role, "name"),
    arn,
    managedPolicies: asArray(role.inputs.managedPolicyArns),
    statements: inline.flatMap((policy) => policyStatements(policy.policy)),
  };
}

interface ContainerDefinition {
  name?: string;
  image?: string;
  environment?: { name: string; value: string }[];
  secrets?: { name: string; valueFrom: string }[];
  stopTimeout?: number;
}

export function summarizeInfra(result: MockedStackResult, root: string): InfraSummary {
  const ofType = (type: string) => result.resources.filter((resource) => resource.type === type);
  const roles = ofType("aws:iam/role:Role");
  const images = ofType("docker-build:index:Image");

  const tasks = ofType("aws:ecs/taskDefinition:TaskDefinition").map((definition): TaskSummary => {
    const containers = parseJson(definition.inputs.containerDefinitions) as ContainerDefinition[];
    if (containers.length !== 1) throw new Error(`task definition ${definition.name} has ${containers.length} containers, expected 1`);
    const container = containers[0] as ContainerDefinition;
    const component = definition.name.replace(/Task$/, "");
    const image = images.find((candidate) => candidate.name === `${component}Image${container.name}`);
    if (image === undefined) throw new Error(`no image was built for ${definition.name}`);
    const dockerfile = (image.inputs.dockerfile as { location?: string } | undefined)?.location ?? "";
    const context = (image.inputs.context as { location?: string } | undefined)?.location ?? "";
    const environment = container.environment ?? [];
    return {
      component,
      family: stringState(definition, "family"),
      runnerFamily: RUNNER_FAMILIES.find((family) => RUNNER_CONTAINER_NAMES[family] === container.name),
      arnWithoutRevision: stringState(definition, "arnWithoutRevision"),
      cpu: Number(definition.inputs.cpu),
      memory: Number(definition.inputs.memory),
      requiresCompatibilities: asArray(definition.inputs.requiresCompatibilities),
      container: container.name ?? "",
      dockerfile: relative(root, dockerfile),
      imageContext: relative(root, context) || ".",
      imagePlatforms: asArray(image.inputs.platforms),
      environment: environment.map((entry) => entry.name).sort(),
      secrets: (container.secrets ?? []).map((entry) => entry.name).sort(),
      secretParameters: Object.fromEntries((container.secrets ?? []).map((entry) => [entry.name, entry.valueFrom])),
      stopTimeout: container.stopTimeout,
      taskRole: roleSummary(roles, String(definition.inputs.taskRoleArn)),
      executionRole: roleSummary(roles, String(definition.inputs.executionRoleArn)),
      capacityValues: Object.fromEntries(environment.filter((entry) => CAPACITY_VALUE.test(entry.name)).map((entry) => [entry.name, entry.value])),
    };
  });

  const dispatchPolicy = ofType("aws:iam/userPolicy:UserPolicy").flatMap((policy) => policyStatements(policy.inputs.policy));
  const cluster = ofType("aws:ecs/cluster:Cluster")[0];
  const providers = ofType("aws:ecs/clusterCapacityProviders:ClusterCapacityProviders")[0];
  const outputNames = Object.keys(result.outputs).filter((name) => !name.startsWith("_"));
  const resourceTypes: Record<string, number> = {};
  for (const resource of result.resources) resourceTypes[resource.type] = (resourceTypes[resource.type] ?? 0) + 1;

  return {
    stage: result.stage,
    region: result.region,
    cluster: {
      name: cluster ? stringState(cluster, "name") : "",
      arn: cluster ? stringState(cluster, "arn") : "",
      capacityProviders: asArray(providers?.inputs.capacityProviders),
    },
    tasks,
    dispatchPolicyActions: [...new Set(dispatchPolicy.flatMap((statement) => statement.actions))].sort(),
    dispatchPolicy,
    outputs: outputNames.sort(),
    outputValues: Object.fromEntries(outputNames.map((name) => [name, String(result.outputs[name])])),
    sstSecrets: result.secrets,
    resourceTypes,
  };
}
