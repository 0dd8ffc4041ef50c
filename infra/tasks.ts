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
import { fargateSizeCovering } from "./fargate-sizes.ts";
import { runnerSecretParameters } from "./secrets.ts";

/**
 * The budgets, read from the deploying shell by the parser dispatch uses:
 * export the capacity variables you gave `supabase secrets set` (unset ones
 * take the same defaults on both sides). A bad value stops the deploy.
 */
const capacity = parseCapacityConfig(process.env);

/**
 * Task sizes. Fargate runs only fixed CPU/memory pairs, so each task gets the
 * cheapest pair that covers its ledger profile (fargate-sizes.ts). With the
 * defaults of capacity-config.ts:
 *
 *   task       ledger counts, per task                 Fargate size
 *   registre   registre   3 vCPU / 1 GB                4 vCPU / 8 GB  (4 vCPU starts at 8 GB)
 *   ocr        index-ocr  1.5 vCPU / 0.75 GB           2 vCPU / 4 GB  (2 vCPU starts at 4 GB;
 *              acte-ocr   1 vCPU / 0.5 GB                              both OCR kinds share it)
 *
 * The ledger keeps counting the profile, not the Fargate size. The profile is
 * what the work was measured to need, and the ledger's budget
 * (SERVER_MAX_CPU / SERVER_MAX_RAM) limits how much work runs at once across
 * every environment, the same numbers whether runners are Fargate tasks or
 * processes on one server (the local stack). The rounding up is paid for but
 * not counted. To make the budget follow the AWS bill instead, set the
 * profile variables (REGISTRE_VCPU=4, REGISTRE_RAM_GB=8, …) for dispatch and
 * for this deploy alike, and raise SERVER_MAX_RAM to match.
 */
const registreSize = fargateSizeCovering(capacity.profiles.registre);
const ocrSize = fargateSizeCovering({
  vcpu: Math.max(capacity.profiles["index-ocr"].vcpu, capacity.profiles["acte-ocr"].vcpu),
  ramGb: Math.max(capacity.profiles["index-ocr"].ramGb, capacity.profiles["acte-ocr"].ramGb),
});

/** The container in each task definition that receives dispatch's per-task environment. */
export const RUNNER_CONTAINER_NAMES = {
  registre: "registre-runner",
  ocr: "ocr-runner",
} as const satisfies Record<RunnerFamily, string>;

/**
 * Plain settings every runner reads. REDIS_KEY_PREFIX must equal dispatch's
 * (the ledger lives under `<prefix>ledger`), so it is taken from the
 * deploying shell like the budgets.
 */
const runnerEnvironment = {
  ...capacityEnvironment(capacity),
  ...(process.env.REDIS_KEY_PREFIX ? { REDIS_KEY_PREFIX: process.env.REDIS_KEY_PREFIX } : {}),
};

const { GEMINI_API_KEY: geminiApiKeyParameter, ...sharedSecretParameters } = runnerSecretParameters;

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
  cpu: registreSize.cpu,
  memory: registreSize.memory,
  containers: [
    {
      name: RUNNER_CONTAINER_NAMES.registre,
      image: { context: ".", dockerfile: "runners/registre/Dockerfile" },
      environment: runnerEnvironment,
      ssm: sharedSecretParameters,
    },
  ],
  // `sst dev` would swap in a stub that runs the task on the developer's
  // machine; the local stack (`npm start`) already does that job.
  dev: false,
  transform: {
    taskDefinition: (args) => {
      args.containerDefinitions = $util.output(args.containerDefinitions).apply(withStopTimeout);
    },
  },
});

/** Rasterizes and OCRs documents for both index-ocr and acte-ocr; JOB_KIND tells them apart. */
export const ocrTask = new sst.aws.Task("OcrRunner", {
  cluster,
  architecture: "x86_64",
  cpu: ocrSize.cpu,
  memory: ocrSize.memory,
  containers: [
    {
      name: RUNNER_CONTAINER_NAMES.ocr,
      image: { context: ".", dockerfile: "runners/ocr/Dockerfile" },
      environment: runnerEnvironment,
      ssm: { ...sharedSecretParameters, GEMINI_API_KEY: geminiApiKeyParameter },
    },
  ],
  dev: false,
  transform: {
    taskDefinition: (args) => {
      args.containerDefinitions = $util.output(args.containerDefinitions).apply(withStopTimeout);
    },
  },
});
