/**
 * One registre task running several documents at once (REGISTRE_CONTEXTS 3)
 * on the local stack: a real runner process started by dispatch, Debian's
 * Chromium, the registry replica, the real SQL. Each slot is its own browser
 * context with its own account, login and cookies; a SIGTERM releases every
 * slot's job unspent; one slot's failure leaves the others alone.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { waitFor } from "../../infra/local/child-process.ts";
import { registryCatalogueEntry } from "../../infra/local/registry-replica/registry-catalogue.ts";
import { SITE_MESSAGES } from "../../infra/local/registry-replica/replica-pages.ts";
import { defaultTaskCommand, type LocalStack } from "../../infra/local/stack.ts";
import { startThrowawayStack } from "../../infra/local/throwaway-stack.ts";
import { chromiumDescendants, isRunning } from "./process-tree.ts";

interface Row {
  id: string;
  status_id: number;
  attempts: number;
  supabase_path: string | null;
  error_message: string | null;
  error_kind: string | null;
  worker_id: string | null;
}

let stack: LocalStack;
let sql: postgres.Sql;
let storageDir: string;

const registreTasks = () => stack.ecs.tasks().filter((task) => task.environment["JOB_KIND"] === "registre");
const runningRegistreTasks = () => registreTasks().filter((task) => task.lastStatus !== "STOPPED");

const acte = { source: "acte", number: "12 345 678", circonscription: "Montréal", acteType: "Acte" } as const;
const index = { source: "index", number: "1 234 567", circonscription: "Montréal", cadastre: "Cadastre du Québec" } as const;

async function insert(values: readonly { source: string; number: string; circonscription: string; cadastre?: string; acteType?: string }[]): Promise<string[]> {
  const ids: string[] = [];
  for (const value of values) {
    const [row] = await sql<{ id: string }[]>`
      insert into extraction_queue (document_source, document_number, circonscription_fonciere, cadastre, acte_type)
      values (${value.source}, ${value.number}, ${value.circonscription}, ${value.cadastre ?? null}, ${value.acteType ?? null})
      returning id`;
    if (row !== undefined) ids.push(row.id);
  }
  return ids;
}

/** The rows in the order of `ids`. */
async function rowsOf(ids: readonly string[]): Promise<Row[]> {
  const rows = await sql<Row[]>`select id, status_id, attempts, supabase_path, error_message, error_kind, worker_id from extraction_queue where id in ${sql(ids)}`;
  return ids.map((id) => rows.find((row) => row.id === id) as Row);
}

beforeAll(async () => {
  storageDir = await mkdtemp(join(tmpdir(), "registre-slots-storage-"));
  stack = await startThrowawayStack("registre-slots", {
    budgetEnv: {
      SERVER_MAX_CPU: "40",
      SERVER_MAX_RAM: "40",
      // One task: every overlap seen is between the slots of that one task.
      MAX_REGISTRE_TASKS: "1",
      REGISTRE_CONTEXTS: "3",
      RUNNER_IDLE_EXIT_SECONDS: "4",
      RUNNER_POLL_SECONDS: "0.3",
      SHUTDOWN_GRACE_SECONDS: "3",
      REGISTRE_NAVIGATION_TIMEOUT_SECONDS: "8",
      // Longer than the test holds a search hung: the slots are still waiting when SIGTERM comes.
      REGISTRE_RESULT_TIMEOUT_SECONDS: "60",
      REGISTRE_ACCOUNT_PACE_SECONDS: "0",
      STORAGE_LOCAL_DIR: storageDir,
      REGISTRE_DEBUG_DIR: join(storageDir, "debug"),
    },
    registry: { behaviour: { pdfDelivery: "inline" } },
    taskCommand: (family) => (family === "registre" ? defaultTaskCommand(family) : { command: process.execPath, args: ["-e", ""] }),
  });
  sql = postgres(stack.urls.database, { max: 2, onnotice: () => {} });
  // Rows repeat documents: each must be fetched, not reused from an earlier purchase.
  await sql`insert into registre_spend_policy (environment, reuse_window) values ('dev', interval '0 seconds') on conflict (environment) do update set reuse_window = excluded.reuse_window`;
}, 120_000);

afterAll(async () => {
  await sql?.end();
  await stack?.stop();
  await rm(storageDir, { recursive: true, force: true });
});

