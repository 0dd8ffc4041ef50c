/**
 * What `npm run doctor` checks, gathered once: for `--stage`, the operator's
 * shell (the same variables deploy:secrets reads) and the stage's
 * `.sst/outputs.json`; for `--local`, the file `npm start` writes next to
 * its connections (`<LOCAL_STACK_DIR>/dev/doctor.json`, mode 0600), or
 * `--target-file`.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { parseCapacityConfig } from "../supabase/functions/_shared/capacity-config.ts";
import { parseEcsConfig, type EcsConfig } from "../supabase/functions/_shared/ecs-client.ts";
import { setValues } from "../supabase/functions/_shared/env-values.ts";
import { parseDatabaseTls, type DatabaseTls } from "../runners/lifecycle/database-tls.ts";
import type { AwsCredentials, AwsEndpoints } from "./doctor-aws.ts";
import { localEcsEnvironment } from "../infra/local/local-ecs-environment.ts";
import { LOCAL_DOCTOR_FILE, localDoctorFileSchema, type LocalDoctorFile } from "../infra/local/doctor-file.ts";

export { LOCAL_DOCTOR_FILE, localDoctorFileSchema, type LocalDoctorFile };

export interface DoctorTarget {
  readonly mode: "local" | "stage";
  readonly stage: string;
  readonly runnerDatabaseUrl: string;
  readonly databaseTls: DatabaseTls;
  /** The postgres role, for Vault and pg_cron; undefined skips those checks. */
  readonly adminDatabaseUrl: string | undefined;
  readonly storage:
    | { readonly kind: "local-directory"; readonly root: string }
    | { readonly kind: "supabase"; readonly url: string; readonly publishableKey: string; readonly users: Partial<Record<"registre" | "ocr", { email: string; password: string }>> };
  readonly functionsUrl: string;
  readonly dispatchSecret: string | undefined;
  readonly upstash: { readonly url: string; readonly token: string; readonly prefix: string; readonly budgetEnv: Record<string, string | undefined>; readonly billed: boolean };
  readonly ecs: EcsConfig | undefined;
  /** The deployer's own AWS credentials (the shell's AWS_*), to look at the cluster, task definitions and subnets. */
  readonly deployer: { readonly credentials: AwsCredentials; readonly endpoints: AwsEndpoints } | undefined;
  readonly gemini: { readonly apiKey: string; readonly baseUrl: string; readonly models: readonly string[] } | undefined;
  readonly registryUrl: string;
}

export class DoctorTargetError extends Error {
  override readonly name = "DoctorTargetError";
}

export function localTarget(file: string): DoctorTarget {
  if (!existsSync(file)) throw new DoctorTargetError(`no local stack found (${file} is missing): start it with \`npm start\``);
  const parsed = localDoctorFileSchema.safeParse(JSON.parse(readFileSync(file, "utf8")));
  if (!parsed.success) throw new DoctorTargetError(`${file} is not what \`npm start\` writes: restart the stack`);
  const local = parsed.data;
  return {
    mode: "local",
    stage: "local",
    runnerDatabaseUrl: local.runnerDatabaseUrl,
    databaseTls: parseDatabaseTls(local.runnerDatabaseUrl, {}),
    adminDatabaseUrl: local.adminDatabaseUrl,
    storage: { kind: "local-directory", root: local.storageDir },
    functionsUrl: `${local.functionsUrl.replace(/\/+$/, "")}/functions/v1`,
    dispatchSecret: local.dispatchSecret,
    upstash: { ...local.upstash, prefix: local.budgetEnv["REDIS_KEY_PREFIX"] ?? "", budgetEnv: local.budgetEnv, billed: false },
    // The local ECS endpoint, with the settings the local dispatch function runs with.
    ecs: parseEcsConfig(localEcsEnvironment(local.ecsUrl, local.dispatchSecret)),
    // The local ECS endpoint has no DescribeClusters, and there is no EC2.
    deployer: undefined,
    gemini: undefined,
    registryUrl: `${local.registryUrl.replace(/\/+$/, "")}/Sirf/`,
  };
}

