/**
 * A registry password leased from the vault joins the log redaction list at
 * once: a page error or a login message quoting it never reaches a log line
 * or a row (issue 19 item 13).
 */
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RegistryAccounts } from "../../runners/registre/registry-accounts.ts";
import { createLogger } from "../../runners/lifecycle/structured-log.ts";
import { createFreshDatabase, type FreshDatabase } from "../helpers/fresh-database.ts";
import { createRunnerLogin, type RunnerLogin } from "../runners/lifecycle-test-runner.ts";

let database: FreshDatabase;
let login: RunnerLogin;
let runner: postgres.Sql;

beforeAll(async () => {
  database = await createFreshDatabase();
  login = await createRunnerLogin(database);
  runner = postgres(login.url, { max: 1, onnotice: () => {} });
});
afterAll(async () => {
  await runner?.end({ timeout: 1 });
  await login?.drop();
  await database?.drop();
});

describe("registry passwords in logs", () => {
  it("are redacted from every line, in the job's child logger too, once the account is leased", async () => {
    const password = "Tr0ub4dor&3-registre";
    await database.sql`insert into registry_accounts (username, password, is_active) values ('notaire-redaction', ${password}, true)`;
    const lines: string[] = [];
    const log = createLogger({ base: { kind: "registre" }, write: (line) => void lines.push(line) });
    const accounts = new RegistryAccounts(runner, { workerId: "redaction-worker", leaseSeconds: 60, log });
    const account = await accounts.lease();
    expect(account?.password).toBe(password);

    const jobLog = log.child({ job_id: "j-1" });
    jobLog.warn(`login refused for notaire-redaction with ${password}`, { detail: `page said: mot de passe ${password} invalide` });
    expect(jobLog.redact(`Error: ${password}`)).not.toContain(password);
    await accounts.release();

    expect(lines.join("\n")).not.toContain(password);
    expect(lines.some((line) => line.includes("login refused for notaire-redaction"))).toBe(true);
  });
});
