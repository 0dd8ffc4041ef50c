/**
 * The runner lifecycle end to end: the lifecycle test runner runs as a real
 * child process against a fresh Postgres database (as a member of the
 * least-privileged `runner` role) and the real capacity ledger behind the
 * local Upstash endpoint. Each test checks what an operator would: row
 * status and attempts, the ledger's live leases, the exit code, the logs.
 */
import { randomBytes } from "node:crypto";
import { setTimeout as delay } from "node:timers/promises";
import { afterAll, afterEach, beforeAll, describe, expect, inject, test } from "vitest";
import { waitFor } from "../../infra/local/child-process.ts";
import { parseCapacityConfig } from "../../supabase/functions/_shared/capacity-config.ts";
import { CapacityLedger, type Lease } from "../../supabase/functions/_shared/capacity-ledger.ts";
import type { Environment } from "../../supabase/functions/_shared/environments.ts";
import type { JobKind } from "../../supabase/functions/_shared/job-kinds.ts";
import { RUNNER_EXIT_CODES } from "../../runners/lifecycle/run-runner.ts";
import { REDACTED } from "../../runners/lifecycle/structured-log.ts";
import { createFreshDatabase, type FreshDatabase } from "../helpers/fresh-database.ts";
import { randomKeyPrefix, upstashClient } from "../helpers/upstash-client.ts";
import { acteJob, indexJob, insertJob, insertJobs, jobRow, type QueueRow } from "../sql/queue-fixtures.ts";
import { createRunnerLogin, startLifecycleTestRunner, type LifecycleTestRunner, type RunnerLogin } from "./lifecycle-test-runner.ts";

/** Room for many leases, so a lease a failed test leaves behind never blocks the next one. */
const CAPACITY_ENV = { SERVER_MAX_CPU: "100", SERVER_MAX_RAM: "100" } as const;

let database: FreshDatabase;
let login: RunnerLogin;
let redisKeyPrefix: string;
const started: LifecycleTestRunner[] = [];

beforeAll(async () => {
  database = await createFreshDatabase();
  login = await createRunnerLogin(database);
  redisKeyPrefix = `${randomKeyPrefix("runner-lifecycle")}:`;
});

afterEach(async () => {
  // A failed test may leave a runner behind; it must not claim the next test's rows.
  for (const runner of started.splice(0)) await runner.process.stop(1_000);
  await database.sql`delete from extraction_queue`;
});

afterAll(async () => {
  await login?.drop();
  await database?.drop();
});

/** The ledger the runners renew and release, under the same key prefix dispatch would use. */
function ledgerWith(env: Record<string, string> = {}): CapacityLedger {
  return new CapacityLedger(upstashClient(), parseCapacityConfig({ ...CAPACITY_ENV, ...env }), { keyPrefix: `${redisKeyPrefix}ledger` });
}

/** Takes a lease as dispatch does before RunTask. */
async function acquireLease(ledger: CapacityLedger, kind: JobKind, environment: Environment = "dev"): Promise<Lease> {
  const grant = await ledger.acquire(kind, { environment, holder: `dispatch@${environment}` });
  if (!grant.granted) throw new Error(`test lease refused: ${grant.reason}`);
  return grant.lease;
}

async function liveLeaseIds(ledger: CapacityLedger): Promise<string[]> {
  return (await ledger.snapshot()).leases.map((lease) => lease.id);
}

/** Starts a runner with the container environment dispatch and the task definition would give it. */
function startRunner(options: { name: string; kind: JobKind; lease: Lease; env?: Record<string, string> }): LifecycleTestRunner {
  const runner = startLifecycleTestRunner(options.name, {
    JOB_KIND: options.kind,
    ENVIRONMENT: options.lease.environment,
    LEDGER_LEASE_ID: options.lease.id,
    DATABASE_URL: login.url,
    UPSTASH_REDIS_REST_URL: inject("upstashUrl"),
    UPSTASH_REDIS_REST_TOKEN: inject("upstashToken"),
    REDIS_KEY_PREFIX: redisKeyPrefix,
    WORKER_ID: options.name,
    RUNNER_IDLE_EXIT_SECONDS: "1",
    RUNNER_POLL_SECONDS: "0.1",
    ...CAPACITY_ENV,
    ...options.env,
  });
  started.push(runner);
  return runner;
}

