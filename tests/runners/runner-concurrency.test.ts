/**
 * RUNNER_CONCURRENCY slots in one task, on the real lifecycle, a fresh
 * Postgres (as the `runner` role) and the real capacity ledger: jobs run at
 * the same time, each under its own lease; one slot's failure leaves the
 * others' jobs alone; RUNNER_MAX_JOBS and the infrastructure-failure count
 * are the task's; SIGTERM releases every slot's job without an attempt.
 */
import { setTimeout as delay } from "node:timers/promises";
import { afterAll, afterEach, beforeAll, describe, expect, inject, test } from "vitest";
import { waitFor } from "../../infra/local/child-process.ts";
import { parseCapacityConfig } from "../../supabase/functions/_shared/capacity-config.ts";
import { CapacityLedger } from "../../supabase/functions/_shared/capacity-ledger.ts";
import { InfrastructureError, RetryableJobError } from "../../runners/lifecycle/job-errors.ts";
import { RUNNER_EXIT_CODES, type JobHandler } from "../../runners/lifecycle/run-runner.ts";
import { createFreshDatabase, type FreshDatabase } from "../helpers/fresh-database.ts";
import { randomKeyPrefix, upstashClient } from "../helpers/upstash-client.ts";
import { indexJob, insertJobs } from "../sql/queue-fixtures.ts";
import { runInProcess } from "./in-process-runner.ts";
import { createRunnerLogin, startLifecycleTestRunner, type LifecycleTestRunner, type RunnerLogin } from "./lifecycle-test-runner.ts";

let database: FreshDatabase;
let login: RunnerLogin;
const started: LifecycleTestRunner[] = [];

beforeAll(async () => {
  database = await createFreshDatabase();
  login = await createRunnerLogin(database);
});
afterEach(async () => {
  for (const runner of started.splice(0)) await runner.process.stop(1_000);
  await database.sql`delete from extraction_queue`;
});
afterAll(async () => {
  await login?.drop();
  await database?.drop();
});

interface Row {
  document_number: string;
  status_id: number;
  attempts: number;
  infrastructure_releases: number;
  error_message: string | null;
  processing_started_at: Date | null;
}
/** The rows in the order of `ids`. */
async function rowsOf(ids: readonly string[]): Promise<Row[]> {
  const rows = await database.sql<(Row & { id: string })[]>`
    select id, document_number, status_id, attempts, infrastructure_releases, error_message, processing_started_at
    from extraction_queue where id in ${database.sql(ids)}`;
  return ids.map((id) => rows.find((row) => row.id === id) as Row);
}

/** A handler that records when each job ran and how many ran at once; `fail` picks the jobs it fails. */
function recordingHandler(workMs: number, fail: (documentNumber: string) => Error | undefined = () => undefined) {
  let running = 0;
  const seen = { peak: 0, leases: new Set<string>() };
  const handle: JobHandler = async (job, { signal }) => {
    running += 1;
    seen.peak = Math.max(seen.peak, running);
    seen.leases.add(job.leaseToken);
    try {
      const failure = fail(job.documentNumber);
      // The failing job fails while the others are still at work.
      await delay(failure === undefined ? workMs : workMs / 4, undefined, { signal });
      if (failure !== undefined) throw failure;
      return { kind: "extracted", supabasePath: `index/${job.documentNumberNormalized}-Laval-1.pdf` };
    } finally {
      running -= 1;
    }
  };
  return { handle, seen };
}

