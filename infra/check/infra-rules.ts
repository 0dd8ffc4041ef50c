/**
 * The rules the mocked evaluation must satisfy before anyone spends money:
 * each one names what is wrong in words a reviewer can act on. `checkInfra`
 * returns every broken rule (empty when the stage is sound); infra:check
 * fails on any.
 *
 * - sizes: each runner family's task is the Fargate size of its ledger
 *   profiles, and its capacity environment counts that size (runner-sizes.ts);
 * - least privilege: the dispatch user may only RunTask this stage's task
 *   definitions in this cluster, DescribeTasks/StopTask this cluster's tasks
 *   and PassRole the runners' roles to ECS; task roles hold nothing; each
 *   execution role reads only its own family's secret parameters;
 * - secrets: each family receives exactly its secrets from SSM
 *   (runner-secrets.ts), never as plain environment, and never the
 *   service-role key;
 * - wiring: images built from Dockerfiles in the repository, the container
 *   names and outputs dispatch needs, Spot available on the cluster.
 *
 * Plain TypeScript without SST globals: the scripts and tests import it.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { KIND_VARIABLES, parseCapacityConfig } from "../../supabase/functions/_shared/capacity-config.ts";
import { parseEcsConfig, RUNNER_FAMILIES, RUNNER_TASK_ENV, type RunnerFamily } from "../../supabase/functions/_shared/ecs-client.ts";
import { errorMessage } from "../../supabase/functions/_shared/error-message.ts";
import { FARGATE_CPU_OPTIONS } from "../fargate-sizes.ts";
import { RUNNER_CONTAINER_NAMES } from "../runner-containers.ts";
import { RUNNER_CAPACITY_PROVIDERS } from "../runner-placement.ts";
import { RUNNER_SECRETS, runnerSecretsOf } from "../runner-secrets.ts";
import { billedCapacity, runnerFamilySizes } from "../runner-sizes.ts";
import type { InfraSummary, PolicyStatement, TaskSummary } from "./infra-summary.ts";

/** What AWS's managed policy for task execution is called (ECR pull, CloudWatch Logs). */
const TASK_EXECUTION_POLICY = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy";
/** ECS sends SIGKILL this long after SIGTERM at most; the runner's drain needs all of it. */
const STOP_TIMEOUT_SECONDS = 120;
const DISPATCH_ACTIONS = ["ecs:DescribeTasks", "ecs:RunTask", "ecs:StopTask", "iam:PassRole"];

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  const left = [...new Set(a)].sort();
  const right = [...new Set(b)].sort();
  return left.length === right.length && left.every((value, index) => value === right[index]);
}

function familyOfTask(task: TaskSummary): RunnerFamily | undefined {
  return task.runnerFamily;
}

function checkSize(task: TaskSummary, family: RunnerFamily, env: Readonly<Record<string, string | undefined>>, problems: string[]): void {
  const capacity = billedCapacity(parseCapacityConfig(env));
  const size = runnerFamilySizes(capacity)[family];
  const option = FARGATE_CPU_OPTIONS.find((candidate) => candidate.vcpu * 1024 === task.cpu);
  if (option === undefined || !option.memoryGb.includes(task.memory / 1024)) {
    problems.push(`${family}: ${task.cpu} CPU units / ${task.memory} MiB is not a Fargate size`);
  }
  if (task.cpu !== size.cpuUnits || task.memory !== size.memoryMiB) {
    problems.push(`${family}: task is ${task.cpu} CPU units / ${task.memory} MiB, its ledger profiles need ${size.cpuUnits} / ${size.memoryMiB} (${size.cpu} / ${size.memory})`);
  }
  // Every task holds every kind's profile (a runner renews its lease with the same limits dispatch uses).
  for (const [kind, names] of Object.entries(KIND_VARIABLES) as [keyof typeof KIND_VARIABLES, (typeof KIND_VARIABLES)[keyof typeof KIND_VARIABLES]][]) {
    const profile = capacity.profiles[kind];
    if (Number(task.capacityValues[names.vcpu]) !== profile.vcpu || Number(task.capacityValues[names.ramGb]) !== profile.ramGb) {
      problems.push(
        `${family}: ${names.vcpu}/${names.ramGb} are ${task.capacityValues[names.vcpu]}/${task.capacityValues[names.ramGb]}, the deployed ledger counts ${profile.vcpu}/${profile.ramGb}`,
      );
    }
  }
}

