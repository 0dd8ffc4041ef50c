/**
 * What the dispatch function needs to start runners in this stage: an IAM
 * identity allowed to do exactly that, and the values that become its
 * Supabase secrets (the names parseEcsConfig reads in ecs-client.ts).
 */
import { cluster } from "./cluster.ts";
import { runnerAssignPublicIp, runnerSecurityGroup, runnerSubnets } from "./network.ts";
import { RUNNER_CONTAINER_NAMES } from "./runner-containers.ts";
import { RUNNER_CAPACITY_PROVIDERS, RUNNER_SPOT_FALLBACK_SECONDS } from "./runner-placement.ts";
import { ocrTask, registreTask, sizes } from "./tasks.ts";

/**
 * The dispatch function runs on Supabase's edge runtime, outside AWS: it has
 * no instance or task role to assume and no identity AWS could federate, so
 * it signs its ECS calls with the access key of this IAM user. The user may
 * only start the two runner task definitions in this cluster, watch and stop
 * tasks in this cluster, and hand the runners' roles to ECS while doing so
 * (RunTask requires iam:PassRole on a task definition's task and execution
 * roles). A leaked key can start runners, which the capacity ledger and the
 * job leases keep harmless, and nothing else.
 *
 * The access key itself is created outside the deploy (docs/deploy.md), so
 * it never sits in the SST state and can be rotated without a deploy.
 */
export const dispatchUser = new aws.iam.User("DispatchUser", { path: `/${$app.name}/` });

const clusterArn = cluster.nodes.cluster.apply((ecsCluster) => ecsCluster.arn);
/** Every revision of a task definition: dispatch names the family, so RunTask takes the latest. */
const everyRevisionOf = (task: sst.aws.Task) =>
  task.nodes.taskDefinition.apply((definition) => $interpolate`${definition.arnWithoutRevision}:*`);
/** Task ARNs are the cluster ARN with `task/` for `cluster/`, then the task id. */
const tasksInCluster = clusterArn.apply((arn) => `${arn.replace(":cluster/", ":task/")}/*`);

new aws.iam.UserPolicy("DispatchUserPolicy", {
  user: dispatchUser.name,
  policy: aws.iam.getPolicyDocumentOutput({
    statements: [
      // One statement per family: RunTask of its task definitions only at its
      // own size (ecs:task-cpu/ecs:task-memory, evaluated on RunTask since
      // 2026-09: "Amazon ECS expands IAM condition key support for RunTask and
      // StartTask APIs"; IfExists, so a request without them is judged by
      // the rest), on Fargate or Fargate Spot only, in this cluster.
      // No condition key reads a container override's environment or
      // command, so the images use ENTRYPOINT and the runners ignore endpoint
      // overrides in production (runners/lifecycle/production-endpoints.ts).
      ...([
        ["StartRegistreRunnerTasks", registreTask, sizes.registre],
        ["StartOcrRunnerTasks", ocrTask, sizes.ocr],
      ] as const).map(([sid, task, size]) => ({
        sid,
        actions: ["ecs:RunTask"],
        resources: [everyRevisionOf(task)],
        conditions: [
          { test: "ArnEquals", variable: "ecs:cluster", values: [clusterArn] },
          { test: "ForAllValues:StringEquals", variable: "ecs:capacity-provider", values: ["FARGATE", "FARGATE_SPOT"] },
          { test: "NumericEqualsIfExists", variable: "ecs:task-cpu", values: [String(size.cpuUnits)] },
          { test: "NumericEqualsIfExists", variable: "ecs:task-memory", values: [String(size.memoryMiB)] },
        ],
      })),
      {
        // ECS Exec would give a shell in a runner (its secrets, the registry
        // session): dispatch never asks for it, so no request that does passes.
        sid: "NeverEcsExec",
        effect: "Deny",
        actions: ["ecs:RunTask"],
        resources: ["*"],
        conditions: [{ test: "StringEquals", variable: "ecs:enable-execute-command", values: ["true"] }],
      },
      {
        sid: "WatchAndStopRunnerTasks",
        actions: ["ecs:DescribeTasks", "ecs:StopTask"],
        resources: [tasksInCluster],
        conditions: [{ test: "ArnEquals", variable: "ecs:cluster", values: [clusterArn] }],
      },
      {
        sid: "HandRunnerRolesToEcs",
        actions: ["iam:PassRole"],
        resources: [
          registreTask.nodes.taskRole.arn,
          registreTask.nodes.executionRole.arn,
          ocrTask.nodes.taskRole.arn,
          ocrTask.nodes.executionRole.arn,
        ],
        conditions: [{ test: "StringEquals", variable: "iam:PassedToService", values: ["ecs-tasks.amazonaws.com"] }],
      },
    ],
  }).json,
});

const familyOf = (task: sst.aws.Task) => task.nodes.taskDefinition.apply((definition) => definition.family);

/**
 * The dispatch function's ECS secrets, named as parseEcsConfig reads them.
 * `sst deploy` prints them and writes them to .sst/outputs.json; deploy.md
 * turns that file into `supabase secrets set`. AWS_ACCESS_KEY_ID and
 * AWS_SECRET_ACCESS_KEY come from `aws iam create-access-key` instead.
 * Each family's capacity provider (runner-placement.ts) is one of the two
 * the cluster registers.
 */
export const dispatchSecrets = {
  AWS_REGION: aws.getRegionOutput().region,
  ECS_CLUSTER: clusterArn,
  ECS_TASK_DEFINITION_REGISTRE: familyOf(registreTask),
  ECS_TASK_DEFINITION_OCR: familyOf(ocrTask),
  ECS_CONTAINER_NAME_REGISTRE: RUNNER_CONTAINER_NAMES.registre,
  ECS_CONTAINER_NAME_OCR: RUNNER_CONTAINER_NAMES.ocr,
  // The Vpc component gives its subnet ids as outputs inside an output: resolve both levels.
  ECS_SUBNETS: runnerSubnets.apply((ids) => $resolve(ids)).apply((ids) => ids.join(",")),
  ECS_SECURITY_GROUPS: runnerSecurityGroup.id,
  ECS_ASSIGN_PUBLIC_IP: runnerAssignPublicIp,
  ECS_CAPACITY_PROVIDER_REGISTRE: RUNNER_CAPACITY_PROVIDERS.registre,
  ECS_CAPACITY_PROVIDER_OCR: RUNNER_CAPACITY_PROVIDERS.ocr,
  // Spot refusing OCR this long makes dispatch start it on FARGATE (spot-fallback.ts).
  ECS_SPOT_FALLBACK_SECONDS: String(RUNNER_SPOT_FALLBACK_SECONDS),
};
