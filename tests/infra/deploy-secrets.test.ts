import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { parseDispatchConfig } from "../../supabase/functions/_shared/dispatch-config.ts";
import { RUNNER_TASK_ENV } from "../../supabase/functions/_shared/ecs-client.ts";
import { capacityEnvironment } from "../../infra/capacity-environment.ts";
import { parseCapacityConfig } from "../../supabase/functions/_shared/capacity-config.ts";
import { RUNNER_SECRETS } from "../../infra/runner-secrets.ts";
import { NOT_SET_HERE, OPTIONAL_INPUTS, planSecrets, vaultSql, type SecretsPlan } from "../../scripts/deploy-secrets-plan.ts";
import { main } from "../../scripts/deploy-secrets.ts";

const root = join(import.meta.dirname, "..", "..");
const run = promisify(execFile);
const REF = "abcdefghijklmnopqrst";

/** Outputs as `sst deploy --stage prod` writes them to .sst/outputs.json. */
const OUTPUTS = {
  AWS_REGION: "ca-central-1",
  ECS_CLUSTER: "arn:aws:ecs:ca-central-1:123456789012:cluster/registre-extraction-prod-Cluster",
  ECS_TASK_DEFINITION_REGISTRE: "registre-extraction-prod-RegistreRunner",
  ECS_TASK_DEFINITION_OCR: "registre-extraction-prod-OcrRunner",
  ECS_CONTAINER_NAME_REGISTRE: "registre-runner",
  ECS_CONTAINER_NAME_OCR: "ocr-runner",
  ECS_SUBNETS: "subnet-0a1b2c3d4e5f60718,subnet-0a1b2c3d4e5f60719",
  ECS_SECURITY_GROUPS: "sg-0a1b2c3d4e5f60718",
  ECS_ASSIGN_PUBLIC_IP: "ENABLED",
  ECS_CAPACITY_PROVIDER_REGISTRE: "FARGATE",
  ECS_CAPACITY_PROVIDER_OCR: "FARGATE_SPOT",
  ECS_SPOT_FALLBACK_SECONDS: "300",
  DispatchIamUser: "DispatchUser-1234567",
  Stage: "prod",
};

/** Every input the operator exports, with values that must never be printed. */
const INPUTS = {
  DISPATCH_SECRET: "value-never-printed-dispatch-secret-0123456789abcdef",
  UPSTASH_REDIS_REST_URL: "https://value-never-printed-upstash.upstash.io",
  UPSTASH_REDIS_REST_TOKEN: "value-never-printed-upstash-token",
  DISPATCH_AWS_ACCESS_KEY_ID: "AKIAIOSFODNN7EXAMPLE",
  DISPATCH_AWS_SECRET_ACCESS_KEY: "value-never-printed-aws-secret",
  RUNNER_DATABASE_URL: "postgresql://runner.value-never-printed:pw@pooler.example:6543/postgres",
  RUNNER_DATABASE_ROOT_CERT: "-----BEGIN CERTIFICATE-----\nvalue-never-printed\n-----END CERTIFICATE-----",
  GEMINI_API_KEY: "value-never-printed-gemini-key",
  SUPABASE_PUBLISHABLE_KEY: "sb_publishable_value-never-printed",
  RUNNER_STORAGE_EMAIL_REGISTRE: "registre-runner@value-never-printed.invalid",
  RUNNER_STORAGE_PASSWORD_REGISTRE: "value-never-printed-registre-password",
  RUNNER_STORAGE_EMAIL_OCR: "ocr-runner@value-never-printed.invalid",
  RUNNER_STORAGE_PASSWORD_OCR: "value-never-printed-ocr-password",
  DISPATCH_WEIGHTS: "prod=5,staging=2,dev=1",
};

function outputsFile(outputs: Record<string, string>): string {
  const file = join(mkdtempSync(join(tmpdir(), "deploy-secrets-test-")), "outputs.json");
  writeFileSync(file, JSON.stringify(outputs));
  return file;
}

