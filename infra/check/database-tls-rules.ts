/**
 * infra:check's rules on the runners' database connections (issue 20 item
 * 3): every task definition receives DATABASE_URL and the project's root
 * certificate from SSM, so the runner connects with TLS and verifies the
 * pooler (runners/lifecycle/database-tls.ts); the runner's own policy, run
 * here, refuses a pooler URL that allows plain text; and when the deploying
 * shell holds RUNNER_DATABASE_URL (what deploy:secrets --runners stores),
 * that URL is a remote host whose connection is TLS.
 *
 * Plain TypeScript without SST globals: the scripts and tests import it.
 */
import { DatabaseTlsConfigError, databaseHost, isLoopbackHost, parseDatabaseTls } from "../../runners/lifecycle/database-tls.ts";
import type { TaskSummary } from "./infra-summary.ts";

export interface DatabaseTlsSummary {
  /** Per runner family: whether it gets the URL and the root certificate from SSM. */
  readonly tasks: readonly { readonly family: string; readonly url: boolean; readonly rootCert: boolean }[];
  /** The TLS mode of the shell's RUNNER_DATABASE_URL, when set (never the URL). */
  readonly shellUrlMode: string | undefined;
}

/** A pooler URL of the documented shape (https://supabase.com/docs/guides/database/connecting-to-postgres). */
const SAMPLE_POOLER_URL = "postgresql://runner.abcdefghijklmnopqrst:pw@aws-1-ca-central-1.pooler.supabase.com:6543/postgres";
const SAMPLE_CERT = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----";

export function checkDatabaseTls(tasks: readonly TaskSummary[], env: Readonly<Record<string, string | undefined>>, problems: string[]): DatabaseTlsSummary {
  const summaries = tasks.flatMap((task) =>
    task.runnerFamily === undefined ? [] : [{ family: task.runnerFamily, url: task.secrets.includes("DATABASE_URL"), rootCert: task.secrets.includes("DATABASE_SSL_ROOT_CERT") }],
  );
  for (const task of summaries) {
    if (!task.rootCert) problems.push(`${task.family}: no DATABASE_SSL_ROOT_CERT from SSM, so the runner cannot verify the pooler (TLS would be unverified)`);
  }
  // The runner's policy as the image carries it: plain text refused, a certificate means verification.
  for (const mode of ["disable", "allow", "prefer"]) {
    try {
      parseDatabaseTls(`${SAMPLE_POOLER_URL}?sslmode=${mode}`, {});
      problems.push(`database TLS: the runner accepts sslmode=${mode} to a remote pooler`);
    } catch (error) {
      if (!(error instanceof DatabaseTlsConfigError)) throw error;
    }
  }
  if (parseDatabaseTls(SAMPLE_POOLER_URL, { DATABASE_SSL_ROOT_CERT: SAMPLE_CERT }).mode !== "verify-full") problems.push("database TLS: a root certificate does not make the runner verify the pooler");
  let shellUrlMode: string | undefined;
  const shellUrl = env["RUNNER_DATABASE_URL"]?.trim();
  if (shellUrl !== undefined && shellUrl !== "") {
    try {
      if (isLoopbackHost(databaseHost(shellUrl))) problems.push("RUNNER_DATABASE_URL names a loopback host; a deployed runner needs the project's pooler host");
      shellUrlMode = parseDatabaseTls(shellUrl, { DATABASE_SSL_ROOT_CERT: env["RUNNER_DATABASE_ROOT_CERT"] }).mode;
    } catch (error) {
      problems.push(`RUNNER_DATABASE_URL: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  return { tasks: summaries, shellUrlMode };
}
