/**
 * Secrets and document text never reach a runner's log or a row, even when
 * a handler lets them slip: here the handler quotes the database URL, the
 * Upstash token, an API key from its environment and a password it learned
 * at run time in its error, and logs a page of OCR text. Each would appear
 * in the output without redaction; the test checks the lines that carry
 * them were written, with the secrets replaced.
 */
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, inject, test } from "vitest";
import { RUNNER_EXIT_CODES, type JobHandler } from "../../runners/lifecycle/run-runner.ts";
import { REDACTED } from "../../runners/lifecycle/structured-log.ts";
import { createFreshDatabase, type FreshDatabase } from "../helpers/fresh-database.ts";
import { indexJob, insertJob, jobRow } from "../sql/queue-fixtures.ts";
import { runInProcess } from "./in-process-runner.ts";
import { createRunnerLogin, type RunnerLogin } from "./lifecycle-test-runner.ts";

let database: FreshDatabase;
let login: RunnerLogin;

beforeAll(async () => {
  database = await createFreshDatabase();
  login = await createRunnerLogin(database);
});
afterAll(async () => {
  await login?.drop();
  await database?.drop();
});

describe("what a runner writes", () => {
  test("a handler's error quoting secrets and its page text logged by field: written, with every secret and the text replaced", async () => {
    const id = await insertJob(database.sql, indexJob("7 000 001"));
    const geminiKey = `AIza${randomBytes(16).toString("hex")}`;
    const registryPassword = `registre-${randomBytes(8).toString("hex")}`;
    const pageText = "Ligne 1: Hydro-Québec | Servitude | 1987-03-02";
    const handle: JobHandler = async (_job, { log }) => {
      // Learned at run time (a leased registry password): redacted from here on.
      log.addSecret(registryPassword);
      log.info("page read", { text: pageText });
      throw new Error(
        `gave up: ${login.url} refused; Upstash token ${inject("upstashToken")}; key ${geminiKey}; login ${registryPassword} rejected`,
      );
    };
    const run = await runInProcess({ name: "leaky-runner", kind: "registre", databaseUrl: login.url, handle, env: { GEMINI_API_KEY: geminiKey } });

    expect(await run.exited).toBe(RUNNER_EXIT_CODES.ok);
    const output = run.output.join("\n");
    for (const secret of [login.password, inject("upstashToken"), geminiKey, registryPassword, pageText]) expect(output).not.toContain(secret);

    // The lines were written, with the secrets in place: without redaction they would be in the output.
    const failed = run.logs().find((line) => line.msg === "job failed");
    expect(String(failed?.["error"])).toMatch(new RegExp(`^Error: gave up: postgres://.*:${REDACTED.replace(/[[\]]/g, "\\$&")}@`));
    expect(String(failed?.["error"]).split(REDACTED)).toHaveLength(5);
    expect(run.logs().find((line) => line.msg === "page read")).toMatchObject({ text: `[document text: ${pageText.length} characters]` });

    // The row's error, written by the same runner, is scrubbed the same way.
    const row = await jobRow(database.sql, id);
    expect(row).toMatchObject({ status_id: 1, attempts: 1 });
    for (const secret of [login.password, inject("upstashToken"), geminiKey, registryPassword]) expect(row.error_message).not.toContain(secret);
    expect(row.error_message).toContain(REDACTED);
  });
});