describe("one registre task, three browser contexts", () => {
  it("runs three searches at once, each slot logged in with its own account; SIGTERM releases every slot's job without spending an attempt", async () => {
    stack.registry.setBehaviour({ hangSearches: true });
    const ids = await insert([acte, index, acte, index]);
    onTestFinished(async () => {
      stack.registry.setBehaviour({ hangSearches: false });
      await sql`delete from extraction_queue where id in ${sql(ids)}`;
      await sql`update registre_spend_policy set daily_cap_cents = null where environment = 'dev'`;
    });
    await waitFor("three searches in flight at once", async () => stack.registry.stats().hangingRequests >= 3, 60_000);

    const tasks = runningRegistreTasks();
    expect(tasks).toHaveLength(1);
    const rows = await rowsOf(ids);
    const claimed = rows.filter((row) => row.status_id === 2);
    expect(claimed).toHaveLength(3);
    expect(new Set(claimed.map((row) => row.worker_id)).size).toBe(1);
    const workerId = claimed[0]?.worker_id ?? "missing";

    // Three accounts held by that one task's three slots, and three logins: nothing shared.
    const held = await sql<{ username: string; leased_by: string }[]>`select username, leased_by from registry_accounts where lease_expires_at > now() order by leased_by`;
    expect(held.map((account) => account.leased_by)).toEqual([`${workerId}#1`, `${workerId}#2`, `${workerId}#3`]);
    expect(new Set(held.map((account) => account.username)).size).toBe(3);
    const logins = stack.registry.stats().loginLog.map((login) => login.username);
    expect(new Set(logins)).toEqual(new Set(held.map((account) => account.username)));
    expect(logins).toHaveLength(3);
    expect(stack.registry.stats().displacedSessions).toBe(0);

    // No new registre task while the released rows are read: pg_cron's tick would start one for them
    // (a cap of 0 pauses registre dispatch; nothing is bought here, the searches hang).
    await sql`update registre_spend_policy set daily_cap_cents = 0 where environment = 'dev'`;
    const task = tasks[0];
    const taskPid = task?.pid ?? -1;
    const chromium = chromiumDescendants(taskPid);
    expect(chromium.length).toBeGreaterThan(0);
    process.kill(taskPid, "SIGTERM");
    await waitFor("the task to stop", async () => registreTasks().find((candidate) => candidate.arn === task?.arn)?.lastStatus === "STOPPED", 30_000);
    expect(registreTasks().find((candidate) => candidate.arn === task?.arn)?.exitCode).toBe(0);
    expect(chromium.filter(isRunning)).toEqual([]);
    const after = await rowsOf(ids);
    expect(after.map((row) => [row.status_id, row.attempts])).toEqual([
      [1, 0],
      [1, 0],
      [1, 0],
      [1, 0],
    ]);
    // Every account went back, logged out.
    expect(await sql`select 1 from registry_accounts where lease_expires_at > now() and leased_by like ${`${workerId}#%`}`).toHaveLength(0);
    expect(stack.registry.stats().logouts).toBe(3);
  }, 150_000);

  it("one slot's failures leave the other slots' documents to complete on their first attempt", async () => {
    await waitFor("earlier tasks gone", async () => runningRegistreTasks().length === 0, 30_000);
    stack.registry.setBehaviour({ resultDelayMs: 1_500 });
    const ids = await insert([
      acte,
      { source: "acte", number: "12 345 687", circonscription: "Montréal", acteType: "Acte" },
      index,
      { source: "index", number: "9 999 999", circonscription: "Laval", cadastre: "Cadastre du Québec" },
      acte,
    ]);
    await waitFor("every row to leave statuses 1 and 2", async () => (await rowsOf(ids)).every((row) => row.status_id !== 1 && row.status_id !== 2), 90_000);
    const rows = await rowsOf(ids);
    for (const good of [rows[0], rows[2], rows[4]]) {
      expect(good).toMatchObject({ status_id: 3, attempts: 1 });
      const documentId = good?.supabase_path?.startsWith("index/") ? "index-1234567-montreal" : "acte-12345678-montreal";
      const stored = await readFile(join(storageDir, good?.supabase_path ?? "missing"));
      expect(stored.equals(Buffer.from((await registryCatalogueEntry(documentId)).pdfBytes))).toBe(true);
    }
    // The typo never completes with another number; the unknown lot fails in the site's words.
    expect(rows[1]).toMatchObject({ status_id: 4, attempts: 1 });
    expect(rows[3]).toMatchObject({ status_id: 4, attempts: 1, error_message: SITE_MESSAGES.ficheInexistante, error_kind: "document_not_found" });
    // One task did it all (a failed row keeps no worker).
    expect(new Set([rows[0], rows[2], rows[4]].map((row) => row?.worker_id)).size).toBe(1);
    expect(stack.registry.stats().displacedSessions).toBe(0);
    stack.registry.setBehaviour({ resultDelayMs: 0 });
  }, 150_000);
});
