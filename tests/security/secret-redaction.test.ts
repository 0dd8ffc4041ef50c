import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { FinalJobError } from "../../runners/lifecycle/job-errors.ts";
import { runRunner, type JobHandler } from "../../runners/lifecycle/run-runner.ts";
import { parseRunnerConfig, secretValues } from "../../runners/lifecycle/runner-config.ts";
import { createLogger, REDACTED } from "../../runners/lifecycle/structured-log.ts";
import { parseCapacityConfig } from "../../supabase/functions/_shared/capacity-config.ts";
import { CapacityLedger } from "../../supabase/functions/_shared/capacity-ledger.ts";
import { redisKeyPrefixes } from "../../supabase/functions/_shared/redis-keys.ts";
import { createFreshDatabase, type FreshDatabase } from "../helpers/fresh-database.ts";
import { randomKeyPrefix, upstashClient } from "../helpers/upstash-client.ts";
import { acteJob, createLoginFor, insertJob, jobRow, type RoleLogin } from "../sql/queue-fixtures.ts";

// Secrets never reach a log line or a row: the task's secret variables
// (GEMINI_API_KEY, SUPABASE_STORAGE_KEY, …) and secrets learned at run time
// (a leased registry password, registered with Logger.addSecret). Each case
// has a control showing the secret would have appeared without redaction.

function capture(secrets: readonly string[] = []) {
  const lines: string[] = [];
  const log = createLogger({ base: { kind: "registre", environment: "dev" }, secrets, write: (line) => void lines.push(line) });
  return { log, lines };
}

describe("the secrets of the task's environment", () => {
  const env = {
    JOB_KIND: "acte-ocr",
    ENVIRONMENT: "dev",
    LEDGER_LEASE_ID: "lease-1",
    DATABASE_URL: "postgres://runner:db-password-123@127.0.0.1:5432/postgres",
    UPSTASH_REDIS_REST_URL: "https://example.upstash.io",
    UPSTASH_REDIS_REST_TOKEN: "upstash-token-abcdef",
    GEMINI_API_KEY: "AIzaSyFAKE-gemini-key-0123456789",
    SUPABASE_STORAGE_KEY: "eyJhbGciOiJIUzI1NiJ9.storage-runner.signature",
    SUPABASE_SERVICE_ROLE_KEY: "eyJhbGciOiJIUzI1NiJ9.service-role.signature",
    SOME_PARTNER_TOKEN: "partner-token-9876543",
    LOG_LEVEL: "info",
  };

  it.each(["GEMINI_API_KEY", "SUPABASE_STORAGE_KEY", "SUPABASE_SERVICE_ROLE_KEY", "SOME_PARTNER_TOKEN", "UPSTASH_REDIS_REST_TOKEN"] as const)(
    "%s is redacted from messages and error text",
    (name) => {
      const value = env[name];
      const message = `request failed: https://api.example/v1?key=${value}`;
      // Control: a logger that does not know the secret prints it.
      const control = capture();
      control.log.error(message, { error: new Error(message) });
      expect(control.lines.join("")).toContain(value);

      const { log, lines } = capture(secretValues(parseRunnerConfig(env)));
      log.error(message, { error: new Error(message), detail: { nested: [message] } });
      expect(lines.join("")).not.toContain(value);
      expect(lines.join("")).toContain(REDACTED);
    },
  );
});

describe("secrets learned at run time", () => {
  it("a password registered on a child logger is redacted by the parent and every other child, and by redact()", () => {
    const password = "leased-registry-pass!42";
    const { log, lines } = capture();
    const job = log.child({ job_id: "job-1" });
    const sibling = log.child({ job_id: "job-2" });
    job.info(`before: logging in with ${password}`);
    // Control: before it is registered, it shows (the redaction is what stops it).
    expect(lines.at(-1)).toContain(password);

    job.addSecret(password);
    job.warn("login failed", { error: new Error(`bad password ${password}`) });
    sibling.info(`sibling saw ${encodeURIComponent(password)}`);
    log.error(`runner saw ${password}`);
    for (const line of lines.slice(1)) expect(line).not.toContain(password);
    expect(lines.slice(1).join("")).not.toContain(encodeURIComponent(password));
    expect(log.redact(`row text with ${password}`)).toBe(`row text with ${REDACTED}`);
  });
});

describe("a runner whose handler fails with a leased password in the error", () => {
  let database: FreshDatabase;
  let runnerLogin: RoleLogin;
  const keyPrefix = `${randomKeyPrefix("redaction")}:`;
  const password = "S3cret-registry-password-7";

  beforeAll(async () => {
    database = await createFreshDatabase();
    runnerLogin = await createLoginFor(database, "runner", { max: 4 });
    await database.sql`insert into registry_accounts (username, password) values ('notaire-redaction', ${password})`;
  });
  afterAll(async () => {
    await runnerLogin?.drop();
    await database?.drop();
  });

  async function runOnce(registerSecret: boolean): Promise<{ row: Awaited<ReturnType<typeof jobRow>>; output: string }> {
    const id = await insertJob(database.sql, acteJob(`7 ${registerSecret ? "100" : "200"} 001`));
    const budget = { SERVER_MAX_CPU: "100", SERVER_MAX_RAM: "100" };
    const ledger = new CapacityLedger(upstashClient(), parseCapacityConfig(budget), { keyPrefix: redisKeyPrefixes(keyPrefix).ledger });
    const grant = await ledger.acquire("registre", { environment: "dev", holder: "dispatch@dev" });
    if (!grant.granted) throw new Error(grant.reason);
    const config = parseRunnerConfig({
      ...budget,
      JOB_KIND: "registre",
      ENVIRONMENT: "dev",
      LEDGER_LEASE_ID: grant.lease.id,
      DATABASE_URL: runnerLogin.url,
      UPSTASH_REDIS_REST_URL: inject("upstashUrl"),
      UPSTASH_REDIS_REST_TOKEN: inject("upstashToken"),
      REDIS_KEY_PREFIX: keyPrefix,
      RUNNER_MAX_JOBS: "1",
      RUNNER_IDLE_EXIT_SECONDS: "1",
      RUNNER_POLL_SECONDS: "0.1",
    });
    const lines: string[] = [];
    const log = createLogger({ base: { kind: "registre", environment: "dev" }, secrets: secretValues(config), write: (line) => void lines.push(line) });
    const handle: JobHandler = async (_job, context) => {
      // What the registre runner does: lease an account through the lease function.
      const [account] = await runnerLogin.sql<{ username: string; password: string }[]>`select username, password from queue.lease_registry_account('redaction-test', 60)`;
      if (!account) throw new Error("no account");
      if (registerSecret) context.log.addSecret(account.password);
      context.log.info(`logging in as ${account.username} with ${account.password}`);
      throw new FinalJobError(`the registry refused ${account.username} / ${account.password}`);
    };
    await runRunner({ config, handle, log, handleSignals: false });
    await database.sql`update registry_accounts set lease_token = null, lease_expires_at = null, leased_by = null`;
    return { row: await jobRow(database.sql, id), output: lines.join("") };
  }

  it("writes neither the password to the row nor to the log; without registering it, both would have held it", async () => {
    const control = await runOnce(false);
    expect(control.row.error_message).toContain(password);
    expect(control.output).toContain(password);

    const redacted = await runOnce(true);
    expect(redacted.row.status_id).toBe(4);
    expect(redacted.row.error_message).toBe(`the registry refused notaire-redaction / ${REDACTED}`);
    expect(redacted.output).not.toContain(password);
    expect(redacted.output).toContain(REDACTED);
  });
});
