/**
 * npm run infra:check: the AWS side checked offline, before anyone spends
 * money. Installs SST's platform into `.sst/` when missing (npm registry
 * only), type-checks sst.config.ts and infra/*.ts against it, evaluates
 * run() for a stage under Pulumi's runtime mocks and checks what it would
 * create: Fargate sizes against the ledger profiles, least privilege for the
 * dispatch user and the runner roles, each runner's secrets, the outputs
 * dispatch needs. Exits 1 when anything is off, naming it.
 */
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";
import { z } from "zod";
import { readCommandLine } from "./command-line.ts";
import { ENVIRONMENTS } from "../supabase/functions/_shared/environments.ts";
import { errorMessage } from "../supabase/functions/_shared/error-message.ts";
import { runInfraCheck, type InfraCheckReport } from "../infra/check/infra-check.ts";

const HELP = `Usage: npm run infra:check -- [--stage dev|staging|prod] [--json]

Checks the SST deployment offline: installs SST's platform in .sst/ (cached;
needs only the npm registry), type-checks sst.config.ts and infra/*.ts,
evaluates run() for the stage under Pulumi's mocks (no AWS, no credentials)
and checks task sizes, IAM policies, secrets and outputs.

The capacity variables of the shell (SERVER_MAX_CPU, REGISTRE_VCPU, …) size
the tasks exactly as they would for \`sst deploy\`.

  --stage   the stage to evaluate (default dev)
  --json    print one JSON object on the last line: tasks (family, cpu and
            memory in Fargate units, Dockerfile, environment and secret names),
            dispatchPolicyActions, outputs, images (Node version,
            ENTRYPOINT), suiteNode, databaseTls, spotFallback,
            runTaskGuards, problems, …
  --help    this text

Exit status: 0 when everything checks, 1 when a rule or a type check fails,
2 on bad arguments.
`;

const argsSchema = z.object({
  stage: z.enum(ENVIRONMENTS, { error: `must be one of ${ENVIRONMENTS.join(", ")}` }),
  json: z.boolean(),
  help: z.boolean(),
});

function readable(report: InfraCheckReport): string {
  const lines = [`stage ${report.stage} in ${report.region}: ${report.ok ? "OK" : "PROBLEMS"}`];
  for (const task of report.tasks) {
    lines.push(
      `  ${task.family}: ${task.cpu / 1024} vCPU / ${task.memory / 1024} GB (cpu ${task.cpu}, memory ${task.memory}), image ${task.dockerfile}`,
      `    environment: ${task.environment.join(" ")}`,
      `    secrets from SSM: ${task.secrets.join(" ")}`,
    );
  }
  lines.push(`  database TLS: root certificate from SSM for ${report.databaseTls.tasks.filter((task) => task.rootCert).map((task) => task.family).join(", ")}${report.databaseTls.shellUrlMode ? `; RUNNER_DATABASE_URL: ${report.databaseTls.shellUrlMode}` : ""}`);
  lines.push(`  RunTask: ${report.runTaskGuards.families.map((guard) => `${guard.family} at cpu ${guard.cpu.join("/")} memory ${guard.memory.join("/")} on ${guard.capacityProviders.join("|")}`).join("; ")}; ECS Exec ${report.runTaskGuards.denyEcsExec ? "denied" : "NOT denied"}`);
  for (const spot of report.spotFallback.families) lines.push(`  ${spot.family} on ${spot.provider}, falling back to ${spot.fallback} after ${spot.afterSeconds ?? "?"} s`);
  for (const image of report.images) lines.push(`  ${image.family} image: Node ${image.nodeVersion ?? "?"} (suite ${report.suiteNode ?? "?"}), ENTRYPOINT ${JSON.stringify(image.entrypoint ?? null)}`);
  lines.push(`  dispatch may: ${report.dispatchPolicyActions.join(", ")}`, `  outputs: ${report.outputs.join(" ")}`, `  SST secrets to set: ${report.sstSecrets.join(" ")}`);
  for (const error of report.typeErrors) lines.push(`  type error: ${error}`);
  for (const problem of report.problems) lines.push(`  problem: ${problem}`);
  return `${lines.join("\n")}\n`;
}

async function main(): Promise<number> {
  const commandLine = readCommandLine(
    {
      stage: { type: "string", default: "dev" },
      json: { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
    argsSchema,
    HELP,
  );
  if ("exitCode" in commandLine) return commandLine.exitCode;
  const args = commandLine.args;
  const started = Date.now();
  const report = await runInfraCheck({
    root: join(dirname(fileURLToPath(import.meta.url)), ".."),
    stage: args.stage,
    progress: (line) => process.stderr.write(`infra:check: ${line} (${((Date.now() - started) / 1000).toFixed(1)} s)\n`),
  });
  process.stdout.write(args.json ? `${JSON.stringify(report)}\n` : readable(report));
  return report.ok ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`infra:check failed: ${errorMessage(error)}\n`);
    process.exit(1);
  },
);