function callMain(argv: string[], env: NodeJS.ProcessEnv): { code: number; stdout: string; stderr: string } {
  let stdout = "";
  let stderr = "";
  const code = main(argv, env, (text) => (stdout += text), (text) => (stderr += text));
  return { code, stdout, stderr };
}

function plan(env: Record<string, string> = INPUTS): SecretsPlan {
  return planSecrets({ stage: "prod", projectRef: REF, outputs: OUTPUTS, env });
}

/** Upper-case keys of the configuration schemas: every variable the dispatch function can read. */
function variablesDispatchReads(): string[] {
  const files = ["dispatch-config.ts", "ecs-client.ts", "capacity-config.ts", "gemini-config.ts"];
  const names = new Set<string>();
  for (const file of files) {
    const text = readFileSync(join(root, "supabase", "functions", "_shared", file), "utf8");
    for (const match of text.matchAll(/^\s+([A-Z][A-Z0-9_]{2,}): /gm)) names.add(match[1] ?? "");
  }
  return [...names].sort();
}

describe("npm run deploy:secrets", () => {
  it("--dry-run prints the commands with every function and Vault secret named, and no value", () => {
    const { code, stdout } = callMain(["--stage", "prod", "--project-ref", REF, "--outputs", outputsFile(OUTPUTS), "--dry-run"], INPUTS);
    expect(code).toBe(0);
    expect(stdout).toContain(`npx supabase secrets set --remote=${REF} --env-file <temporary file, mode 600>`);
    expect(stdout).toContain(`npx supabase db query --remote=${REF} --file <temporary file, mode 600>`);
    for (const name of plan().functionSecrets.map((secret) => secret.name)) expect(stdout).toMatch(new RegExp(`^#\\s+${name}\\s+<- `, "m"));
    for (const name of ["SERVER_MAX_CPU", "UPSTASH_REDIS_REST_URL", "UPSTASH_REDIS_REST_TOKEN", "AWS_ACCESS_KEY_ID", "ECS_CLUSTER", "DISPATCH_WEIGHTS", "functions_url", "dispatch_secret"]) {
      expect(stdout).toContain(name);
    }
    for (const value of [...Object.values(INPUTS), OUTPUTS.ECS_CLUSTER, OUTPUTS.ECS_SUBNETS]) expect(stdout).not.toContain(value);
  });

  it("--dry-run --runners names every secret the runners read, GEMINI_API_KEY included, and no value", () => {
    const { code, stdout } = callMain(["--stage", "prod", "--project-ref", REF, "--runners", "--dry-run"], INPUTS);
    expect(code).toBe(0);
    expect(stdout).toContain("npx sst secret load <temporary file, mode 600> --stage prod");
    for (const entry of RUNNER_SECRETS) expect(stdout).toMatch(new RegExp(`^#\\s+${entry.secret}\\s+<- `, "m"));
    expect(stdout).toContain("$GEMINI_API_KEY");
    for (const input of ["$SUPABASE_PUBLISHABLE_KEY", "$RUNNER_STORAGE_EMAIL_REGISTRE", "$RUNNER_STORAGE_PASSWORD_REGISTRE", "$RUNNER_STORAGE_EMAIL_OCR", "$RUNNER_STORAGE_PASSWORD_OCR"]) expect(stdout).toContain(input);
    for (const value of Object.values(INPUTS)) expect(stdout).not.toContain(value);
  });

  it("sets everything the dispatch function needs: its configuration parses from the planned secrets alone", () => {
    const secrets = Object.fromEntries(plan().functionSecrets.map((secret) => [secret.name, secret.value]));
    // Supabase injects SUPABASE_DB_URL; nothing else may be missing.
    const config = parseDispatchConfig({ ...secrets, SUPABASE_DB_URL: "postgresql://postgres:pw@pooler.example:6543/postgres" });
    expect(config.environment).toBe("prod");
    expect(config.ecs.cluster).toBe(OUTPUTS.ECS_CLUSTER);
    expect(config.ecs.credentials.accessKeyId).toBe(INPUTS.DISPATCH_AWS_ACCESS_KEY_ID);
    expect(config.weights.prod).toBe(5);
    expect(config.ecs.familyPlacement).toEqual({ registre: { capacityProvider: "FARGATE" }, ocr: { capacityProvider: "FARGATE_SPOT" } });
    // The ledger counts what AWS bills, the same numbers the task definitions carry.
    expect(config.capacity.profiles.registre).toMatchObject({ vcpu: 4, ramGb: 8 });
    expect(config.capacity.profiles["acte-ocr"]).toMatchObject({ vcpu: 2, ramGb: 4 });
  });

  it("leaves no variable of the dispatch configuration unaccounted for", () => {
    const planned = new Set(plan().functionSecrets.map((secret) => secret.name));
    const uncapped = Object.keys(capacityEnvironment(parseCapacityConfig({ MAX_REGISTRE_TASKS: "1", MAX_INDEX_OCR_TASKS: "1", MAX_ACTE_OCR_TASKS: "1" })));
    const accounted = new Set<string>([...planned, ...OPTIONAL_INPUTS, ...NOT_SET_HERE, ...uncapped]);
    expect(variablesDispatchReads().filter((name) => !accounted.has(name))).toEqual([]);
  });

  it("gives the runners every variable they read, from their secrets, the task definition or dispatch", () => {
    const runnerConfig = readFileSync(join(root, "runners", "lifecycle", "runner-config.ts"), "utf8");
    const required = ["DATABASE_URL", "UPSTASH_REDIS_REST_URL", "UPSTASH_REDIS_REST_TOKEN"];
    for (const name of required) expect(runnerConfig).toContain(`${name}: z.`);
    const provided = new Set([...RUNNER_SECRETS.map((entry) => entry.variable), ...Object.values(RUNNER_TASK_ENV)]);
    for (const name of [...required, "SUPABASE_URL", "SUPABASE_PUBLISHABLE_KEY", "SUPABASE_RUNNER_EMAIL", "SUPABASE_RUNNER_PASSWORD", "GEMINI_API_KEY"]) expect(provided.has(name)).toBe(true);
  });

  it("lets the shell override an output's capacity provider", () => {
    const secrets = plan({ ...INPUTS, ECS_CAPACITY_PROVIDER_OCR: "FARGATE" }).functionSecrets.filter((secret) => secret.name === "ECS_CAPACITY_PROVIDER_OCR");
    expect(secrets).toEqual([{ name: "ECS_CAPACITY_PROVIDER_OCR", source: { kind: "input", name: "ECS_CAPACITY_PROVIDER_OCR" }, value: "FARGATE" }]);
  });

  it("refuses, naming them, when inputs or outputs are missing or the outputs are another stage's", () => {
    const noInputs = callMain(["--stage", "prod", "--project-ref", REF, "--outputs", outputsFile(OUTPUTS), "--dry-run"], {});
    expect(noInputs.code).toBe(2);
    expect(noInputs.stderr).toContain("refusing: missing $DISPATCH_SECRET, $UPSTASH_REDIS_REST_URL, $UPSTASH_REDIS_REST_TOKEN, $DISPATCH_AWS_ACCESS_KEY_ID, $DISPATCH_AWS_SECRET_ACCESS_KEY");
    expect(noInputs.stdout).toBe("");

    const { ECS_CLUSTER: _cluster, ...withoutCluster } = OUTPUTS;
    const noOutput = callMain(["--stage", "prod", "--project-ref", REF, "--outputs", outputsFile(withoutCluster)], INPUTS);
    expect(noOutput.code).toBe(2);
    expect(noOutput.stderr).toContain("missing SST output ECS_CLUSTER");

    const otherStage = callMain(["--stage", "staging", "--project-ref", REF, "--outputs", outputsFile(OUTPUTS)], INPUTS);
    expect(otherStage.code).toBe(2);
    expect(otherStage.stderr).toContain(`the SST outputs are those of stage "prod", not staging`);

    const noFile = callMain(["--stage", "prod", "--project-ref", REF, "--outputs", join(tmpdir(), "no-such-outputs.json")], INPUTS);
    expect(noFile.stderr).toContain("no SST outputs at");

    const { GEMINI_API_KEY: _gemini, ...withoutGemini } = INPUTS;
    const runners = callMain(["--stage", "prod", "--project-ref", REF, "--runners"], withoutGemini);
    expect(runners.code).toBe(2);
    expect(runners.stderr).toContain("missing $GEMINI_API_KEY");
  });

  it("writes Vault SQL that creates or updates each secret, whatever the value holds", () => {
    const sql = vaultSql([
      { name: "functions_url", source: { kind: "computed", description: "" }, value: `https://${REF}.supabase.co` },
      { name: "dispatch_secret", source: { kind: "input", name: "DISPATCH_SECRET" }, value: "it's $secret0$ tricky" },
    ]);
    expect(sql).toContain("select vault.update_secret(id, $secret1$it's $secret0$ tricky$secret1$) from vault.secrets where name = 'dispatch_secret';");
    expect(sql).toContain(
      "select vault.create_secret($secret1$https://abcdefghijklmnopqrst.supabase.co$secret1$, 'functions_url') where not exists (select 1 from vault.secrets where name = 'functions_url');",
    );
  });

  it("uses only subcommands and flags the pinned supabase and sst CLIs have", async () => {
    const env = { ...process.env, SST_SKIP_DEPENDENCY_CHECK: "1", SST_TELEMETRY_DISABLED: "1" };
    // `sst … --help` prints its usage and exits 1; what counts is the text.
    const help = async (args: string[]) => {
      const result = await run("npx", ["--no-install", ...args, "--help"], { cwd: root, env }).catch((error: { stdout?: string; stderr?: string }) => error);
      return `${result.stdout ?? ""}${result.stderr ?? ""}`;
    };
    const secretsSet = await help(["supabase", "secrets", "set"]);
    expect(secretsSet).toContain("--remote[=<ref|branch>]");
    expect(secretsSet).toContain("--env-file");
    const dbQuery = await help(["supabase", "db", "query"]);
    expect(dbQuery).toContain("--remote[=<ref|branch|url>]");
    expect(dbQuery).toContain("--file");
    const secretLoad = await help(["sst", "secret", "load"]);
    expect(secretLoad).toContain("Usage: sst secret load <file>");
    expect(secretLoad).toContain("--stage");
  }, 60_000);

  it("answers --help through npm run", async () => {
    const { stdout } = await run(process.execPath, ["--import", "tsx", "scripts/deploy-secrets.ts", "--help"], { cwd: root });
    expect(stdout).toContain("Usage: npm run deploy:secrets -- --stage dev|staging|prod");
    expect(stdout).toContain("--dry-run");
  });
});

