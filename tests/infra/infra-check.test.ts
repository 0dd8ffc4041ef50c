import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { beforeAll, describe, expect, it } from "vitest";
import { parseCapacityConfig } from "../../supabase/functions/_shared/capacity-config.ts";
import { RUNNER_TASK_ENV } from "../../supabase/functions/_shared/ecs-client.ts";
import type { InfraCheckReport } from "../../infra/check/infra-check.ts";
import { checkInfra } from "../../infra/check/infra-rules.ts";
import { checkRunTaskGuards } from "../../infra/check/run-task-rules.ts";
import { checkSpotFallback } from "../../infra/check/spot-fallback-rules.ts";
import { summarizeInfra, type InfraSummary, type TaskSummary } from "../../infra/check/infra-summary.ts";
import { evaluateStageMocked } from "../../infra/check/mocked-evaluation.ts";
import { sstPlatformPaths } from "../../infra/check/sst-platform.ts";
import { RUNNER_SECRETS } from "../../infra/runner-secrets.ts";
import { runnerFamilySizes } from "../../infra/runner-sizes.ts";

const root = join(import.meta.dirname, "..", "..");
const run = promisify(execFile);

/** The test's environment without any capacity variable, so the defaults of capacity-config.ts apply. */
function defaultCapacityEnv(overrides: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!/^(SERVER_|REGISTRE_|INDEX_OCR_|ACTE_OCR_|MAX_|LEDGER_|GEMINI_|REDIS_KEY_PREFIX)/.test(name)) env[name] = value;
  }
  return { ...env, ...overrides };
}

function task(report: InfraSummary, family: "registre" | "ocr"): TaskSummary {
  const found = report.tasks.find((candidate) => candidate.runnerFamily === family);
  if (found === undefined) throw new Error(`no ${family} task in the report`);
  return found;
}

let report: InfraCheckReport;

beforeAll(async () => {
  // The command itself, as a user runs it: installs the platform on a fresh clone (cached in .sst/).
  const { stdout } = await run(process.execPath, ["--import", "tsx", "scripts/infra-check.ts", "--stage", "prod", "--json"], {
    cwd: root,
    env: defaultCapacityEnv(),
    maxBuffer: 16 * 1024 * 1024,
  });
  const lines = stdout.trim().split("\n");
  report = JSON.parse(lines[lines.length - 1] ?? "") as InfraCheckReport;
}, 300_000);