/** A deployed stage, from the operator's shell and `.sst/outputs.json`. */
export function stageTarget(stage: string, environment: Readonly<Record<string, string | undefined>>, outputsFile: string): DoctorTarget {
  const env = setValues(environment);
  const need = (name: string): string => {
    const value = env[name];
    if (value === undefined) throw new DoctorTargetError(`${name} is not set (the doctor reads the variables deploy:secrets reads; see docs/deploy.md)`);
    return value;
  };
  const ref = env["SUPABASE_PROJECT_REF"];
  const supabaseUrl = env["SUPABASE_URL"] ?? (ref === undefined ? undefined : `https://${ref}.supabase.co`);
  if (supabaseUrl === undefined) throw new DoctorTargetError("SUPABASE_PROJECT_REF (or SUPABASE_URL) is not set");
  const runnerDatabaseUrl = need("RUNNER_DATABASE_URL");
  const outputs = existsSync(outputsFile) ? (JSON.parse(readFileSync(outputsFile, "utf8")) as Record<string, unknown>) : undefined;
  let ecs: EcsConfig | undefined;
  if (outputs !== undefined && outputs["Stage"] === stage && env["DISPATCH_AWS_ACCESS_KEY_ID"] !== undefined && env["DISPATCH_AWS_SECRET_ACCESS_KEY"] !== undefined) {
    const strings = Object.fromEntries(Object.entries(outputs).filter((entry): entry is [string, string] => typeof entry[1] === "string"));
    ecs = parseEcsConfig({ ...strings, AWS_ACCESS_KEY_ID: env["DISPATCH_AWS_ACCESS_KEY_ID"], AWS_SECRET_ACCESS_KEY: env["DISPATCH_AWS_SECRET_ACCESS_KEY"] });
  }
  const user = (family: "REGISTRE" | "OCR") => {
    const email = env[`RUNNER_STORAGE_EMAIL_${family}`];
    const password = env[`RUNNER_STORAGE_PASSWORD_${family}`];
    return email !== undefined && password !== undefined ? { email, password } : undefined;
  };
  const registre = user("REGISTRE");
  const ocr = user("OCR");
  const gemini = parseCapacityConfig(environment).gemini;
  const apiKey = env["GEMINI_API_KEY"];
  return {
    mode: "stage",
    stage,
    runnerDatabaseUrl,
    databaseTls: parseDatabaseTls(runnerDatabaseUrl, { DATABASE_SSL_ROOT_CERT: env["RUNNER_DATABASE_ROOT_CERT"] }),
    adminDatabaseUrl: env["DATABASE_URL"],
    storage: { kind: "supabase", url: supabaseUrl, publishableKey: need("SUPABASE_PUBLISHABLE_KEY"), users: { ...(registre ? { registre } : {}), ...(ocr ? { ocr } : {}) } },
    functionsUrl: `${supabaseUrl.replace(/\/+$/, "")}/functions/v1`,
    dispatchSecret: env["DISPATCH_SECRET"],
    upstash: { url: need("UPSTASH_REDIS_REST_URL"), token: need("UPSTASH_REDIS_REST_TOKEN"), prefix: env["REDIS_KEY_PREFIX"] ?? "", budgetEnv: environment, billed: true },
    ecs,
    deployer:
      env["AWS_ACCESS_KEY_ID"] !== undefined && env["AWS_SECRET_ACCESS_KEY"] !== undefined
        ? {
            credentials: { accessKeyId: env["AWS_ACCESS_KEY_ID"], secretAccessKey: env["AWS_SECRET_ACCESS_KEY"], ...(env["AWS_SESSION_TOKEN"] ? { sessionToken: env["AWS_SESSION_TOKEN"] } : {}) },
            endpoints: {},
          }
        : undefined,
    gemini: apiKey === undefined ? undefined : { apiKey, baseUrl: "https://generativelanguage.googleapis.com", models: [gemini.models.fast, gemini.models.boost] },
    registryUrl: "https://www.registrefoncier.gouv.qc.ca/Sirf/",
  };
}