describe("deploy:secrets and the runners' database URL", () => {
  const REF_OF_TEST = "abcdefghijklmnopqrst";
  it.each([
    ["an sslmode that falls back to plain text", { RUNNER_DATABASE_URL: "postgresql://runner.x:pw@aws-1-ca-central-1.pooler.supabase.com:6543/postgres?sslmode=prefer" }, /RUNNER_DATABASE_URL: DATABASE_URL has sslmode=prefer/],
    ["a loopback host", { RUNNER_DATABASE_URL: "postgresql://runner:pw@127.0.0.1:54322/postgres" }, /names 127\.0\.0\.1; a deployed runner needs the project's pooler host/],
    ["a root certificate that is not PEM", { RUNNER_DATABASE_ROOT_CERT: "not a certificate" }, /RUNNER_DATABASE_ROOT_CERT: DATABASE_SSL_ROOT_CERT must be a PEM certificate/],
  ])("refuses %s before anything reaches SSM", (_name, override, message) => {
    const { code, stderr } = callMain(["--stage", "prod", "--project-ref", REF_OF_TEST, "--runners", "--dry-run"], { ...INPUTS, ...override });
    expect(code).not.toBe(0);
    expect(stderr).toMatch(message);
    expect(stderr).not.toContain(":pw@");
  });
});