function checkSecrets(task: TaskSummary, family: RunnerFamily, problems: string[]): void {
  const expected = runnerSecretsOf(family).map((entry) => entry.variable);
  if (!sameSet(task.secrets, expected)) problems.push(`${family}: receives secrets ${task.secrets.join(", ")}; it should receive exactly ${expected.join(", ")}`);
  for (const name of [...task.environment, ...task.secrets]) {
    if (name === "SUPABASE_SERVICE_ROLE_KEY") problems.push(`${family}: receives SUPABASE_SERVICE_ROLE_KEY; runners get the storage key only`);
  }
  const plain = task.environment.filter((name) => RUNNER_SECRETS.some((entry) => entry.variable === name));
  if (plain.length > 0) problems.push(`${family}: ${plain.join(", ")} in plain environment, where DescribeTaskDefinition shows them`);
  const perTask = Object.values(RUNNER_TASK_ENV).filter((name) => task.environment.includes(name) || task.secrets.includes(name));
  if (perTask.length > 0) problems.push(`${family}: ${perTask.join(", ")} belong to dispatch's RunTask overrides, not the task definition`);
}

function checkRoles(task: TaskSummary, family: RunnerFamily, problems: string[]): void {
  if (task.taskRole.statements.length > 0 || task.taskRole.managedPolicies.length > 0) {
    const actions = task.taskRole.statements.flatMap((statement) => statement.actions);
    problems.push(`${family}: the task role grants ${[...actions, ...task.taskRole.managedPolicies].join(", ")}; runners call no AWS API`);
  }
  if (!sameSet(task.executionRole.managedPolicies, [TASK_EXECUTION_POLICY])) {
    problems.push(`${family}: the execution role has managed policies ${task.executionRole.managedPolicies.join(", ")}`);
  }
  const parameterArns = Object.values(task.secretParameters);
  for (const statement of task.executionRole.statements) {
    if (!sameSet(statement.actions, ["ssm:GetParameters"]) || !sameSet(statement.resources, parameterArns)) {
      problems.push(
        `${family}: the execution role grants ${statement.actions.join(", ")} on ${statement.resources.join(", ")}; it may only ssm:GetParameters its own ${parameterArns.length} parameters`,
      );
    }
  }
}

function checkTask(task: TaskSummary, family: RunnerFamily, root: string, env: Readonly<Record<string, string | undefined>>, problems: string[]): void {
  checkSize(task, family, env, problems);
  checkSecrets(task, family, problems);
  checkRoles(task, family, problems);
  if (!task.requiresCompatibilities.includes("FARGATE")) problems.push(`${family}: the task definition is not for Fargate`);
  if (task.stopTimeout !== STOP_TIMEOUT_SECONDS) problems.push(`${family}: stopTimeout is ${task.stopTimeout}, the drain needs ${STOP_TIMEOUT_SECONDS}`);
  if (task.imageContext !== ".") problems.push(`${family}: the image context is ${task.imageContext}, the Dockerfiles expect the repository root`);
  if (task.dockerfile.startsWith("..") || !existsSync(join(root, task.dockerfile))) problems.push(`${family}: the Dockerfile ${task.dockerfile} is not in the repository`);
}

function conditionValues(statement: PolicyStatement, test: string, variable: string): string[] {
  return statement.conditions[test]?.[variable] ?? [];
}

