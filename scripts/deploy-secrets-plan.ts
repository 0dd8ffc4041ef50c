/**
 * What `npm run deploy:secrets` sets, and from where: pure, so the command
 * (deploy-secrets.ts) and its tests share one plan. Every value comes from
 * the stage's SST outputs, from the operator's shell, or is computed (the
 * stage's name, the billed capacity of infra/runner-sizes.ts); the plan
 * keeps values apart from names so a dry run can print every name and no
 * value.
 *
 * Two phases:
 * - `dispatch` (after `sst deploy`): the dispatch function's secrets
 *   (`supabase secrets set`) and the two Vault secrets the database's
 *   hints and cron tick read (`functions_url`, `dispatch_secret`);
 * - `runners` (before `sst deploy`): the SST secrets the runner task
 *   definitions read from SSM (infra/runner-secrets.ts).
 */
import { parseCapacityConfig } from "../supabase/functions/_shared/capacity-config.ts";
import { ENVIRONMENTS, type Environment } from "../supabase/functions/_shared/environments.ts";
import { capacityEnvironment } from "../infra/capacity-environment.ts";
import { RUNNER_SECRETS } from "../infra/runner-secrets.ts";
import { billedCapacity } from "../infra/runner-sizes.ts";
import { setValues } from "../supabase/functions/_shared/env-values.ts";
import { DatabaseTlsConfigError, databaseHost, isLoopbackHost, parseDatabaseTls } from "../runners/lifecycle/database-tls.ts";

/** Where one secret's value comes from, in words a dry run prints. */
export type SecretSource =
  | { readonly kind: "output"; readonly name: string }
  | { readonly kind: "input"; readonly name: string }
  | { readonly kind: "computed"; readonly description: string };

export interface PlannedSecret {
  readonly name: string;
  readonly source: SecretSource;
  /** Undefined when the source is missing (then the plan lists it in `missing`). */
  readonly value: string | undefined;
}

export interface SecretsPlan {
  readonly stage: Environment;
  readonly projectRef: string;
  /** Function secrets (`supabase secrets set --env-file`). */
  readonly functionSecrets: PlannedSecret[];
  /** Vault secrets (`vault.create_secret` / `vault.update_secret`). */
  readonly vaultSecrets: PlannedSecret[];
  /** SST secrets of the runners (`sst secret load`). */
  readonly runnerSecrets: PlannedSecret[];
  /** Every SST output or shell variable that is needed and absent, by name. */
  readonly missing: string[];
}

/** The SST outputs that become function secrets under the same name (parseEcsConfig reads them). */
export const OUTPUT_SECRETS = [
  "AWS_REGION",
  "ECS_CLUSTER",
  "ECS_TASK_DEFINITION_REGISTRE",
  "ECS_TASK_DEFINITION_OCR",
  "ECS_CONTAINER_NAME_REGISTRE",
  "ECS_CONTAINER_NAME_OCR",
  "ECS_SUBNETS",
  "ECS_SECURITY_GROUPS",
  "ECS_ASSIGN_PUBLIC_IP",
  "ECS_CAPACITY_PROVIDER_REGISTRE",
  "ECS_CAPACITY_PROVIDER_OCR",
  "ECS_SPOT_FALLBACK_SECONDS",
] as const;

/**
 * Function secrets read from the shell. The AWS key is the dispatch user's
 * (`aws iam create-access-key`), read as DISPATCH_AWS_* because the shell's
 * own AWS_* are the deployer's credentials.
 */
export const REQUIRED_INPUTS: readonly { secret: string; input: string }[] = [
  { secret: "DISPATCH_SECRET", input: "DISPATCH_SECRET" },
  { secret: "UPSTASH_REDIS_REST_URL", input: "UPSTASH_REDIS_REST_URL" },
  { secret: "UPSTASH_REDIS_REST_TOKEN", input: "UPSTASH_REDIS_REST_TOKEN" },
  { secret: "AWS_ACCESS_KEY_ID", input: "DISPATCH_AWS_ACCESS_KEY_ID" },
  { secret: "AWS_SECRET_ACCESS_KEY", input: "DISPATCH_AWS_SECRET_ACCESS_KEY" },
];

/**
 * Function settings passed on only when the shell sets them; dispatch has
 * defaults for each. One that is also an output (the capacity providers)
 * replaces the output's value.
 */
