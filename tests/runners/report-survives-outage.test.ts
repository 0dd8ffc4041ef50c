/**
 * Finished work is never dropped: a runner whose job is done while Postgres
 * is down keeps trying to record it, with backoff, for as long as the job
 * lease lasts, and the heartbeat keeps that lease alive; when Postgres comes
 * back the result lands and no attempt is spent. And what a handler returns
 * after it was aborted is never recorded as a result.
 *
 * The outage needs a cluster of its own (stopping the shared test cluster
 * would break every other file), started, stopped and restarted on the same
 * port and data directory, as a database restart or failover looks to a
 * runner.
 */
import { randomBytes } from "node:crypto";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { waitFor } from "../../infra/local/child-process.ts";
import { freePort } from "../../infra/local/free-port.ts";
import { applyMigrations } from "../../infra/local/migrations.ts";
import { LOCAL_STACK_DIR } from "../../infra/local/paths.ts";
import { startPostgresCluster, type PostgresCluster } from "../../infra/local/postgres-cluster.ts";
import { RUNNER_EXIT_CODES, type JobHandler } from "../../runners/lifecycle/run-runner.ts";
import { indexJob, insertJob, jobRow } from "../sql/queue-fixtures.ts";
import { runInProcess } from "./in-process-runner.ts";

const OUTAGE_MS = 5_000;

let dataDir: string;
let port: number;
let cluster: PostgresCluster | undefined;
let admin: postgres.Sql;
let runnerUrl: string;

beforeAll(async () => {
  dataDir = join(LOCAL_STACK_DIR, "test-clusters", `outage-${process.pid}-${randomBytes(3).toString("hex")}`);
  port = await freePort();
  cluster = await startPostgresCluster({ dataDir, port, fast: true });
  await applyMigrations(cluster.url());
  admin = postgres(cluster.url(), { max: 2, onnotice: () => {} });
  const password = randomBytes(18).toString("base64url");
  await admin.unsafe(`create role outage_runner login inherit password '${password}' in role runner`);
  runnerUrl = cluster.url("postgres", "outage_runner", password);
}, 60_000);

afterAll(async () => {
  await admin?.end({ timeout: 1 });
  await cluster?.stop();
  await rm(dataDir, { recursive: true, force: true });
});

/** A promise and the function that resolves it. */
function signal(): { promise: Promise<void>; fire: () => void } {
  let fire: () => void = () => {};
  const promise = new Promise<void>((resolve) => {
    fire = resolve;
  });
  return { promise, fire };
}

describe("a result survives the database going away", () => {
  test("Postgres stopped for 5 s while a job completes: the result is recorded once it is back, and no attempt is spent", async () => {
    const id = await insertJob(admin, indexJob("5 000 001"));
    const working = signal();
    const databaseDown = signal();
    const handle: JobHandler = async (job) => {
      working.fire();
      // The work is done; it is reported only once Postgres is gone.
      await databaseDown.promise;
      return { kind: "extracted", supabasePath: `index/${job.documentNumberNormalized}-outage.pdf` };
    };
    const run = await runInProcess({ name: "outage-runner", kind: "registre", databaseUrl: runnerUrl, handle, env: { JOB_LEASE_SECONDS: "30" } });

    await working.promise;
    await admin.end({ timeout: 1 });
    await cluster?.stop();
    const stoppedAt = Date.now();
    databaseDown.fire();
    await waitFor("the runner to try reporting into the outage", async () => run.logs().some((line) => line.msg === "complete failed; retrying while the job lease lasts"), 10_000);
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, OUTAGE_MS - (Date.now() - stoppedAt))));
    cluster = await startPostgresCluster({ dataDir, port, fast: true });
    admin = postgres(cluster.url(), { max: 2, onnotice: () => {} });

    expect(await run.exited).toBe(RUNNER_EXIT_CODES.ok);
    expect(await jobRow(admin, id)).toMatchObject({
      status_id: 3,
      supabase_path: "index/5000001-outage.pdf",
      attempts: 1,
      stalls: 0,
      infrastructure_releases: 0,
      extraction_lease_token: null,
      worker_id: "outage-runner",
    });
    const lines = run.logs();
    expect(lines.filter((line) => line.msg === "complete failed; retrying while the job lease lasts").length).toBeGreaterThan(0);
    expect(lines.filter((line) => line.msg === "job completed" && line["job_id"] === id)).toHaveLength(1);
    // The heartbeat stopped only after the report: it never saw the lease as lost.
    expect(lines.filter((line) => line.msg === "job lease lost")).toEqual([]);
  }, 60_000);

  test("a handler that returns after it was aborted (drain grace over) has its result discarded and the job released", async () => {
    const id = await insertJob(admin, indexJob("5 000 002"));
    const working = signal();
    const handle: JobHandler = async (job, { signal: aborted }) => {
      working.fire();
      // A handler that notices the abort but returns a "result" anyway.
      await new Promise((resolve) => aborted.addEventListener("abort", resolve, { once: true }));
      return { kind: "extracted", supabasePath: `index/${job.documentNumberNormalized}-partial.pdf` };
    };
    const ttl = { LEDGER_LEASE_TTL_SECONDS: "3" };
    const run = await runInProcess({ name: "aborted-runner", kind: "registre", databaseUrl: runnerUrl, handle, env: { ...ttl, SHUTDOWN_GRACE_SECONDS: "0.2" } });
    await working.promise;

    // The capacity lease vanishes: the runner drains, the grace ends, the handler is aborted.
    expect(await run.revokeLedgerLease()).toBe(true);
    expect(await run.exited).toBe(RUNNER_EXIT_CODES.ledgerLeaseLost);

    expect(await jobRow(admin, id)).toMatchObject({ status_id: 1, attempts: 0, supabase_path: null, worker_id: null });
    const messages = run.logs().map((line) => line.msg);
    expect(messages).toContain("the handler returned after it was aborted; its result is not recorded");
    expect(messages).toContain("job released at shutdown");
    expect(messages).not.toContain("job completed");
  });
});