function checkDispatchPolicy(summary: InfraSummary, problems: string[]): void {
  const { cluster, tasks } = summary;
  const granted = [...new Set(summary.dispatchPolicy.filter((statement) => statement.effect === "Allow").flatMap((statement) => statement.actions))].sort();
  if (!sameSet(granted, DISPATCH_ACTIONS)) problems.push(`dispatch: may ${granted.join(", ")}; it may only ${DISPATCH_ACTIONS.join(", ")}`);
  const taskPrefix = `${cluster.arn.replace(":cluster/", ":task/")}/`;
  const runTaskResources = summary.dispatchPolicy.filter((statement) => statement.effect === "Allow" && statement.actions.includes("ecs:RunTask")).flatMap((statement) => statement.resources);
  const everyDefinition = tasks.map((task) => `${task.arnWithoutRevision}:*`);
  if (!sameSet(runTaskResources, everyDefinition)) problems.push(`dispatch: ecs:RunTask on ${runTaskResources.join(", ")}; exactly this stage's task definitions ${everyDefinition.join(", ")}`);
  const roleArns = tasks.flatMap((task) => [task.taskRole.arn, task.executionRole.arn]);
  for (const statement of summary.dispatchPolicy) {
    const where = statement.sid ?? statement.actions.join("+");
    if (statement.effect !== "Allow") continue;
    if (statement.resources.some((resource) => resource === "*")) problems.push(`dispatch: ${where} applies to every resource ("*")`);
    const ecsActions = statement.actions.filter((action) => action.startsWith("ecs:"));
    const iamActions = statement.actions.filter((action) => action.startsWith("iam:"));
    if (ecsActions.length > 0 && iamActions.length > 0) problems.push(`dispatch: ${where} mixes ECS and IAM actions`);
    if (ecsActions.length > 0 && !sameSet(conditionValues(statement, "ArnEquals", "ecs:cluster"), [cluster.arn])) {
      problems.push(`dispatch: ${where} is not limited to this stage's cluster (ArnEquals ecs:cluster)`);
    }
    if (statement.actions.includes("ecs:RunTask")) {
      if (!sameSet(statement.actions, ["ecs:RunTask"])) problems.push(`dispatch: ${where} grants more than ecs:RunTask on task definitions`);
      // One statement per family (run-task-rules.ts checks each one's size): together, exactly this stage's task definitions.
      const expected = tasks.map((task) => `${task.arnWithoutRevision}:*`);
      const outside = statement.resources.filter((resource) => !expected.includes(resource));
      if (outside.length > 0) problems.push(`dispatch: ecs:RunTask on ${outside.join(", ")}; only this stage's task definitions ${expected.join(", ")}`);
    }
    if (statement.actions.some((action) => action === "ecs:DescribeTasks" || action === "ecs:StopTask")) {
      const outside = statement.resources.filter((resource) => !resource.startsWith(taskPrefix));
      if (outside.length > 0) problems.push(`dispatch: ${where} reaches ${outside.join(", ")}, outside this cluster's tasks (${taskPrefix}*)`);
    }
    if (iamActions.length > 0) {
      if (!sameSet(iamActions, ["iam:PassRole"])) problems.push(`dispatch: ${where} grants ${iamActions.join(", ")}`);
      if (!sameSet(statement.resources, roleArns)) problems.push(`dispatch: iam:PassRole on ${statement.resources.join(", ")}; only the runners' task and execution roles`);
      if (!sameSet(conditionValues(statement, "StringEquals", "iam:PassedToService"), ["ecs-tasks.amazonaws.com"])) {
        problems.push(`dispatch: iam:PassRole is not limited to ecs-tasks.amazonaws.com`);
      }
    }
  }
}

