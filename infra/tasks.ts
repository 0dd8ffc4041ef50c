/**
 * One `sst.aws.Task` per runner family: one image, one task definition.
 * Dispatch starts them with RunTask and sets JOB_KIND, ENVIRONMENT and
 * LEDGER_LEASE_ID per task (RUNNER_TASK_ENV in ecs-client.ts); everything
 * else a runner reads is in the task definition below.
 */
import { parseCapacityConfig } from "../supabase/functions/_shared/capacity-config.ts";
import type { RunnerFamily } from "../supabase/functions/_shared/ecs-client.ts";
import { capacityEnvironment } from "./capacity-environment.ts";
import { cluster } from "./cluster.ts";
import { billedCapacity, runnerFamilySizes } from "./runner-sizes.ts";
import { RUNNER_CONTAINER_NAMES } from "./runner-containers.ts";
import { runnerSecretsOf } from "./runner-secrets.ts";
import { runnerSecretParameters } from "./secrets.ts";

/**
 * The budgets, read from the deploying shell by the parser dispatch uses
 * (export the same capacity variables `deploy:secrets` gives the function;
 * unset ones take the same defaults on both sides), with every kind's
 * profile rounded up to its family's Fargate size (runner-sizes.ts: the
 * ledger counts what AWS bills). A bad value stops the deploy.
 */
const capacity = billedCapacity(parseCapacityConfig(process.env));
/** Each family's Fargate size; dispatch-access.ts allows RunTask only at these sizes. */
export const sizes = runnerFamilySizes(capacity);

/**
 * Plain settings every runner reads. REDIS_KEY_PREFIX must equal dispatch's
 * (the ledger lives under `<prefix>ledger`), so it is taken from the
 * deploying shell like the budgets.
 */
const runnerEnvironment = {
  ...capacityEnvironment(capacity),
  ...(process.env.REDIS_KEY_PREFIX ? { REDIS_KEY_PREFIX: process.env.REDIS_KEY_PREFIX } : {}),
};

/** SSM parameter ARNs of one family's secrets, keyed by the variable its runner reads. */
function secretParametersOf(family: RunnerFamily) {
  const parameters: Record<string, $util.Output<string>> = {};
  for (const { secret, variable } of runnerSecretsOf(family)) {
    const arn = runnerSecretParameters[secret];
    if (arn === undefined) throw new Error(`no SSM parameter for ${secret}`);
    parameters[variable] = arn;
  }
  return parameters;
}

/**
 * Least privilege for the roles SST creates per task:
 * - the task role (what the runner's own code may call in AWS) gets no
 *   policy at all: runners talk to Supabase, Upstash and Gemini, never to an
 *   AWS API (SST would grant the ssmmessages actions of ECS Exec, which
 *   dispatch never enables);
 * - the execution role (what ECS uses to start the container) keeps the
 *   managed AmazonECSTaskExecutionRolePolicy (pull from ECR, write logs) and
 *   may read only this family's SSM parameters, instead of SST's default
 *   `ssm:GetParameter*` and `secretsmanager:GetSecretValue` on everything:
 *   the registre task cannot read the Gemini key.
 */
function leastPrivilegeRoles(family: RunnerFamily) {
  const parameterArns = Object.values(secretParametersOf(family));
  return {
    taskRole: (args: aws.iam.RoleArgs): undefined => {
      args.inlinePolicies = [];
    },
    executionRole: (args: aws.iam.RoleArgs): undefined => {
      args.inlinePolicies = [
        {
          name: "inline",
          policy: aws.iam.getPolicyDocumentOutput({
            statements: [{ sid: "ReadOwnSecretParameters", actions: ["ssm:GetParameters"], resources: parameterArns }],
          }).json,
        },
      ];
    },
  };
}

/**
 * ECS waits 30 seconds between SIGTERM and SIGKILL unless the container says
 * otherwise, while a runner drains for up to SHUTDOWN_GRACE_SECONDS (100 by
 * default, 110 at most: runner-config.ts). 120 is Fargate's maximum and
 * matches Spot's two-minute notice. `sst.aws.Task` has no option for it, so
 * the task definition's container JSON is edited.
 */
const STOP_TIMEOUT_SECONDS = 120;

function withStopTimeout(containerDefinitions: string): string {
  const definitions: unknown = JSON.parse(containerDefinitions);
  if (!Array.isArray(definitions)) throw new Error("expected the task definition's containerDefinitions to be a JSON array");
  return JSON.stringify(definitions.map((definition: object) => ({ ...definition, stopTimeout: STOP_TIMEOUT_SECONDS })));
}

/** Playwright driving Debian's Chromium; fetches documents and stores the PDFs. */
export const registreTask = new sst.aws.Task("RegistreRunner", {
  cluster,
  architecture: "x86_64",
  cpu: sizes.registre.cpu,
  memory: sizes.registre.memory,
  containers: [
    {
      name: RUNNER_CONTAINER_NAMES.registre,
      image: { context: ".", dockerfile: "runners/registre/Dockerfile" },
      environment: runnerEnvironment,
      ssm: secretParametersOf("registre"),
    },
  ],
  // `sst dev` would swap in a stub that runs the task on the developer's
  // machine; the local stack (`npm start`) already does that job.
  dev: false,
  transform: {
    ...leastPrivilegeRoles("registre"),
    taskDefinition: (args) => {
      args.containerDefinitions = $util.output(args.containerDefinitions).apply(withStopTimeout);
    },
  },
});

/** Rasterizes and OCRs documents for both index-ocr and acte-ocr; JOB_KIND tells them apart. */
export const ocrTask = new sst.aws.Task("OcrRunner", {
  cluster,
  architecture: "x86_64",
  cpu: sizes.ocr.cpu,
  memory: sizes.ocr.memory,
  containers: [
    {
      name: RUNNER_CONTAINER_NAMES.ocr,
      image: { context: ".", dockerfile: "runners/ocr/Dockerfile" },
      environment: runnerEnvironment,
      ssm: secretParametersOf("ocr"),
    },
  ],
  dev: false,
  transform: {
    ...leastPrivilegeRoles("ocr"),
    taskDefinition: (args) => {
      args.containerDefinitions = $util.output(args.containerDefinitions).apply(withStopTimeout);
    },
  },
});