async function waitForRow(id: string, what: string, predicate: (row: QueueRow) => boolean, timeoutMs = 15_000): Promise<QueueRow> {
  await waitFor(what, async () => predicate(await jobRow(database.sql, id)), timeoutMs);
  return jobRow(database.sql, id);
}

/** Exit code, with the runner's output attached when the expectation fails. */
async function exitOf(runner: LifecycleTestRunner): Promise<{ code: number | null; output: string }> {
  const code = await runner.exited;
  return { code, output: runner.output.join("\n") };
}

function linesWith(runner: LifecycleTestRunner, msg: string, jobId?: string) {
  return runner.logs().filter((line) => line.msg === msg && (jobId === undefined || line["job_id"] === jobId));
}

describe("runner lifecycle", () => {
  test("exits after the idle period with nothing to claim and returns its capacity to the ledger", async () => {
    const ledger = ledgerWith();
    const lease = await acquireLease(ledger, "registre");
    expect(await liveLeaseIds(ledger)).toContain(lease.id);

    const runner = startRunner({ name: "idle-runner", kind: "registre", lease });

    expect(await exitOf(runner)).toMatchObject({ code: 0 });
    expect(await liveLeaseIds(ledger)).not.toContain(lease.id);
    expect(linesWith(runner, "nothing to claim; exiting idle")).toHaveLength(1);
  });

  test("exits after RUNNER_MAX_JOBS jobs, returning its capacity so dispatch can re-plan, and leaves the rest waiting", async () => {
    const ids = await insertJobs(database.sql, [acteJob("1 050 001"), acteJob("1 050 002"), acteJob("1 050 003")]);
    const ledger = ledgerWith();
    const lease = await acquireLease(ledger, "registre");
    const runner = startRunner({ name: "recycled-runner", kind: "registre", lease, env: { RUNNER_MAX_JOBS: "2", RUNNER_IDLE_EXIT_SECONDS: "30" } });

    expect(await exitOf(runner)).toMatchObject({ code: 0 });
    const rows = await Promise.all(ids.map((id) => jobRow(database.sql, id)));
    expect(rows.map((row) => row.status_id).sort()).toEqual([1, 3, 3]);
    // Nothing claimed and dropped: the waiting row never spent an attempt.
    expect(rows.find((row) => row.status_id === 1)).toMatchObject({ attempts: 0 });
    expect(await liveLeaseIds(ledger)).not.toContain(lease.id);
    expect(linesWith(runner, "took RUNNER_MAX_JOBS jobs; exiting so dispatch can re-plan the capacity")).toHaveLength(1);
  });

  test("keeps a job longer than its lease by heartbeating, so the reaper leaves it alone", async () => {
    const id = await insertJob(database.sql, indexJob("1 100 001"));
    const lease = await acquireLease(ledgerWith(), "registre");
    const runner = startRunner({ name: "heartbeat-runner", kind: "registre", lease, env: { JOB_LEASE_SECONDS: "2", TEST_JOB_DURATION_MS: "4500" } });
    await waitForRow(id, "the job to be claimed", (row) => row.status_id === 2);

    // The reaper runs throughout a job more than twice as long as its lease.
    let reaped = 0;
    while (runner.process.child.exitCode === null && (await jobRow(database.sql, id)).status_id === 2) {
      const [row] = await database.sql<{ reaped: number }[]>`select queue.reap_expired_leases() as reaped`;
      reaped += row?.reaped ?? 0;
      await delay(200);
    }

    expect(reaped).toBe(0);
    expect(await exitOf(runner)).toMatchObject({ code: 0 });
    expect(await jobRow(database.sql, id)).toMatchObject({ status_id: 3, attempts: 1, worker_id: "heartbeat-runner" });
  });

  // One slot: with registre's default of 3 both rows would be running when SIGTERM comes (runner-concurrency.test.ts covers that).
  test("on SIGTERM finishes the current job when it fits the grace period, and claims nothing more", async () => {
    const ids = await insertJobs(database.sql, [indexJob("1 200 001"), indexJob("1 200 002")]);
    const ledger = ledgerWith();
    const lease = await acquireLease(ledger, "registre");
    const runner = startRunner({ name: "draining-runner", kind: "registre", lease, env: { TEST_JOB_DURATION_MS: "1500", SHUTDOWN_GRACE_SECONDS: "20", RUNNER_CONCURRENCY: "1" } });
    await waitFor("a job to be claimed", async () => (await Promise.all(ids.map((id) => jobRow(database.sql, id)))).some((row) => row.status_id === 2));

    runner.signal("SIGTERM");

    expect(await exitOf(runner)).toMatchObject({ code: 0 });
    const rows = await Promise.all(ids.map((id) => jobRow(database.sql, id)));
    expect(rows.map((row) => ({ status_id: row.status_id, attempts: row.attempts })).sort((a, b) => b.status_id - a.status_id)).toEqual([
      { status_id: 3, attempts: 1 },
      { status_id: 1, attempts: 0 },
    ]);
    expect(rows.find((row) => row.status_id === 3)?.supabase_path).toMatch(/^index\/1200001|^index\/1200002/);
    expect(await liveLeaseIds(ledger)).not.toContain(lease.id);
  });

  test("on SIGTERM releases a job that cannot finish within the grace period, without spending an attempt", async () => {
    const id = await insertJob(database.sql, indexJob("1 300 001"));
    const before = await jobRow(database.sql, id);
    const ledger = ledgerWith();
    const lease = await acquireLease(ledger, "registre");
    const runner = startRunner({ name: "sigterm-runner", kind: "registre", lease, env: { TEST_JOB_DURATION_MS: "60000", SHUTDOWN_GRACE_SECONDS: "0.5" } });
    const claimed = await waitForRow(id, "the job to be claimed", (row) => row.status_id === 2);
    expect(claimed.attempts).toBe(before.attempts + 1);

    runner.signal("SIGTERM");

    expect(await exitOf(runner)).toMatchObject({ code: 0 });
    expect(await jobRow(database.sql, id)).toMatchObject({
      status_id: 1,
      attempts: before.attempts,
      extraction_lease_token: null,
      error_message: null,
    });
    expect(await liveLeaseIds(ledger)).not.toContain(lease.id);
    expect(linesWith(runner, "job released at shutdown", id)).toHaveLength(1);
  });

  test("after SIGKILL the job lease expires, the reaper requeues the job, and another runner completes it exactly once", async () => {
    const id = await insertJob(database.sql, indexJob("1 400 001"));
    const ledger = ledgerWith();
    const killed = startRunner({
      name: "killed-runner",
      kind: "registre",
      lease: await acquireLease(ledger, "registre"),
      env: { JOB_LEASE_SECONDS: "1", TEST_JOB_DURATION_MS: "60000" },
    });
    await waitForRow(id, "the first runner to claim the job", (row) => row.status_id === 2 && row.worker_id === "killed-runner");

    killed.signal("SIGKILL");
    expect(await killed.exited).toBeNull();
    await waitFor("the reaper to requeue the job", async () => {
      const [row] = await database.sql<{ reaped: number }[]>`select queue.reap_expired_leases() as reaped`;
      return (row?.reaped ?? 0) > 0;
    });
    const requeued = await jobRow(database.sql, id);
    // A stall, not an attempt: the runner died, the document did nothing wrong.
    expect(requeued).toMatchObject({ status_id: 1, attempts: 0, stalls: 1, worker_id: null });
    expect(requeued.error_message).toContain("killed-runner");

    const second = startRunner({ name: "second-runner", kind: "registre", lease: await acquireLease(ledger, "registre") });
    expect(await exitOf(second)).toMatchObject({ code: 0 });

    expect(await jobRow(database.sql, id)).toMatchObject({ status_id: 3, attempts: 1, stalls: 1, worker_id: "second-runner", extraction_lease_token: null });
    expect(linesWith(killed, "job completed")).toHaveLength(0);
    expect(linesWith(second, "job completed", id)).toHaveLength(1);
  });

  test("an infrastructure failure releases the job without spending an attempt and backs it off; repeated ones stop the runner", async () => {
    const ids = await insertJobs(database.sql, [indexJob("1 500 001"), indexJob("1 500 002")]);
    const ledger = ledgerWith();
    const lease = await acquireLease(ledger, "registre");
    const runner = startRunner({
      name: "broken-runner",
      kind: "registre",
      lease,
      env: { TEST_JOB_FAILURE: "infrastructure", TEST_JOB_DURATION_MS: "50", RUNNER_MAX_INFRASTRUCTURE_FAILURES: "2", RUNNER_IDLE_EXIT_SECONDS: "30" },
    });

    expect(await exitOf(runner)).toMatchObject({ code: RUNNER_EXIT_CODES.infrastructure });
    for (const id of ids) {
      const row = await jobRow(database.sql, id);
      expect(row).toMatchObject({
        status_id: 1,
        attempts: 0,
        infrastructure_releases: 1,
        worker_id: null,
        extraction_lease_token: null,
        error_message: expect.stringMatching(/^released after an infrastructure failure \(1 of 10 in a row; .*\): lifecycle test: the browser could not start$/),
      });
      // Not handed straight back to the next runner that hits the same fault.
      expect(row.available_at.getTime()).toBeGreaterThan(Date.now());
      expect(linesWith(runner, "job released after an infrastructure failure (no attempt spent)", id)).toHaveLength(1);
    }
    expect(await liveLeaseIds(ledger)).not.toContain(lease.id);
  });

  test("a retryable failure spends one attempt and waits out the backoff; a final one ends the job in Erreur", async () => {
    const retried = await insertJob(database.sql, indexJob("1 600 001"));
    const ledger = ledgerWith();
    const flaky = startRunner({ name: "flaky-runner", kind: "registre", lease: await acquireLease(ledger, "registre"), env: { TEST_JOB_FAILURE: "retryable", TEST_JOB_DURATION_MS: "50" } });
    expect(await exitOf(flaky)).toMatchObject({ code: 0 });
    const afterRetryable = await jobRow(database.sql, retried);
    expect(afterRetryable).toMatchObject({ status_id: 1, attempts: 1, error_message: "lifecycle test: the registry answered 503" });
    expect(afterRetryable.available_at.getTime()).toBeGreaterThan(Date.now());

    const doomed = await insertJob(database.sql, indexJob("1 600 002"));
    const strict = startRunner({ name: "strict-runner", kind: "registre", lease: await acquireLease(ledger, "registre"), env: { TEST_JOB_FAILURE: "final", TEST_JOB_DURATION_MS: "50" } });
    expect(await exitOf(strict)).toMatchObject({ code: 0 });
    expect(await jobRow(database.sql, doomed)).toMatchObject({ status_id: 4, attempts: 1, error_message: "lifecycle test: the document does not exist" });
    // The job in backoff was not claimed again.
    expect(await jobRow(database.sql, retried)).toMatchObject({ status_id: 1, attempts: 1 });
  });

  test("renews its ledger lease while working, and drains with a non-zero exit once the lease is gone", async () => {
    const ttl = { LEDGER_LEASE_TTL_SECONDS: "3" };
    const ledger = ledgerWith(ttl);
    const id = await insertJob(database.sql, indexJob("1 700 001"));
    const lease = await acquireLease(ledger, "registre");
    const runner = startRunner({ name: "lease-runner", kind: "registre", lease, env: { ...ttl, TEST_JOB_DURATION_MS: "60000", SHUTDOWN_GRACE_SECONDS: "0.5" } });
    await waitForRow(id, "the job to be claimed", (row) => row.status_id === 2);

    // Still live after its first TTL has run out: the runner renewed it.
    await waitFor(
      "the lease to outlive its first TTL",
      async () => Date.now() > lease.expiresAt + 500 && (await ledger.snapshot()).leases.some((live) => live.id === lease.id),
      10_000,
    );

    // Another party frees the capacity (or it expired): the runner must not keep working on it.
    expect(await ledger.release(lease.id)).toBe(true);

    expect(await exitOf(runner)).toMatchObject({ code: RUNNER_EXIT_CODES.ledgerLeaseLost });
    expect(await jobRow(database.sql, id)).toMatchObject({ status_id: 1, attempts: 0 });
  });

  test("logs one JSON object per line with job id, kind and environment, and neither secrets nor document text", async () => {
    const id = await insertJob(database.sql, acteJob("12 345 678"));
    // The PDF is in storage: the row waits for OCR.
    await database.sql`update extraction_queue set status_id = 3, supabase_path = 'actes/12345678-Laval-1700000000.pdf' where id = ${id}`;
    // The handler logs the database URL and the Upstash token, as a careless
    // handler might: without redaction the password and token would appear.
    const runner = startRunner({
      name: "ocr-runner",
      kind: "acte-ocr",
      lease: await acquireLease(ledgerWith(), "acte-ocr", "staging"),
      env: { TEST_JOB_ECHO_VARIABLES: "DATABASE_URL,UPSTASH_REDIS_REST_TOKEN" },
    });

    expect(await exitOf(runner)).toMatchObject({ code: 0 });
    const row = await jobRow(database.sql, id);
    expect(row.status_id).toBe(5);
    expect(row.file_content).toContain(id);

    const lines = runner.logs();
    expect(lines.length).toBeGreaterThan(3);
    for (const line of lines) {
      expect(line).toMatchObject({ time: expect.any(String), level: expect.any(String), msg: expect.any(String), kind: "acte-ocr", environment: "staging", worker_id: "ocr-runner" });
    }
    expect(linesWith(runner, "job claimed", id)).toHaveLength(1);
    expect(linesWith(runner, "job completed", id)).toHaveLength(1);

    const [echo] = linesWith(runner, "lifecycle test job echoes variables", id);
    expect(JSON.stringify(echo)).toContain(`:${REDACTED}@`);
    expect(echo).toMatchObject({ echoed: { UPSTASH_REDIS_REST_TOKEN: REDACTED } });
    const output = runner.output.join("\n");
    expect(output).not.toContain(login.password);
    expect(output).not.toContain(inject("upstashToken"));
    expect(output).not.toContain(row.file_content);
  });

  test("exits non-zero when the database stays unreachable for the whole idle period, without logging its password", async () => {
    const ledger = ledgerWith();
    const lease = await acquireLease(ledger, "registre");
    // A host that does not resolve, named like the password: the driver's
    // error ("getaddrinfo ENOTFOUND <host>") then quotes the secret, so this
    // run would print it if redaction failed.
    const password = `offline${randomBytes(8).toString("hex")}`;
    const unreachable = `postgres://runner:${password}@${password}.invalid:5432/postgres`;
    const runner = startRunner({ name: "offline-runner", kind: "registre", lease, env: { DATABASE_URL: unreachable } });

    expect(await exitOf(runner)).toMatchObject({ code: RUNNER_EXIT_CODES.infrastructure });
    const failures = linesWith(runner, "claim failed; backing off");
    expect(failures.length).toBeGreaterThan(0);
    expect(JSON.stringify(failures[0])).toContain(`ENOTFOUND ${REDACTED}.invalid`);
    expect(runner.output.join("\n")).not.toContain(password);
    expect(await liveLeaseIds(ledger)).not.toContain(lease.id);
  });
});