function checkOutputs(summary: InfraSummary, problems: string[]): void {
  const values = summary.outputValues;
  try {
    // The outputs plus the access key (created outside the deploy) are a complete ECS configuration.
    parseEcsConfig({ ...values, AWS_ACCESS_KEY_ID: "AKIA-placeholder", AWS_SECRET_ACCESS_KEY: "placeholder" });
  } catch (error) {
    problems.push(`outputs: not a complete dispatch ECS configuration: ${errorMessage(error)}`);
  }
  if (values.ECS_CLUSTER !== summary.cluster.arn) problems.push(`outputs: ECS_CLUSTER is ${values.ECS_CLUSTER}, the cluster is ${summary.cluster.arn}`);
  for (const family of RUNNER_FAMILIES) {
    const task = summary.tasks.find((candidate) => familyOfTask(candidate) === family);
    const variable = `ECS_TASK_DEFINITION_${family.toUpperCase()}`;
    if (task && values[variable] !== task.family) problems.push(`outputs: ${variable} is ${values[variable]}, the task definition family is ${task.family}`);
    const providerVariable = `ECS_CAPACITY_PROVIDER_${family.toUpperCase()}`;
    if (values[providerVariable] !== RUNNER_CAPACITY_PROVIDERS[family]) problems.push(`outputs: ${providerVariable} is ${values[providerVariable]}, runner-placement.ts says ${RUNNER_CAPACITY_PROVIDERS[family]}`);
    if (!summary.cluster.capacityProviders.includes(values[providerVariable] ?? "")) problems.push(`outputs: ${providerVariable} names a capacity provider the cluster does not have`);
    const containerVariable = `ECS_CONTAINER_NAME_${family.toUpperCase()}`;
    if (values[containerVariable] !== RUNNER_CONTAINER_NAMES[family]) problems.push(`outputs: ${containerVariable} is ${values[containerVariable]}`);
  }
  for (const subnet of (values.ECS_SUBNETS ?? "").split(",")) {
    if (!/^subnet-[0-9a-f]+$/.test(subnet)) problems.push(`outputs: ECS_SUBNETS holds ${JSON.stringify(subnet.slice(0, 60))}, not a subnet id`);
  }
  for (const group of (values.ECS_SECURITY_GROUPS ?? "").split(",")) {
    if (!/^sg-[0-9a-f]+$/.test(group)) problems.push(`outputs: ECS_SECURITY_GROUPS holds ${JSON.stringify(group.slice(0, 60))}, not a security group id`);
  }
  if (values.Stage !== summary.stage) problems.push(`outputs: Stage is ${values.Stage}, evaluated ${summary.stage}`);
}

/** Every rule the stage breaks, in words; empty when it is sound. */
export function checkInfra(summary: InfraSummary, options: { root: string; env: Readonly<Record<string, string | undefined>> }): string[] {
  const problems: string[] = [];
  for (const family of RUNNER_FAMILIES) {
    const tasks = summary.tasks.filter((task) => familyOfTask(task) === family);
    if (tasks.length !== 1) {
      problems.push(`${family}: ${tasks.length} task definitions have a ${RUNNER_CONTAINER_NAMES[family]} container, expected 1`);
      continue;
    }
    checkTask(tasks[0] as TaskSummary, family, options.root, options.env, problems);
  }
  const strays = summary.tasks.filter((task) => familyOfTask(task) === undefined).map((task) => task.family);
  if (strays.length > 0) problems.push(`tasks: ${strays.join(", ")} belong to no runner family`);
  if (!summary.cluster.capacityProviders.includes("FARGATE") || !summary.cluster.capacityProviders.includes("FARGATE_SPOT")) {
    problems.push(`cluster: capacity providers are ${summary.cluster.capacityProviders.join(", ")}; FARGATE and FARGATE_SPOT are both needed`);
  }
  checkDispatchPolicy(summary, problems);
  checkOutputs(summary, problems);
  const expectedSecrets = RUNNER_SECRETS.map((entry) => entry.secret);
  if (!sameSet(summary.sstSecrets, expectedSecrets)) problems.push(`secrets: the deploy reads ${summary.sstSecrets.join(", ")}; runner-secrets.ts lists ${expectedSecrets.join(", ")}`);
  return problems;
}