export const OPTIONAL_INPUTS = [
  "DISPATCH_WEIGHTS",
  "GEMINI_TPM_PER_INDEX_TASK",
  "GEMINI_TPM_PER_ACTE_TASK",
  "REDIS_KEY_PREFIX",
  "ECS_CAPACITY_PROVIDER",
  "ECS_CAPACITY_PROVIDER_REGISTRE",
  "ECS_CAPACITY_PROVIDER_OCR",
  "ECS_SPOT_FALLBACK_SECONDS",
  // The dispatcher role's login (README, Security): without it dispatch uses the injected SUPABASE_DB_URL.
  "DISPATCH_DATABASE_URL",
  // Documents per registre task, when the runners' REGISTRE_CONTEXTS is not the default.
  "REGISTRE_CONTEXTS",
] as const;

/**
 * Set by Supabase itself (SUPABASE_DB_URL; the CLI refuses names starting
 * with SUPABASE_), or only by the local stack (a local ECS endpoint,
 * temporary credentials).
 */
export const NOT_SET_HERE = ["SUPABASE_DB_URL", "AWS_ENDPOINT_URL_ECS", "AWS_SESSION_TOKEN"] as const;

/** The Vault secret names `queue.invoke_edge_function` reads (see the migrations). */
export const VAULT_SECRETS = { functionsUrl: "functions_url", dispatchSecret: "dispatch_secret" } as const;

export class SecretsPlanError extends Error {
  override readonly name = "SecretsPlanError";
}

function describe(source: SecretSource): string {
  switch (source.kind) {
    case "output":
      return `SST output ${source.name}`;
    case "input":
      return `$${source.name}`;
    case "computed":
      return source.description;
  }
}

export function describeSource(secret: PlannedSecret): string {
  return describe(secret.source);
}

/**
 * The plan for one stage. `outputs` is the stage's `.sst/outputs.json`
 * (undefined when the runner phase alone is planned), `env` the operator's
 * shell. Throws SecretsPlanError when the outputs belong to another stage or
 * a capacity variable is malformed; missing values land in `missing`.
 */
export function planSecrets(options: {
  stage: string;
  projectRef: string;
  outputs: Readonly<Record<string, unknown>> | undefined;
  env: Readonly<Record<string, string | undefined>>;
}): SecretsPlan {
  if (!(ENVIRONMENTS as readonly string[]).includes(options.stage)) {
    throw new SecretsPlanError(`--stage must be one of ${ENVIRONMENTS.join(", ")} (it is also the function's ENVIRONMENT), got ${JSON.stringify(options.stage)}`);
  }
  const stage = options.stage as Environment;
  if (!/^[a-z0-9]{20}$/.test(options.projectRef)) {
    throw new SecretsPlanError(`the Supabase project ref must be the 20 lower-case letters and digits of https://<ref>.supabase.co, got ${JSON.stringify(options.projectRef)}`);
  }
  const env = setValues(options.env);
  const outputs = options.outputs;
  if (outputs !== undefined && outputs.Stage !== stage) {
    throw new SecretsPlanError(
      `the SST outputs are those of stage ${JSON.stringify(outputs.Stage)}, not ${stage}: run \`npx sst deploy --stage ${stage}\` (it rewrites .sst/outputs.json) or pass that stage's outputs with --outputs`,
    );
  }
  const missing: string[] = [];
  const fromOutput = (name: string): PlannedSecret => {
    const value = outputs?.[name];
    const text = typeof value === "string" && value.trim() !== "" ? value : undefined;
    if (text === undefined) missing.push(`SST output ${name}`);
    return { name, source: { kind: "output", name }, value: text };
  };
  const fromInput = (name: string, input: string): PlannedSecret => {
    const value = env[input];
    if (value === undefined) missing.push(`$${input}`);
    return { name, source: { kind: "input", name: input }, value };
  };
  const functionsUrl = `https://${options.projectRef}.supabase.co`;

  // The budgets as the deploy sized the tasks: the same parser, rounded up to the Fargate sizes.
  const capacity = capacityEnvironment(billedCapacity(parseCapacityConfig(env)));
  const functionSecrets: PlannedSecret[] = [
    ...OUTPUT_SECRETS.map(fromOutput),
    ...REQUIRED_INPUTS.map(({ secret, input }) => fromInput(secret, input)),
    { name: "ENVIRONMENT", source: { kind: "computed", description: "--stage" }, value: stage },
    ...Object.entries(capacity).map(([name, value]): PlannedSecret => ({
      name,
      source: { kind: "computed", description: "capacity settings of the shell, as deployed (infra/runner-sizes.ts)" },
      value,
    })),
  ];
  for (const name of OPTIONAL_INPUTS.filter((candidate) => env[candidate] !== undefined)) {
    const overridden = functionSecrets.findIndex((secret) => secret.name === name);
    if (overridden >= 0) {
      // The shell's choice wins; the output is then not needed.
      const output = `SST output ${name}`;
      if (missing.includes(output)) missing.splice(missing.indexOf(output), 1);
      functionSecrets.splice(overridden, 1, fromInput(name, name));
    } else {
      functionSecrets.push(fromInput(name, name));
    }
  }
  const dispatchSecret = functionSecrets.find((secret) => secret.name === "DISPATCH_SECRET");
  const vaultSecrets: PlannedSecret[] = [
    { name: VAULT_SECRETS.functionsUrl, source: { kind: "computed", description: `https://<project ref>.supabase.co` }, value: functionsUrl },
    { name: VAULT_SECRETS.dispatchSecret, source: { kind: "input", name: "DISPATCH_SECRET" }, value: dispatchSecret?.value },
  ];
  const runnerSecrets = RUNNER_SECRETS.map((entry): PlannedSecret => {
    if (entry.variable === "SUPABASE_URL" && env[entry.input] === undefined) {
      return { name: entry.secret, source: { kind: "computed", description: `https://<project ref>.supabase.co (or $${entry.input})` }, value: functionsUrl };
    }
    return { name: entry.secret, source: { kind: "input", name: entry.input }, value: env[entry.input] };
  });
  checkRunnerDatabaseUrl(env);
  return { stage, projectRef: options.projectRef, functionSecrets, vaultSecrets, runnerSecrets, missing };
}

