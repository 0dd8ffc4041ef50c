/**
 * npm run deploy:secrets: one command for a stage's secrets, through the
 * supabase and sst CLIs, with values passed in files readable only by the
 * owner (never on a command line, where `ps` would show them).
 *
 *   npm run deploy:secrets -- --stage prod --runners     before `sst deploy`
 *   npm run deploy:secrets -- --stage prod               after it
 *
 * The plan (names, sources, values) is deploy-secrets-plan.ts.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { errorMessage } from "../supabase/functions/_shared/error-message.ts";
import {
  describeSource,
  envFileText,
  missingRunnerInputs,
  planSecrets,
  SecretsPlanError,
  vaultSql,
  type PlannedSecret,
  type SecretsPlan,
} from "./deploy-secrets-plan.ts";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

const HELP = `Usage: npm run deploy:secrets -- --stage dev|staging|prod [--project-ref REF]
                              [--runners] [--outputs FILE] [--dry-run]

Sets a stage's secrets through the supabase and sst CLIs. Values come from
the stage's SST outputs and from your shell; every value is handed over in a
temporary file readable only by you, never on a command line.

Without --runners (after \`npx sst deploy --stage <stage>\`):
  - the dispatch function's secrets: \`supabase secrets set --env-file\`
    (the ECS settings from the SST outputs, ENVIRONMENT=<stage>, the capacity
    budgets as the deploy sized the tasks, and from your shell:
    DISPATCH_SECRET, UPSTASH_REDIS_REST_URL, UPSTASH_REDIS_REST_TOKEN,
    DISPATCH_AWS_ACCESS_KEY_ID, DISPATCH_AWS_SECRET_ACCESS_KEY, and when set
    DISPATCH_WEIGHTS, GEMINI_TPM_PER_INDEX_TASK, GEMINI_TPM_PER_ACTE_TASK,
    REDIS_KEY_PREFIX, ECS_CAPACITY_PROVIDER*, ECS_SPOT_FALLBACK_SECONDS,
    DISPATCH_DATABASE_URL);
  - the Vault secrets functions_url and dispatch_secret:
    \`supabase db query --remote=<ref>\`.
With --runners (before \`npx sst deploy\`): the runners' SST secrets,
  \`sst secret load --stage <stage>\`, from RUNNER_DATABASE_URL,
  RUNNER_DATABASE_ROOT_CERT,
  UPSTASH_REDIS_REST_URL, UPSTASH_REDIS_REST_TOKEN, GEMINI_API_KEY,
  SUPABASE_PUBLISHABLE_KEY, RUNNER_STORAGE_EMAIL_REGISTRE/_OCR and
  RUNNER_STORAGE_PASSWORD_REGISTRE/_OCR (npm run storage-users), and
  SUPABASE_URL (default https://<ref>.supabase.co).

  --stage        the SST stage, also the function's ENVIRONMENT
  --project-ref  the Supabase project ref (default: $SUPABASE_PROJECT_REF)
  --runners      set the runners' SST secrets instead
  --outputs      the stage's SST outputs (default .sst/outputs.json, which
                 \`sst deploy\` writes; its Stage must equal --stage)
  --dry-run      print the exact commands and every secret's name and source,
                 and no value; still refuses when something is missing
  --help         this text

Exit status: 0 done, 1 a CLI failed, 2 bad arguments or missing inputs.
`;

interface Args {
  stage: string;
  projectRef: string;
  runners: boolean;
  outputs: string;
  dryRun: boolean;
}

function parse(argv: readonly string[], env: NodeJS.ProcessEnv): Args | "help" {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      stage: { type: "string" },
      "project-ref": { type: "string" },
      runners: { type: "boolean", default: false },
      outputs: { type: "string", default: join(root, ".sst", "outputs.json") },
      "dry-run": { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) return "help";
  if (values.stage === undefined) throw new SecretsPlanError("--stage is required");
  const projectRef = values["project-ref"] ?? env.SUPABASE_PROJECT_REF?.trim();
  if (projectRef === undefined || projectRef === "") throw new SecretsPlanError("--project-ref (or $SUPABASE_PROJECT_REF) is required");
  return { stage: values.stage, projectRef, runners: values.runners, outputs: resolve(values.outputs), dryRun: values["dry-run"] };
}

function readOutputs(file: string): Record<string, unknown> {
  if (!existsSync(file)) throw new SecretsPlanError(`no SST outputs at ${file}: run \`npx sst deploy --stage <stage>\` first (or pass --outputs)`);
  const parsed: unknown = JSON.parse(readFileSync(file, "utf8"));
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new SecretsPlanError(`${file} is not a JSON object of outputs`);
  return parsed as Record<string, unknown>;
}

/** One CLI call: the command as printed (file paths as placeholders) and what runs. */
interface Step {
  readonly title: string;
  readonly shown: string;
  readonly command: readonly string[];
  readonly secrets: readonly PlannedSecret[];
  /** The file the values go into, written just before the command runs. */
  readonly file: { readonly path: string; readonly text: () => string };
}