describe("several jobs at once in one task", () => {
  test("three slots run three jobs at the same time, each under its own lease; one slot's failure leaves the others' jobs to complete", async () => {
    const ids = await insertJobs(database.sql, [indexJob("3 300 001"), indexJob("3 300 002"), indexJob("3 300 003"), indexJob("3 300 004"), indexJob("3 300 005"), indexJob("3 300 006")]);
    const { handle, seen } = recordingHandler(800, (number) => (number === "3 300 002" ? new RetryableJobError("the page said something unexpected") : undefined));
    const run = await runInProcess({ name: "three-slots", kind: "registre", databaseUrl: login.url, handle, env: { RUNNER_CONCURRENCY: "3" } });
    expect(await run.exited).toBe(RUNNER_EXIT_CODES.ok);

    expect(seen.peak).toBe(3);
    expect(seen.leases.size).toBe(6);
    const rows = await rowsOf(ids);
    expect(rows.map((row) => [row.document_number, row.status_id, row.attempts])).toEqual([
      ["3 300 001", 3, 1],
      ["3 300 002", 1, 1],
      ["3 300 003", 3, 1],
      ["3 300 004", 3, 1],
      ["3 300 005", 3, 1],
      ["3 300 006", 3, 1],
    ]);
    expect(rows[1]?.error_message).toBe("the page said something unexpected");
    // Six jobs of 0.8 s on three slots: two rounds, not six.
    const started = rows.map((row) => row.processing_started_at?.getTime() ?? 0);
    expect(Math.max(...started) - Math.min(...started)).toBeLessThan(2_400);
    expect(run.logs().find((line) => line.msg === "runner started")?.["concurrency"]).toBe(3);
  });

  test("RUNNER_MAX_JOBS counts the task's jobs across slots, those claimed with a completion included", async () => {
    const ids = await insertJobs(database.sql, Array.from({ length: 7 }, (_, index) => indexJob(`3 400 00${index}`)));
    const { handle } = recordingHandler(150);
    const run = await runInProcess({ name: "max-jobs-slots", kind: "registre", databaseUrl: login.url, handle, env: { RUNNER_CONCURRENCY: "3", RUNNER_MAX_JOBS: "5" } });
    expect(await run.exited).toBe(RUNNER_EXIT_CODES.ok);
    const rows = await rowsOf(ids);
    expect(rows.filter((row) => row.status_id === 3)).toHaveLength(5);
    expect(rows.filter((row) => row.status_id === 1 && row.attempts === 0)).toHaveLength(2);
  });

  test("infrastructure failures in a row are the task's: three slots failing together stop it once, spending no attempt", async () => {
    const ids = await insertJobs(database.sql, Array.from({ length: 6 }, (_, index) => indexJob(`3 500 00${index}`)));
    const { handle } = recordingHandler(200, () => new InfrastructureError("Storage unreachable"));
    const run = await runInProcess({ name: "infra-slots", kind: "registre", databaseUrl: login.url, handle, env: { RUNNER_CONCURRENCY: "3", RUNNER_MAX_INFRASTRUCTURE_FAILURES: "3" } });
    expect(await run.exited).toBe(RUNNER_EXIT_CODES.infrastructure);
    const rows = await rowsOf(ids);
    // Three released together reach the limit; no slot claims after it.
    expect(rows.filter((row) => row.infrastructure_releases === 1)).toHaveLength(3);
    expect(rows.every((row) => row.status_id === 1 && row.attempts === 0)).toBe(true);
    expect(run.logs().filter((line) => line.msg === "too many infrastructure failures in a row; exiting")).toHaveLength(1);
  });

  test("on SIGTERM every slot's job that cannot finish in the grace period is released without spending an attempt", async () => {
    const ids = await insertJobs(database.sql, [indexJob("3 600 001"), indexJob("3 600 002"), indexJob("3 600 003"), indexJob("3 600 004")]);
    const keyPrefix = `${randomKeyPrefix("concurrency-sigterm")}:`;
    const keyedLedger = new CapacityLedger(upstashClient(), parseCapacityConfig({ SERVER_MAX_CPU: "100", SERVER_MAX_RAM: "100" }), { keyPrefix: `${keyPrefix}ledger` });
    const grant = await keyedLedger.acquire("registre", { environment: "dev", holder: "dispatch@dev" });
    if (!grant.granted) throw new Error(grant.reason);
    const runner = startLifecycleTestRunner("sigterm-slots", {
      JOB_KIND: "registre",
      ENVIRONMENT: "dev",
      LEDGER_LEASE_ID: grant.lease.id,
      DATABASE_URL: login.url,
      UPSTASH_REDIS_REST_URL: inject("upstashUrl"),
      UPSTASH_REDIS_REST_TOKEN: inject("upstashToken"),
      REDIS_KEY_PREFIX: keyPrefix,
      WORKER_ID: "sigterm-slots",
      SERVER_MAX_CPU: "100",
      SERVER_MAX_RAM: "100",
      RUNNER_POLL_SECONDS: "0.1",
      RUNNER_CONCURRENCY: "3",
      TEST_JOB_DURATION_MS: "60000",
      SHUTDOWN_GRACE_SECONDS: "1",
    });
    started.push(runner);
    await waitFor("three jobs running at once", async () => (await rowsOf(ids)).filter((row) => row.status_id === 2).length === 3);

    runner.signal("SIGTERM");
    expect(await runner.exited).toBe(0);
    const rows = await rowsOf(ids);
    expect(rows.map((row) => [row.status_id, row.attempts, row.infrastructure_releases])).toEqual([
      [1, 0, 0],
      [1, 0, 0],
      [1, 0, 0],
      [1, 0, 0],
    ]);
    expect(runner.logs().filter((line) => line.msg === "job released at shutdown")).toHaveLength(3);
    expect((await keyedLedger.snapshot()).leases.map((lease) => lease.id)).not.toContain(grant.lease.id);
  });
});