/**
 * The runners' URL goes to a remote pooler over TLS: refused here, before it
 * reaches SSM, when it names a loopback host or an sslmode that allows plain
 * text (the runner would refuse it at start; runners/lifecycle/database-tls.ts).
 */
function checkRunnerDatabaseUrl(env: Readonly<Record<string, string>>): void {
  const url = env["RUNNER_DATABASE_URL"];
  if (url === undefined) return;
  let host: string;
  try {
    host = databaseHost(url);
  } catch {
    throw new SecretsPlanError("$RUNNER_DATABASE_URL is not a postgresql:// URL");
  }
  if (isLoopbackHost(host)) throw new SecretsPlanError(`$RUNNER_DATABASE_URL names ${host}; a deployed runner needs the project's pooler host (Connect → Transaction pooler)`);
  try {
    parseDatabaseTls(url, { DATABASE_SSL_ROOT_CERT: env["RUNNER_DATABASE_ROOT_CERT"] });
  } catch (error) {
    if (error instanceof DatabaseTlsConfigError) throw new SecretsPlanError(`$${error.variable === "DATABASE_URL" ? "RUNNER_DATABASE_URL" : "RUNNER_DATABASE_ROOT_CERT"}: ${error.message}`);
    throw error;
  }
}

/** The missing inputs of the runner phase (it needs no SST output). */
export function missingRunnerInputs(plan: SecretsPlan): string[] {
  return plan.runnerSecrets.filter((secret) => secret.value === undefined).map((secret) => describeSource(secret));
}

/** `NAME=value` lines; values are single-line by construction (URLs, tokens, JSON, numbers). */
export function envFileText(secrets: readonly PlannedSecret[]): string {
  return secrets
    .map((secret) => {
      if (secret.value === undefined) throw new SecretsPlanError(`${secret.name} has no value`);
      if (/[\r\n]/.test(secret.value)) throw new SecretsPlanError(`${secret.name} holds a line break, which an env file cannot carry`);
      return `${secret.name}=${secret.value}\n`;
    })
    .join("");
}

/** A dollar-quote tag that does not occur in any of the values, so they need no escaping. */
function dollarTag(values: readonly string[]): string {
  for (let attempt = 0; ; attempt += 1) {
    const tag = `$secret${attempt}$`;
    if (values.every((value) => !value.includes(tag))) return tag;
  }
}

/** SQL that creates each Vault secret, or updates it when it exists (running twice is harmless). */
export function vaultSql(secrets: readonly PlannedSecret[]): string {
  const values = secrets.map((secret) => secret.value ?? "");
  const tag = dollarTag(values);
  const statements = secrets.map((secret) => {
    if (secret.value === undefined) throw new SecretsPlanError(`${secret.name} has no value`);
    const name = `'${secret.name}'`;
    const value = `${tag}${secret.value}${tag}`;
    return [
      `select vault.update_secret(id, ${value}) from vault.secrets where name = ${name};`,
      `select vault.create_secret(${value}, ${name}) where not exists (select 1 from vault.secrets where name = ${name});`,
    ].join("\n");
  });
  return `-- npm run deploy:secrets: the dispatch URL and secret the database's hints and cron tick read\n${statements.join("\n")}\n`;
}
