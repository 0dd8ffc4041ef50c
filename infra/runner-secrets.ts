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
    secret: "SupabaseStorageKey",
    variable: "SUPABASE_STORAGE_KEY",
    families: BOTH,
    input: "SUPABASE_STORAGE_KEY",
    description: "JWT of the dedicated storage role (document buckets only), never the service-role key",
  },
];

export function runnerSecretsOf(family: RunnerFamily): readonly RunnerSecret[] {
  return RUNNER_SECRETS.filter((entry) => entry.families.includes(family));
}
