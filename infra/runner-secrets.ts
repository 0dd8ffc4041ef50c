/**
 * The runners' secrets, in one table: the SST secret that holds each value,
 * the environment variable the runner reads it as, which runner families
 * receive it, and the shell variable `npm run deploy:secrets -- --runners`
 * reads it from. infra/secrets.ts creates the secrets and their SSM
 * parameters from this table, infra/tasks.ts hands each family its share,
 * and the deploy-secrets script sets them; the mocked evaluation
 * (infra:check) checks the task definitions against it.
 *
 * Plain TypeScript without SST globals: the scripts and tests import it.
 */
import type { RunnerFamily } from "../supabase/functions/_shared/ecs-client.ts";

export interface RunnerSecret {
  /** Name of the `sst.Secret` (`npx sst secret set <secret> … --stage <stage>`). */
  readonly secret: string;
  /** The variable the runner reads (runner-config.ts, the storage configuration, the OCR runner). */
  readonly variable: string;
  /** The families whose task definitions receive it. */
  readonly families: readonly RunnerFamily[];
  /** The operator's shell variable deploy:secrets reads the value from. */
  readonly input: string;
  readonly description: string;
}

const BOTH: readonly RunnerFamily[] = ["registre", "ocr"];

export const RUNNER_SECRETS: readonly RunnerSecret[] = [
  {
    secret: "RunnerDatabaseUrl",
    variable: "DATABASE_URL",
    families: BOTH,
    // Not DATABASE_URL: the operator's shell may hold another database's URL.
    input: "RUNNER_DATABASE_URL",
    description: "Postgres URL of the least-privileged `runner` role through the transaction pooler (port 6543)",
  },
  {
    secret: "RunnerDatabaseRootCert",
    variable: "DATABASE_SSL_ROOT_CERT",
    families: BOTH,
    input: "RUNNER_DATABASE_ROOT_CERT",
    // Public, but in SSM with the URL: a RunTask environment override cannot
    // replace a value ECS injects from SSM with a CA of someone else's.
    description:
      "PEM root certificate of the Supabase project (Dashboard → Database Settings → SSL Configuration → Download certificate); the runner verifies the pooler with it (sslmode verify-full, runners/lifecycle/database-tls.ts)",
  },
  {
    secret: "UpstashRedisRestUrl",
    variable: "UPSTASH_REDIS_REST_URL",
    families: BOTH,
    input: "UPSTASH_REDIS_REST_URL",
    description: "REST URL of the Upstash database every environment shares",
  },
  {
    secret: "UpstashRedisRestToken",
    variable: "UPSTASH_REDIS_REST_TOKEN",
    families: BOTH,
    input: "UPSTASH_REDIS_REST_TOKEN",
    description: "REST token of that Upstash database",
  },
  {
    secret: "GeminiApiKey",
    variable: "GEMINI_API_KEY",
    // Only the OCR runners call Gemini; the registre task never receives the key.
    families: ["ocr"],
    input: "GEMINI_API_KEY",
    description: "Gemini API key (OCR runners only)",
  },
  {
    secret: "SupabaseUrl",
    variable: "SUPABASE_URL",
    families: BOTH,
    input: "SUPABASE_URL",
    description: "https://<ref>.supabase.co, where the runners reach Storage",
  },
  {
    secret: "SupabasePublishableKey",
    variable: "SUPABASE_PUBLISHABLE_KEY",
    families: BOTH,
    input: "SUPABASE_PUBLISHABLE_KEY",
    description: "the project's publishable key (sb_publishable_…), sent as apikey with the runner user's session; public, reaches only what RLS allows",
  },
  // Each family's own Supabase Auth user (npm run storage-users), whose Storage
  // policies let registre insert and OCR read (migration 20261205040000). The
  // legacy SUPABASE_STORAGE_KEY (a JWT signed with the retired JWT secret) is
  // no longer deployed; the runner still reads it when set by hand.
  {
    secret: "RegistreStorageEmail",
    variable: "SUPABASE_RUNNER_EMAIL",
    families: ["registre"],
    input: "RUNNER_STORAGE_EMAIL_REGISTRE",
    description: "email of the registre runners' Auth user (insert-only into the document buckets)",
  },
  {
    secret: "RegistreStoragePassword",
    variable: "SUPABASE_RUNNER_PASSWORD",
    families: ["registre"],
    input: "RUNNER_STORAGE_PASSWORD_REGISTRE",
    description: "password of the registre runners' Auth user",
  },
  {
    secret: "OcrStorageEmail",
    variable: "SUPABASE_RUNNER_EMAIL",
    families: ["ocr"],
    input: "RUNNER_STORAGE_EMAIL_OCR",
    description: "email of the OCR runners' Auth user (read-only in the document buckets)",
  },
  {
    secret: "OcrStoragePassword",
    variable: "SUPABASE_RUNNER_PASSWORD",
    families: ["ocr"],
    input: "RUNNER_STORAGE_PASSWORD_OCR",
    description: "password of the OCR runners' Auth user",
  },
];

export function runnerSecretsOf(family: RunnerFamily): readonly RunnerSecret[] {
  return RUNNER_SECRETS.filter((entry) => entry.families.includes(family));
}
