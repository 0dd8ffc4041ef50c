/**
 * Every value the runner tasks need that must not live in git, created from
 * the table in runner-secrets.ts. Set per stage (one stage per Supabase
 * project) before the first deploy, all at once with
 *
 *   npm run deploy:secrets -- --stage prod --runners
 *
 * or one by one with `npx sst secret set <Name> <value> --stage prod`. A
 * secret that was never set stops `sst deploy` with its name. The dispatch
 * function's own secrets live in Supabase (`npm run deploy:secrets` without
 * `--runners`, after the deploy).
 *
 * Task definitions never hold these values: each is copied into an SSM
 * SecureString parameter, and the task definition names the parameter's ARN,
 * so ECS injects the value when the container starts and the console, the
 * DescribeTaskDefinition API and the image never show it. Standard SSM
 * parameters are free, and the default `aws/ssm` key needs no KMS grant; each
 * task's execution role may read only its own family's parameters
 * (infra/tasks.ts).
 */
import { RUNNER_SECRETS } from "./runner-secrets.ts";

/**
 * Copies one secret into an SSM SecureString named after the app, stage and
 * variable, with the family in the name when only one family reads it (two
 * families read SUPABASE_RUNNER_PASSWORD, each its own user's).
 */
function runnerParameter(secretName: string, variable: string, families: readonly string[]) {
  const secret = new sst.Secret(secretName);
  return new aws.ssm.Parameter(`${secretName}Parameter`, {
    name: families.length === 1 ? `/${$app.name}/${$app.stage}/${families[0]}/${variable}` : `/${$app.name}/${$app.stage}/${variable}`,
    type: "SecureString",
    value: secret.value,
  });
}

/** SSM parameter ARNs keyed by the SST secret's name (runner-secrets.ts). */
export const runnerSecretParameters: Record<string, $util.Output<string>> = Object.fromEntries(
  RUNNER_SECRETS.map((entry) => [entry.secret, runnerParameter(entry.secret, entry.variable, entry.families).arn]),
);
