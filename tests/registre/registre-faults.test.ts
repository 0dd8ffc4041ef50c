/**
 * Faults on the real registre runner (issue 19, Faults): dispatch starts real
 * registre tasks (runners/registre/main.ts driving Debian's Chromium) against
 * the registry replica, then
 * - SIGTERM while a search is in flight: the job is released (no attempt,
 *   no stall), Chromium closed, the row later completes once;
 * - SIGKILL of the whole task (runner and Chromium, as a container dies):
 *   the lease lapses, the reaper counts a stall (no attempt), another task
 *   completes the row once, with one purchase;
 * - the registry in maintenance, or answering 503: released as
 *   `registry_unavailable` with no attempt spent, this environment's
 *   registre cooldown set and honoured by dispatch, the row completing
 *   once the site is back.
 * - Storage unwritable once the document is bought: released as
 *   `infrastructure`, no attempt, completed once Storage is back (the retry
 *   buys nothing: the bought PDF was parked on its purchase).
 * Throughout, a sampler reads the capacity ledger: never over-committed.
 * The replica's maintenance page and 503 follow the evidence cited in
 * infra/local/registry-replica/replica-pages.ts (maintenancePage).
 */
import { Redis } from "@upstash/redis";
import IoRedis from "ioredis";
import { appendFileSync } from "node:fs";
import { mkdtemp, readFile, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "../../infra/local/child-process.ts";
import { registryCatalogueEntry } from "../../infra/local/registry-replica/registry-catalogue.ts";
import { defaultTaskCommand, type LocalStack } from "../../infra/local/stack.ts";
import { startThrowawayStack } from "../../infra/local/throwaway-stack.ts";
import { parseCapacityConfig } from "../../supabase/functions/_shared/capacity-config.ts";
import { CapacityLedger } from "../../supabase/functions/_shared/capacity-ledger.ts";
import { registryCooldownKey } from "../../supabase/functions/_shared/registry-cooldown.ts";
import { chromiumDescendants, isRunning } from "./process-tree.ts";

interface Row {
  status_id: number;
  attempts: number;
  stalls: number;
  infrastructure_releases: number;
  error_kind: string | null;
  error_message: string | null;
  supabase_path: string | null;
}

const BUDGET_ENV = {
  SERVER_MAX_CPU: "40",
  SERVER_MAX_RAM: "40",
  MAX_REGISTRE_TASKS: "2",
  // A killed task's capacity lease lapses within this (or the stopped-task sweep returns it).
  LEDGER_LEASE_TTL_SECONDS: "20",
  RUNNER_IDLE_EXIT_SECONDS: "4",
  RUNNER_POLL_SECONDS: "0.3",
  SHUTDOWN_GRACE_SECONDS: "1",
  // A SIGKILLed task's job lease lapses quickly, for the reaper.
  JOB_LEASE_SECONDS: "6",
  REGISTRE_NAVIGATION_TIMEOUT_SECONDS: "8",
  // Longer than the held searches below: the signal, not a timeout, ends them.
  REGISTRE_RESULT_TIMEOUT_SECONDS: "30",
  REGISTRY_COOLDOWN_SECONDS: "5",
  REGISTRE_TRACES: "off",
  REGISTRE_ACCOUNT_PACE_SECONDS: "0",
};

let stack: LocalStack;
let sql: postgres.Sql;
let redis: IoRedis;
let storageDir: string;
let sampling = true;
let samples = 0;
let overAllocations = 0;
let sampler: Promise<void> | undefined;

const registreTasks = () => stack.ecs.tasks().filter((task) => task.environment["JOB_KIND"] === "registre");
const runningRegistreTasks = () => registreTasks().filter((task) => task.lastStatus !== "STOPPED");
/** The task holding the row: its worker id is the runner's hostname-pid (WORKER_ID's default). */
async function taskWorkingOn(id: string) {
  const [row] = await sql<{ worker_id: string | null }[]>`select worker_id from extraction_queue where id = ${id}`;
  const pid = Number(/-(\d+)$/.exec(row?.worker_id ?? "")?.[1] ?? -1);
  const task = runningRegistreTasks().find((candidate) => candidate.pid === pid);
  if (task === undefined) throw new Error(`no running task for worker ${row?.worker_id ?? "none"}`);
  return task;
}
const rowOf = async (id: string) =>
  (await sql<Row[]>`select status_id, attempts, stalls, infrastructure_releases, error_kind, error_message, supabase_path from extraction_queue where id = ${id}`)[0];
const purchasesOf = async (id: string) => Number((await sql<{ n: string }[]>`select count(*) as n from registry_purchases where job_id = ${id}`)[0]?.n ?? -1);

async function insertActe(): Promise<string> {
  const [row] = await sql<{ id: string }[]>`
    insert into extraction_queue (document_source, document_number, circonscription_fonciere, acte_type)
    values ('acte', '12 345 678', 'Montréal', 'Acte') returning id`;
  if (row === undefined) throw new Error("insert returned no row");
  return row.id;
}

/** pg_cron's work without its minute: the reaper and the dispatch tick. */
async function tick(): Promise<void> {
  await sql`select queue.reap_expired_leases()`;
  await sql`select private.dispatch_tick()`;
}

async function completesOnce(id: string, purchases = 1): Promise<Row> {
  await waitFor(
    "the row to complete",
    async () => {
      const row = await rowOf(id);
      if (row?.status_id === 1 && runningRegistreTasks().length === 0) await tick();
      return row?.status_id === 3;
    },
    90_000,
  );
  const row = await rowOf(id);
  if (row === undefined) throw new Error("row vanished");
  const stored = await readFile(join(storageDir, row.supabase_path ?? "missing"));
  expect(stored.equals(Buffer.from((await registryCatalogueEntry("acte-12345678-montreal")).pdfBytes))).toBe(true);
  // Bought once, whatever happened to the runs before (but see the Storage test).
  expect(await purchasesOf(id)).toBe(purchases);
  return row;
}

beforeAll(async () => {
  storageDir = await mkdtemp(join(tmpdir(), "registre-faults-storage-"));
  const logFile = process.env["REGISTRE_FAULTS_LOG"];
  stack = await startThrowawayStack("registre-faults", {
    // REGISTRE_FAULTS_LOG=<file> keeps every stack and task line, to see why a run failed.
    ...(logFile === undefined ? {} : { log: (entry: object) => appendFileSync(logFile, `${JSON.stringify(entry)}\n`) }),
    budgetEnv: { ...BUDGET_ENV, STORAGE_LOCAL_DIR: storageDir, REGISTRE_DEBUG_DIR: join(storageDir, "debug") },
    registry: { behaviour: { pdfDelivery: "inline" } },
    // OCR tasks start nothing, so extracted rows stay at 3.
    taskCommand: (family) => (family === "registre" ? defaultTaskCommand(family) : { command: process.execPath, args: ["-e", ""] }),
  });
  sql = postgres(stack.urls.database, { max: 2, onnotice: () => {} });
  redis = new IoRedis(stack.urls.redis);
  // Each run must fetch: no reuse of an earlier purchase of the same document.
  await sql`insert into registre_spend_policy (environment, reuse_window) values ('dev', interval '0 seconds') on conflict (environment) do update set reuse_window = excluded.reuse_window`;
  const ledger = new CapacityLedger(new Redis({ url: stack.urls.upstash, token: stack.secrets.upstashToken, enableTelemetry: false }), parseCapacityConfig(BUDGET_ENV));
  sampler = (async () => {
    while (sampling) {
      const snapshot = await ledger.snapshot();
      samples += 1;
      if (snapshot.allocated.vcpu > snapshot.capacity.vcpu + 1e-9 || snapshot.allocated.ramGb > snapshot.capacity.ramGb + 1e-9) overAllocations += 1;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  })();
}, 120_000);

afterAll(async () => {
  sampling = false;
  await sampler;
  redis?.disconnect();
  await sql?.end();
  await stack?.stop();
  await rm(storageDir, { recursive: true, force: true });
});

describe("the registre runner under faults", () => {
  it("SIGTERM mid-search: released with no attempt and no stall, Chromium closed, then completed once", async () => {
    stack.registry.setBehaviour({ hangSearches: true });
    const id = await insertActe();
    await waitFor("a search in flight", async () => stack.registry.stats().hangingRequests > 0, 45_000);
    const task = await taskWorkingOn(id);
    const taskPid = task.pid ?? -1;
    const chromium = chromiumDescendants(taskPid);
    expect(chromium.length).toBeGreaterThan(0);
    process.kill(taskPid, "SIGTERM");
    await waitFor("the task to stop", async () => registreTasks().find((candidate) => candidate.arn === task.arn)?.lastStatus === "STOPPED", 30_000);
    expect(registreTasks().find((candidate) => candidate.arn === task.arn)?.exitCode).toBe(0);
    expect(chromium.filter(isRunning)).toEqual([]);
    const released = await rowOf(id);
    expect(released, JSON.stringify(released)).toMatchObject({ status_id: 1, attempts: 0, stalls: 0, infrastructure_releases: 0 });
    expect(await purchasesOf(id)).toBe(0);

    stack.registry.setBehaviour({ hangSearches: false });
    expect(await completesOnce(id)).toMatchObject({ status_id: 3, attempts: 1, stalls: 0 });
  }, 180_000);

  it("SIGKILL of the whole task mid-search: a stall, no attempt, another task completes it once", async () => {
    await waitFor("earlier tasks gone", async () => runningRegistreTasks().length === 0, 30_000);
    stack.registry.setBehaviour({ hangSearches: true });
    const id = await insertActe();
    await waitFor("a search in flight", async () => stack.registry.stats().hangingRequests > 0, 45_000);
    const task = await taskWorkingOn(id);
    const taskPid = task.pid ?? -1;
    // A container's death kills every process in it: the runner and its Chromium at once.
    const chromium = chromiumDescendants(taskPid);
    expect(chromium.length).toBeGreaterThan(0);
    for (const pid of [taskPid, ...chromium]) process.kill(pid, "SIGKILL");
    await waitFor("the task to stop", async () => registreTasks().find((candidate) => candidate.arn === task.arn)?.lastStatus === "STOPPED", 30_000);
    expect(await rowOf(id)).toMatchObject({ status_id: 2, attempts: 1 });
    stack.registry.setBehaviour({ hangSearches: false });

    // The job lease (6 s) lapses; the reaper takes the job back as a stall, giving back the attempt it never finished.
    await waitFor(
      "the reaper to requeue the job",
      async () => {
        await sql`select queue.reap_expired_leases()`;
        return (await rowOf(id))?.status_id !== 2;
      },
      30_000,
    );
    expect(await rowOf(id)).toMatchObject({ attempts: 0, stalls: 1 });
    expect(await completesOnce(id)).toMatchObject({ status_id: 3, attempts: 1, stalls: 1 });
  }, 180_000);

  it.each(["maintenance", "http503"] as const)(
    "the registry %s: released as registry_unavailable with no attempt, this environment's registre dispatch paused, completed once after",
    async (outage) => {
      await waitFor("earlier tasks gone", async () => runningRegistreTasks().length === 0, 30_000);
      await redis.del(registryCooldownKey("", "dev"));
      stack.registry.setBehaviour({ outage });
      const id = await insertActe();
      await waitFor(
        "the job released with the cooldown set",
        async () => (await rowOf(id))?.error_kind === "registry_unavailable" && (await redis.pttl(registryCooldownKey("", "dev"))) > 0,
        45_000,
      );
      expect(await rowOf(id)).toMatchObject({ status_id: 1, attempts: 0, stalls: 0 });
      expect((await rowOf(id))?.infrastructure_releases).toBeGreaterThanOrEqual(1);
      expect(await purchasesOf(id)).toBe(0);

      // While the cooldown lasts, dispatch starts no registre task for this environment.
      await waitFor("the task to give up", async () => runningRegistreTasks().length === 0, 30_000);
      const before = registreTasks().length;
      await sql`update extraction_queue set available_at = now() where id = ${id}`;
      await tick();
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      if ((await redis.pttl(registryCooldownKey("", "dev"))) > 0) expect(registreTasks().length).toBe(before);

      stack.registry.setBehaviour({ outage: "none" });
      await waitFor("the cooldown to end", async () => (await redis.pttl(registryCooldownKey("", "dev"))) < 0, 20_000);
      await sql`update extraction_queue set available_at = now() where id = ${id} and status_id = 1`;
      expect(await completesOnce(id)).toMatchObject({ status_id: 3, attempts: 1, stalls: 0 });
    },
    180_000,
  );

  it("Storage unwritable after the purchase: released as infrastructure with no attempt, completed once after, bought once", async () => {
    await waitFor("earlier tasks gone", async () => runningRegistreTasks().length === 0, 30_000);
    // The actes folder becomes a file: every write under it fails (ENOTDIR), as a Storage outage does.
    const actes = join(storageDir, "actes");
    await rename(actes, `${actes}-kept`);
    await writeFile(actes, "not a folder");
    try {
      const id = await insertActe();
      await waitFor("the job released", async () => ((await rowOf(id))?.infrastructure_releases ?? 0) > 0, 45_000);
      const released = await rowOf(id);
      expect(released, JSON.stringify(released)).toMatchObject({ status_id: 1, attempts: 0, stalls: 0, error_kind: "infrastructure" });
      expect(released?.error_message).toMatch(/local storage could not write/);
      await rm(actes);
      await rename(`${actes}-kept`, actes);
      await sql`update extraction_queue set available_at = now() where id = ${id} and status_id = 1`;
      // The bytes bought before the outage were parked on the purchase: the retry stores them and buys nothing.
      expect(await completesOnce(id, 1)).toMatchObject({ status_id: 3, attempts: 1, stalls: 0 });
      const [parked] = await sql<{ count: number }[]>`select count(*)::int as count from registry_purchases where job_id = ${id} and parked_pdf is not null`;
      expect(parked?.count).toBe(0);
    } finally {
      await rm(actes, { force: true }).catch(() => {});
    }
  }, 150_000);

  it("never over-committed the capacity ledger", () => {
    expect(samples).toBeGreaterThan(10);
    expect(overAllocations).toBe(0);
  });
});
