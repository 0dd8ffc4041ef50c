/**
 * Every value the runner tasks need that must not live in git, in one place.
 * Set per stage (one stage per Supabase project) before the first deploy:
 *
 *   npx sst secret set RunnerDatabaseUrl 'postgresql://runner.<ref>:…@…pooler.supabase.com:6543/postgres' --stage prod
 *
 * A secret that was never set stops `sst deploy` with its name. The dispatch
 * function's own secrets live in Supabase, not here (docs/deploy.md).
 *
 * Task definitions never hold these values: each is copied into an SSM
 * SecureString parameter, and the task definition names the parameter's ARN,
 * so ECS injects the value when the container starts and the console, the
 * DescribeTaskDefinition API and the image never show it. Standard SSM
 * parameters are free and the default `aws/ssm` key needs no extra grant for
 * the execution role SST creates (it may read any parameter).
 */

/** Postgres URL of the least-privileged `runner` role through the transaction pooler (port 6543). */
export const runnerDatabaseUrl = new sst.Secret("RunnerDatabaseUrl");
/** REST URL of the Upstash database every environment shares (the ledger and the Gemini budget). */
export const upstashRedisRestUrl = new sst.Secret("UpstashRedisRestUrl");
export const upstashRedisRestToken = new sst.Secret("UpstashRedisRestToken");
/** Only the OCR runners call Gemini; the registre task never receives it. */
export const geminiApiKey = new sst.Secret("GeminiApiKey");
/** `https://<ref>.supabase.co`: the runners store and read PDFs through Storage with supabase-js. */
export const supabaseUrl = new sst.Secret("SupabaseUrl");
/**
 * What supabase-js needs to write to the private buckets from a server. It
 * reaches more than Storage (it bypasses row-level security), which is why
 * the runners use it for Storage only and reach Postgres as the `runner`
 * role above; narrowing it means a JWT for a custom role with storage
 * policies, not done yet.
 */
export const supabaseServiceRoleKey = new sst.Secret("SupabaseServiceRoleKey");

/** Copies one secret into an SSM SecureString named after the app, stage and variable. */
function runnerParameter(logicalName: string, variable: string, secret: sst.Secret) {
  return new aws.ssm.Parameter(logicalName, {
    name: `/${$app.name}/${$app.stage}/${variable}`,
    type: "SecureString",
    value: secret.value,
  });
}

/**
 * SSM parameter ARNs keyed by the environment variable the runner reads
 * (runners/lifecycle/runner-config.ts and the runners' own settings).
 */
export const runnerSecretParameters = {
  DATABASE_URL: runnerParameter("RunnerDatabaseUrlParameter", "DATABASE_URL", runnerDatabaseUrl).arn,
  UPSTASH_REDIS_REST_URL: runnerParameter("UpstashRedisRestUrlParameter", "UPSTASH_REDIS_REST_URL", upstashRedisRestUrl).arn,
  UPSTASH_REDIS_REST_TOKEN: runnerParameter("UpstashRedisRestTokenParameter", "UPSTASH_REDIS_REST_TOKEN", upstashRedisRestToken).arn,
  GEMINI_API_KEY: runnerParameter("GeminiApiKeyParameter", "GEMINI_API_KEY", geminiApiKey).arn,
  SUPABASE_URL: runnerParameter("SupabaseUrlParameter", "SUPABASE_URL", supabaseUrl).arn,
  SUPABASE_SERVICE_ROLE_KEY: runnerParameter("SupabaseServiceRoleKeyParameter", "SUPABASE_SERVICE_ROLE_KEY", supabaseServiceRoleKey).arn,
};