function steps(plan: SecretsPlan, runners: boolean, workDir: string): Step[] {
  if (runners) {
    const path = join(workDir, "runner-secrets.env");
    return [
      {
        title: `the runners' SST secrets of stage ${plan.stage} (infra/runner-secrets.ts), read by the task definitions from SSM`,
        shown: `npx sst secret load <temporary file, mode 600> --stage ${plan.stage}`,
        command: ["npx", "--no-install", "sst", "secret", "load", path, "--stage", plan.stage],
        secrets: plan.runnerSecrets,
        file: { path, text: () => envFileText(plan.runnerSecrets) },
      },
    ];
  }
  const envPath = join(workDir, "dispatch.env");
  const sqlPath = join(workDir, "vault.sql");
  return [
    {
      title: `the dispatch function's secrets in project ${plan.projectRef}`,
      // Supabase CLI 3 names the target with --remote=<ref> (`supabase secrets set --help`: "Target another project").
      shown: `npx supabase secrets set --remote=${plan.projectRef} --env-file <temporary file, mode 600>`,
      command: ["npx", "--no-install", "supabase", "secrets", "set", `--remote=${plan.projectRef}`, "--env-file", envPath],
      secrets: plan.functionSecrets,
      file: { path: envPath, text: () => envFileText(plan.functionSecrets) },
    },
    {
      title: `the Vault secrets of project ${plan.projectRef} (vault.create_secret, or vault.update_secret when they exist)`,
      // CLI 3's db query is local by default; --remote=<ref> targets the project (`supabase db query --help`).
      shown: `npx supabase db query --remote=${plan.projectRef} --file <temporary file, mode 600>`,
      command: ["npx", "--no-install", "supabase", "db", "query", `--remote=${plan.projectRef}`, "--file", sqlPath],
      secrets: plan.vaultSecrets,
      file: { path: sqlPath, text: () => vaultSql(plan.vaultSecrets) },
    },
  ];
}

function printSteps(list: readonly Step[], write: (text: string) => void): void {
  list.forEach((step, index) => {
    write(`# ${index + 1}. ${step.title}\n${step.shown}\n`);
    const width = Math.max(...step.secrets.map((secret) => secret.name.length));
    for (const secret of step.secrets) write(`#    ${secret.name.padEnd(width)}  <- ${describeSource(secret)}\n`);
  });
}

export function main(argv: readonly string[], env: NodeJS.ProcessEnv, write: (text: string) => void, writeError: (text: string) => void): number {
  let args;
  let plan;
  try {
    args = parse(argv, env);
    if (args === "help") {
      write(HELP);
      return 0;
    }
    plan = planSecrets({ stage: args.stage, projectRef: args.projectRef, outputs: args.runners ? undefined : readOutputs(args.outputs), env });
  } catch (error) {
    writeError(`deploy:secrets: ${errorMessage(error)}\n${error instanceof SecretsPlanError ? "" : `\n${HELP}`}`);
    return 2;
  }
  const missing = args.runners ? missingRunnerInputs(plan) : plan.missing;
  if (missing.length > 0) {
    writeError(`deploy:secrets: refusing: missing ${missing.join(", ")}\n(export the shell variables, or run \`npx sst deploy --stage ${plan.stage}\` for the outputs; --help lists them)\n`);
    return 2;
  }
  const workDir = mkdtempSync(join(tmpdir(), "deploy-secrets-"));
  try {
    const list = steps(plan, args.runners, workDir);
    if (args.dryRun) {
      write(`# dry run for stage ${plan.stage}: the commands deploy:secrets would run; values are never printed\n`);
      printSteps(list, write);
      return 0;
    }
    for (const step of list) {
      write(`deploy:secrets: ${step.title}: ${step.secrets.map((secret) => secret.name).join(", ")}\n`);
      writeFileSync(step.file.path, step.file.text(), { mode: 0o600 });
      const result = spawnSync(step.command[0] ?? "npx", step.command.slice(1), { cwd: root, env, stdio: ["ignore", "inherit", "inherit"] });
      rmSync(step.file.path, { force: true });
      if (result.status !== 0) {
        writeError(`deploy:secrets: \`${step.shown}\` failed (exit ${result.status ?? result.signal}); nothing after it ran\n`);
        return 1;
      }
    }
    write(`deploy:secrets: done for stage ${plan.stage}\n`);
    return 0;
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = main(
    process.argv.slice(2),
    process.env,
    (text) => process.stdout.write(text),
    (text) => process.stderr.write(text),
  );
}
