/**
 * A hung handler does not hold its job and the task's capacity forever while
 * the heartbeat renews: past JOB_MAX_RUN_SECONDS it is aborted and the job
 * released as infrastructure (no attempt spent), with the real runner
 * lifecycle and the real database.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import { RUNNER_EXIT_CODES, type JobHandler } from "../../runners/lifecycle/run-runner.ts";
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
afterEach(async () => {
  await database.sql`delete from extraction_queue`;
});
afterAll(async () => {
  await login?.drop();
  await database?.drop();
});

let jobNumber = 0;

describe("a job past its maximum run time", () => {
  test.each<[string, JobHandler]>([
    [
      "a handler that stops when aborted",
      (_job, { signal }) =>
        new Promise((_resolve, reject) => {
          signal.addEventListener("abort", () => reject(signal.reason), { once: true });
        }),
    ],
    // Never settles, whatever its signal says: abandoned after the settle time.
    ["a handler that ignores its signal", () => new Promise(() => {})],
  ])("%s is aborted and its job released as infrastructure, no attempt spent", async (_name, handle) => {
    jobNumber += 1;
    const id = await insertJob(database.sql, indexJob(`9 000 00${jobNumber}`));
    const startedAt = Date.now();
    const run = await runInProcess({
      name: `hung-${id.slice(0, 8)}`,
      kind: "registre",
      databaseUrl: login.url,
      handle,
      env: { JOB_MAX_RUN_SECONDS: "1", JOB_LEASE_SECONDS: "30", RUNNER_MAX_INFRASTRUCTURE_FAILURES: "1" },
    });

    expect(await run.exited).toBe(RUNNER_EXIT_CODES.infrastructure);
    expect(Date.now() - startedAt).toBeLessThan(15_000);
    const row = await jobRow(database.sql, id);
    expect(row).toMatchObject({ status_id: 1, attempts: 0, infrastructure_releases: 1, worker_id: null, extraction_lease_token: null });
    expect(row.error_message).toMatch(/ran past its maximum run time of 1 s/);
    const [kind] = await database.sql<{ error_kind: string }[]>`select error_kind from extraction_queue where id = ${id}`;
    expect(kind?.error_kind).toBe("infrastructure");
  }, 30_000);
});