describe("npm run infra:check (sst.config.ts evaluated under Pulumi's mocks)", () => {
  it("type-checks the infrastructure against SST's platform and breaks no rule", () => {
    expect(report.typeErrors).toEqual([]);
    expect(report.problems).toEqual([]);
    expect(report.ok).toBe(true);
    expect(report.stage).toBe("prod");
    expect(report.region).toBe("ca-central-1");
  });

  it("creates one cluster offering both Fargate and Fargate Spot", () => {
    expect(report.cluster.arn).toMatch(/^arn:aws:ecs:ca-central-1:\d{12}:cluster\/registre-extraction-prod-/);
    expect(report.cluster.capacityProviders).toEqual(expect.arrayContaining(["FARGATE", "FARGATE_SPOT"]));
  });

  it("sizes each task from its ledger profiles, in Fargate units, and writes the billed profiles into both", () => {
    const registre = task(report, "registre");
    const ocr = task(report, "ocr");
    expect({ cpu: registre.cpu, memory: registre.memory }).toEqual({ cpu: 4096, memory: 8192 });
    expect({ cpu: ocr.cpu, memory: ocr.memory }).toEqual({ cpu: 2048, memory: 4096 });
    for (const summary of [registre, ocr]) {
      expect(summary.requiresCompatibilities).toContain("FARGATE");
      expect(summary.capacityValues).toMatchObject({ REGISTRE_VCPU: "4", REGISTRE_RAM_GB: "8", INDEX_OCR_VCPU: "2", INDEX_OCR_RAM_GB: "4", ACTE_OCR_VCPU: "2", ACTE_OCR_RAM_GB: "4" });
    }
  });

  it("builds each image from its runner's Dockerfile with the repository as context, for x86-64", () => {
    expect(task(report, "registre")).toMatchObject({ dockerfile: "runners/registre/Dockerfile", imageContext: ".", container: "registre-runner", stopTimeout: 120 });
    expect(task(report, "ocr")).toMatchObject({ dockerfile: "runners/ocr/Dockerfile", imageContext: ".", container: "ocr-runner", stopTimeout: 120 });
    for (const summary of report.tasks) expect(summary.imagePlatforms).toEqual(["linux/amd64"]);
  });

  it("gives each family exactly its secrets from SSM, its own Storage user and never the service-role key", () => {
    expect(task(report, "registre").secrets).toEqual([
      "DATABASE_SSL_ROOT_CERT",
      "DATABASE_URL",
      "SUPABASE_PUBLISHABLE_KEY",
      "SUPABASE_RUNNER_EMAIL",
      "SUPABASE_RUNNER_PASSWORD",
      "SUPABASE_URL",
      "UPSTASH_REDIS_REST_TOKEN",
      "UPSTASH_REDIS_REST_URL",
    ]);
    expect(task(report, "ocr").secrets).toEqual([
      "DATABASE_SSL_ROOT_CERT",
      "DATABASE_URL",
      "GEMINI_API_KEY",
      "SUPABASE_PUBLISHABLE_KEY",
      "SUPABASE_RUNNER_EMAIL",
      "SUPABASE_RUNNER_PASSWORD",
      "SUPABASE_URL",
      "UPSTASH_REDIS_REST_TOKEN",
      "UPSTASH_REDIS_REST_URL",
    ]);
    // Each family's own Auth user: different SSM parameters behind the same variable.
    expect(task(report, "registre").secretParameters.SUPABASE_RUNNER_PASSWORD).toMatch(/\/registre\/SUPABASE_RUNNER_PASSWORD$/);
    expect(task(report, "ocr").secretParameters.SUPABASE_RUNNER_PASSWORD).toMatch(/\/ocr\/SUPABASE_RUNNER_PASSWORD$/);
    for (const summary of report.tasks) {
      expect(summary.environment).not.toContain("SUPABASE_SERVICE_ROLE_KEY");
      expect(summary.environment.filter((name) => RUNNER_SECRETS.some((entry) => entry.variable === name))).toEqual([]);
      // Dispatch sets these per task in RunTask's overrides.
      for (const name of Object.values(RUNNER_TASK_ENV)) expect(summary.environment).not.toContain(name);
      for (const arn of Object.values(summary.secretParameters)) expect(arn).toMatch(/^arn:aws:ssm:ca-central-1:\d{12}:parameter\/registre-extraction\/prod\//);
    }
    expect(report.sstSecrets).toEqual([
      "GeminiApiKey",
      "OcrStorageEmail",
      "OcrStoragePassword",
      "RegistreStorageEmail",
      "RegistreStoragePassword",
      "RunnerDatabaseRootCert",
      "RunnerDatabaseUrl",
      "SupabasePublishableKey",
      "SupabaseUrl",
      "UpstashRedisRestToken",
      "UpstashRedisRestUrl",
    ]);
  });

  it("lets the dispatch user run this stage's task definitions, watch and stop this cluster's tasks and pass the runners' roles, nothing else", () => {
    expect(report.dispatchPolicyActions).toEqual(["ecs:DescribeTasks", "ecs:RunTask", "ecs:StopTask", "iam:PassRole"]);
    const bySid = Object.fromEntries(report.dispatchPolicy.map((statement) => [statement.sid, statement]));
    const clusterCondition = { ArnEquals: { "ecs:cluster": [report.cluster.arn] } };
    // RunTask: one statement per family, at its own size, on Fargate or Spot, in this cluster.
    for (const [sid, family] of [["StartRegistreRunnerTasks", "registre"], ["StartOcrRunnerTasks", "ocr"]] as const) {
      const summary = task(report, family);
      expect(bySid[sid]).toEqual({
        sid,
        effect: "Allow",
        actions: ["ecs:RunTask"],
        resources: [`${summary.arnWithoutRevision}:*`],
        conditions: {
          ...clusterCondition,
          "ForAllValues:StringEquals": { "ecs:capacity-provider": ["FARGATE", "FARGATE_SPOT"] },
          NumericEqualsIfExists: { "ecs:task-cpu": [String(summary.cpu)], "ecs:task-memory": [String(summary.memory)] },
        },
      });
    }
    expect(bySid.NeverEcsExec).toEqual({
      sid: "NeverEcsExec",
      effect: "Deny",
      actions: ["ecs:RunTask"],
      resources: ["*"],
      conditions: { StringEquals: { "ecs:enable-execute-command": ["true"] } },
    });
    expect(report.runTaskGuards.denyEcsExec).toBe(true);
    expect(bySid.WatchAndStopRunnerTasks).toEqual({
      sid: "WatchAndStopRunnerTasks",
      effect: "Allow",
      actions: ["ecs:DescribeTasks", "ecs:StopTask"],
      resources: [`${report.cluster.arn.replace(":cluster/", ":task/")}/*`],
      conditions: clusterCondition,
    });
    expect(bySid.HandRunnerRolesToEcs?.actions).toEqual(["iam:PassRole"]);
    expect([...(bySid.HandRunnerRolesToEcs?.resources ?? [])].sort()).toEqual(report.tasks.flatMap((summary) => [summary.taskRole.arn, summary.executionRole.arn]).sort());
    expect(bySid.HandRunnerRolesToEcs?.conditions).toEqual({ StringEquals: { "iam:PassedToService": ["ecs-tasks.amazonaws.com"] } });
    expect(report.dispatchPolicy).toHaveLength(5);
  });

  it("gives the runners' task roles nothing and lets each execution role read only its own family's parameters", () => {
    for (const summary of report.tasks) {
      expect(summary.taskRole).toMatchObject({ managedPolicies: [], statements: [] });
      expect(summary.executionRole.managedPolicies).toEqual(["arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"]);
      expect(summary.executionRole.statements).toEqual([
        { sid: "ReadOwnSecretParameters", effect: "Allow", actions: ["ssm:GetParameters"], resources: Object.values(summary.secretParameters), conditions: {} },
      ]);
    }
    expect(task(report, "registre").executionRole.statements[0]?.resources.some((arn) => arn.endsWith("/GEMINI_API_KEY"))).toBe(false);
  });

  it("outputs what dispatch's ECS configuration reads, and the stage", () => {
    expect(report.outputs).toEqual([
      "AWS_REGION",
      "DispatchIamUser",
      "ECS_ASSIGN_PUBLIC_IP",
      "ECS_CAPACITY_PROVIDER_OCR",
      "ECS_CAPACITY_PROVIDER_REGISTRE",
      "ECS_CLUSTER",
      "ECS_CONTAINER_NAME_OCR",
      "ECS_CONTAINER_NAME_REGISTRE",
      "ECS_SECURITY_GROUPS",
      "ECS_SPOT_FALLBACK_SECONDS",
      "ECS_SUBNETS",
      "ECS_TASK_DEFINITION_OCR",
      "ECS_TASK_DEFINITION_REGISTRE",
      "Stage",
    ]);
    expect(report.outputValues.ECS_SUBNETS).toMatch(/^subnet-[0-9a-f]+,subnet-[0-9a-f]+$/);
    expect(report.outputValues.ECS_TASK_DEFINITION_REGISTRE).toBe(task(report, "registre").family);
    // OCR on Spot, registre on demand.
    expect(report.outputValues).toMatchObject({ ECS_CAPACITY_PROVIDER_OCR: "FARGATE_SPOT", ECS_CAPACITY_PROVIDER_REGISTRE: "FARGATE" });
  });

  it("reports each image on the suite's pinned Node and started by ENTRYPOINT", () => {
    const pinned = (JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { devDependencies: Record<string, string> }).devDependencies["node"];
    expect(report.suiteNode).toBe(pinned);
    expect(report.images.map((image) => [image.family, image.nodeVersion, image.entrypoint?.at(-1), image.hasCmd])).toEqual([
      ["registre", pinned, "runners/registre/main.ts", false],
      ["ocr", pinned, "runners/ocr/main.ts", false],
    ]);
  });

  it("gives every runner the project's root certificate with its database URL, so the pooler connection is verified TLS", () => {
    expect(report.databaseTls.tasks).toEqual([
      { family: "registre", url: true, rootCert: true },
      { family: "ocr", url: true, rootCert: true },
    ]);
  });

  it("puts OCR on Fargate Spot with an on-demand fallback after the configured wait", () => {
    expect(report.spotFallback.families).toEqual([{ family: "ocr", provider: "FARGATE_SPOT", fallback: "FARGATE", afterSeconds: 300 }]);
    expect(report.outputValues.ECS_SPOT_FALLBACK_SECONDS).toBe("300");
  });

  it("leaves .dockerignore keeping .sst out of the image context, so SST does not rewrite it", () => {
    expect(readFileSync(join(root, ".dockerignore"), "utf8").split("\n")).toContain(".sst");
    expect(existsSync(join(root, ".sst", "platform", "version"))).toBe(true);
  });
});

describe("infra:check's command line", () => {
  it("answers --help and refuses an unknown stage", async () => {
    const help = await run(process.execPath, ["--import", "tsx", "scripts/infra-check.ts", "--help"], { cwd: root });
    expect(help.stdout).toContain("Usage: npm run infra:check -- [--stage dev|staging|prod] [--json]");
    const refused = await run(process.execPath, ["--import", "tsx", "scripts/infra-check.ts", "--stage", "qa"], { cwd: root }).catch((error: { code: number; stderr: string }) => error);
    expect(refused).toMatchObject({ code: 2 });
    expect((refused as { stderr: string }).stderr).toContain("--stage must be one of dev, staging, prod");
  }, 60_000);
});

describe("the rules infra:check applies", () => {
  /** The summary with its read-only marks removed, so a test can break one thing in a copy. */
  type Mutable<T> = { -readonly [K in keyof T]: T[K] extends object ? Mutable<T[K]> : T[K] };

  /** A copy of the clean report with one thing broken. */
  function broken(change: (summary: Mutable<InfraSummary>) => void): string[] {
    const copy = structuredClone(report) as Mutable<InfraSummary>;
    change(copy);
    return checkInfra(copy, { root, env: defaultCapacityEnv() });
  }

  it.each<[string, (summary: Mutable<InfraSummary>) => void, RegExp]>([
    ["a wildcard action", (s) => s.dispatchPolicy[0]?.actions.push("ecs:*"), /dispatch: may .*ecs:\*/],
    ["RunTask on any task definition", (s) => s.dispatchPolicy[0]?.resources.splice(0, 1, "*"), /every resource/],
    ["RunTask of one family missing", (s) => s.dispatchPolicy.splice(1, 1), /exactly this stage's task definitions/],
    ["StopTask outside the cluster", (s) => s.dispatchPolicy[3]?.resources.push("arn:aws:ecs:ca-central-1:123456789012:task/other/*"), /outside this cluster/],
    ["PassRole on another role", (s) => s.dispatchPolicy[4]?.resources.push("arn:aws:iam::123456789012:role/admin"), /PassRole on/],
    ["RunTask without the cluster condition", (s) => s.dispatchPolicy[0] && (s.dispatchPolicy[0].conditions = {}), /not limited to this stage's cluster/],
    ["a task role with a policy", (s) => s.tasks[0]?.taskRole.statements.push({ effect: "Allow", actions: ["s3:GetObject"], resources: ["*"], conditions: {} }), /task role grants s3:GetObject/],
    ["the Gemini key in the registre task", (s) => s.tasks.find((t) => t.runnerFamily === "registre")?.secrets.push("GEMINI_API_KEY"), /registre: receives secrets/],
    ["the service-role key", (s) => s.tasks[0]?.secrets.push("SUPABASE_SERVICE_ROLE_KEY"), /SUPABASE_SERVICE_ROLE_KEY/],
    ["a secret as plain environment", (s) => s.tasks[0]?.environment.push("DATABASE_URL"), /plain environment/],
    ["a task smaller than its profile", (s) => s.tasks.find((t) => t.runnerFamily === "registre") && Object.assign(s.tasks.find((t) => t.runnerFamily === "registre") ?? {}, { cpu: 2048, memory: 4096 }), /registre: task is 2048 CPU units/],
    ["a size Fargate does not run", (s) => s.tasks[0] && (s.tasks[0].memory = 5000), /not a Fargate size/],
    ["a ledger that counts less than the task", (s) => s.tasks[0] && (s.tasks[0].capacityValues.REGISTRE_VCPU = "3"), /deployed ledger counts 4/],
    ["an image from outside the repository", (s) => s.tasks[0] && (s.tasks[0].dockerfile = "../elsewhere/Dockerfile"), /not in the repository/],
    ["subnets that are not ids", (s) => (s.outputValues.ECS_SUBNETS = "Calling [toString] on an [Output<T>]"), /ECS_SUBNETS holds/],
    ["no Spot on the cluster", (s) => (s.cluster.capacityProviders = ["FARGATE"]), /FARGATE_SPOT/],
  ])("reports %s", (_name, change, message) => {
    const problems = broken(change);
    expect(problems.join("\n")).toMatch(message);
  });
});

describe("the RunTask guard rules", () => {
  it.each<[string, (summary: InfraSummary) => void, RegExp]>([
    ["any cpu", (s) => s.dispatchPolicy[0] && delete (s.dispatchPolicy[0].conditions as Record<string, unknown>)["NumericEqualsIfExists"], /for cpu of any size/],
    ["an EC2 capacity provider", (s) => s.dispatchPolicy[1]?.conditions["ForAllValues:StringEquals"]?.["ecs:capacity-provider"]?.push("my-ec2-asg"), /does not limit RunTask to FARGATE and FARGATE_SPOT/],
    ["ECS Exec allowed", (s) => s.dispatchPolicy.splice(2, 1), /no Deny of ecs:RunTask with ecs:enable-execute-command/],
  ])("reports %s", (_name, change, message) => {
    const copy = structuredClone(report) as InfraSummary;
    change(copy);
    const problems: string[] = [];
    checkRunTaskGuards(copy, problems);
    expect(problems.join("\n")).toMatch(message);
  });
});

describe("the Spot fallback rule", () => {
  it.each<[string, (summary: InfraSummary & { outputValues: Record<string, string> }) => void, RegExp]>([
    ["no fallback wait", (s) => delete s.outputValues.ECS_SPOT_FALLBACK_SECONDS, /ECS_SPOT_FALLBACK_SECONDS is undefined/],
    ["a wait of zero", (s) => (s.outputValues.ECS_SPOT_FALLBACK_SECONDS = "0"), /not a positive whole number/],
    ["no FARGATE on the cluster", (s) => (s.cluster.capacityProviders.splice(0, s.cluster.capacityProviders.length, "FARGATE_SPOT")), /lacks FARGATE/],
    [
      "a RunTask policy limited to Spot",
      (s) => s.dispatchPolicy[0] && Object.assign(s.dispatchPolicy[0].conditions, { StringEquals: { "ecs:capacity-provider": ["FARGATE_SPOT"] } }),
      /allows only FARGATE_SPOT/,
    ],
  ])("reports %s", (_name, change, message) => {
    const copy = structuredClone(report) as InfraSummary & { outputValues: Record<string, string> };
    change(copy);
    const problems: string[] = [];
    checkSpotFallback(copy, problems);
    expect(problems.join("\n")).toMatch(message);
  });
});

describe("one size truth", () => {
  it("follows the ledger profiles of the deploying shell: bigger OCR profiles make a bigger OCR task, counted as billed", async () => {
    const env = defaultCapacityEnv({ INDEX_OCR_VCPU: "3", INDEX_OCR_RAM_GB: "9", REGISTRE_VCPU: "1", REGISTRE_RAM_GB: "2" });
    const summary = summarizeInfra(await evaluateStageMocked(sstPlatformPaths(root), "staging", env), root);
    expect(checkInfra(summary, { root, env })).toEqual([]);
    const sizes = runnerFamilySizes(parseCapacityConfig(env));
    expect(sizes.ocr).toMatchObject({ cpu: "4 vCPU", memory: "9 GB" });
    expect(task(summary, "ocr")).toMatchObject({ cpu: 4096, memory: 9216 });
    expect(task(summary, "registre")).toMatchObject({ cpu: 1024, memory: 2048 });
    expect(task(summary, "registre").capacityValues).toMatchObject({ REGISTRE_VCPU: "1", REGISTRE_RAM_GB: "2", ACTE_OCR_VCPU: "4", ACTE_OCR_RAM_GB: "9" });
  }, 120_000);
});
