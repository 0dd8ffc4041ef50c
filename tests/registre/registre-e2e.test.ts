/**
 * The registre runner on the local stack, end to end: rows inserted at 1,
 * dispatch starts registre tasks (real runner processes driving Debian's
 * Chromium against the registry replica), the PDFs land in local storage
 * byte for byte, rows end at 3 (5 for plans) or at 4 with the site's words.
 * Then the replica misbehaves: slow, hung, sessions expired, stopped.
 */
import { signHint } from "../../supabase/functions/_shared/hint-signature.ts";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import IoRedis from "ioredis";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "../../infra/local/child-process.ts";
import { registryCatalogueEntry } from "../../infra/local/registry-replica/registry-catalogue.ts";
import { SITE_MESSAGES } from "../../infra/local/registry-replica/replica-pages.ts";
import { defaultTaskCommand, type LocalStack } from "../../infra/local/stack.ts";
import { startThrowawayStack } from "../../infra/local/throwaway-stack.ts";
import { registryCooldownKey } from "../../supabase/functions/_shared/registry-cooldown.ts";
import { chromiumDescendants, isRunning } from "./process-tree.ts";

interface Row {
  id: string;
  document_number: string;
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
/** Every Chromium process seen under a registre task, to check none outlives its task. */
const chromiumSeen = new Set<number>();
let sampler: NodeJS.Timeout | undefined;

const registreTasks = () => stack.ecs.tasks().filter((task) => task.environment["JOB_KIND"] === "registre");
const runningRegistreTasks = () => registreTasks().filter((task) => task.lastStatus !== "STOPPED");

async function insert(values: { source: string; number: string; circonscription: string; cadastre?: string; acteType?: string }[]): Promise<string[]> {
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

const rowsOf = (ids: string[]) =>
  sql<Row[]>`select id, document_number, status_id, attempts, supabase_path, error_message, error_kind, worker_id from extraction_queue where id in ${sql(ids)}`;
const rowOf = async (id: string) => (await rowsOf([id]))[0];

/**
 * One dispatch that plans. A call that finds the lock held by a hint's
 * dispatch only leaves a mark ({ skipped }) and the holder dispatches again;
 * this asks again until it gets a plan of its own, so the test can read it.
 */
const callDispatch = async (): Promise<Response> => {
  const body = JSON.stringify({ reason: "test tick" });
  for (let attempt = 1; ; attempt += 1) {
    const response = await fetch(`${stack.urls.functions}/functions/v1/dispatch`, {
      method: "POST",
      headers: { "content-type": "application/json", ...(await signHint(stack.secrets.dispatchSecret, Date.now() / 1000, body)) },
      body,
    });
    const text = await response.text();
    const skipped = response.ok && (JSON.parse(text) as { skipped?: string }).skipped !== undefined;
    if (!skipped || attempt >= 40) return new Response(text, { status: response.status, headers: response.headers });
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
};

beforeAll(async () => {
  storageDir = await mkdtemp(join(tmpdir(), "registre-e2e-storage-"));
  stack = await startThrowawayStack("registre-e2e", {
    budgetEnv: {
      SERVER_MAX_CPU: "40",
      SERVER_MAX_RAM: "40",
      MAX_REGISTRE_TASKS: "2",
      // One context per task: these tests follow one task's session (registre-slots.test.ts runs several).
      REGISTRE_CONTEXTS: "1",
      RUNNER_IDLE_EXIT_SECONDS: "5",
      RUNNER_POLL_SECONDS: "0.3",
      SHUTDOWN_GRACE_SECONDS: "10",
      REGISTRE_NAVIGATION_TIMEOUT_SECONDS: "8",
      REGISTRE_RESULT_TIMEOUT_SECONDS: "3",
      REGISTRY_COOLDOWN_SECONDS: "4",
      STORAGE_LOCAL_DIR: storageDir,
      REGISTRE_DEBUG_DIR: join(storageDir, "debug"),
    },
    // The PDF served inline: Debian Chromium's new headless mode fires no download event for it (issue 17).
    registry: { behaviour: { pdfDelivery: "inline" } },
    // OCR tasks start nothing, so extracted rows stay at 3 for the assertions.
    taskCommand: (family) => (family === "registre" ? defaultTaskCommand(family) : { command: process.execPath, args: ["-e", ""] }),
  });
  sql = postgres(stack.urls.database, { max: 2, onnotice: () => {} });
  // This file tests fetching: its rows repeat documents, which must not be served from the reuse of
  // earlier purchases (registry-purchases.test.ts tests that).
  await sql`insert into registre_spend_policy (environment, reuse_window) values ('dev', interval '0 seconds') on conflict (environment) do update set reuse_window = excluded.reuse_window`;
  sampler = setInterval(() => {
    for (const task of runningRegistreTasks()) if (task.pid !== undefined) for (const pid of chromiumDescendants(task.pid)) chromiumSeen.add(pid);
  }, 200);
}, 120_000);

afterAll(async () => {
  if (sampler !== undefined) clearInterval(sampler);
  await sql?.end();
  await stack?.stop();
  await rm(storageDir, { recursive: true, force: true });
});

describe("the registre runner on the local stack", () => {
  it("fetches every document type through dispatch, fails unknown ones for good in the site's words, two tasks never share an account, and leaves no Chromium behind", async () => {
    const ids = await insert([
      { source: "index", number: "1 234 567", circonscription: "Montréal", cadastre: "Cadastre du Québec" },
      { source: "acte", number: "12 345 678", circonscription: "Montréal", acteType: "Acte" },
      { source: "acte", number: "7 654 321", circonscription: "Montreal", acteType: "Acte" },
      { source: "plan_cadastraux", number: "2 345 678", circonscription: "Québec", cadastre: "Cadastre du Québec" },
      { source: "index", number: "9 999 999", circonscription: "Laval", cadastre: "Cadastre du Québec" },
      { source: "acte", number: "1", circonscription: "Montréal", acteType: "Radiation" },
      { source: "plan_cadastraux", number: "1", circonscription: "Lévis", cadastre: "Cadastre du Québec" },
    ]);
    // Both tasks hold an account at once: different accounts, different runners.
    await waitFor(
      "two registre tasks holding registry accounts at once",
      async () => {
        const held = await sql<{ username: string; leased_by: string }[]>`select username, leased_by from registry_accounts where lease_expires_at > now()`;
        return held.length === 2 && new Set(held.map((row) => row.leased_by)).size === 2 && new Set(held.map((row) => row.username)).size === 2;
      },
      45_000,
    );
    await waitFor("every row to leave statuses 1 and 2", async () => (await rowsOf(ids)).every((row) => row.status_id !== 1 && row.status_id !== 2), 60_000);
    const rows = new Map((await rowsOf(ids)).map((row) => [row.id, row]));
    const byIndex = (index: number) => rows.get(ids[index] ?? "") as Row;

    const expected = ["index-1234567-montreal", "acte-12345678-montreal", "acte-7654321-montreal", "plan-2345678-quebec"];
    for (const [index, documentId] of expected.entries()) {
      const row = byIndex(index);
      expect(row.status_id, JSON.stringify(row)).toBe(documentId.startsWith("plan") ? 5 : 3);
      expect(row.attempts).toBe(1);
      const stored = await readFile(join(storageDir, row.supabase_path ?? "missing"));
      expect(stored.equals(Buffer.from((await registryCatalogueEntry(documentId)).pdfBytes))).toBe(true);
    }
    expect(byIndex(0).supabase_path).toMatch(/^index\/1234567-Montr_al-Cadastre_du_Qu_bec-\d+\.pdf$/);
    expect(byIndex(1).supabase_path).toMatch(/^actes\/12345678-Montr_al-\d+\.pdf$/);
    expect(byIndex(3).supabase_path).toMatch(/^plans-cadastraux\/2345678-Qu_bec-Cadastre_du_Qu_bec-\d+\.pdf$/);

    for (const [index, message] of [[4, SITE_MESSAGES.ficheInexistante], [5, SITE_MESSAGES.documentInexistant], [6, SITE_MESSAGES.aucuneInformation]] as const) {
      expect(byIndex(index)).toMatchObject({ status_id: 4, attempts: 1, error_message: message, error_kind: "document_not_found" });
    }
    expect(registreTasks().length).toBeGreaterThanOrEqual(2);
    expect(stack.registry.stats().displacedSessions).toBe(0);

    // Idle tasks exit, closing their browser: no Chromium process they started remains.
    await waitFor("every registre task to exit", async () => runningRegistreTasks().length === 0, 30_000);
    expect(registreTasks().every((task) => task.exitCode === 0)).toBe(true);
    expect(chromiumSeen.size).toBeGreaterThan(0);
    expect([...chromiumSeen].filter(isRunning)).toEqual([]);
  }, 120_000);

  it("waits through a slow result, retries a hung one after its timeout, and logs in again when the session expired", async () => {
    stack.registry.setBehaviour({ resultDelayMs: 1_500 });
    const [slowId = ""] = await insert([{ source: "acte", number: "12 345 678", circonscription: "Montréal", acteType: "Acte" }]);
    await waitFor("the slow row to complete", async () => (await rowOf(slowId))?.status_id === 3, 40_000);
    expect(await rowOf(slowId)).toMatchObject({ attempts: 1 });
    const slowWorker = (await rowOf(slowId))?.worker_id;

    // The same task, idle now, takes the next row after its session ended.
    const expiredBefore = stack.registry.stats().expiredSessionHits;
    const loginsBefore = stack.registry.stats().loginLog.length;
    stack.registry.setBehaviour({ resultDelayMs: 0 });
    stack.registry.expireSessions();
    const [expiredId = ""] = await insert([{ source: "index", number: "1 234 567", circonscription: "Montréal", cadastre: "Cadastre du Québec" }]);
    await waitFor("the row after the expiry to complete", async () => (await rowOf(expiredId))?.status_id === 3, 30_000);
    expect(await rowOf(expiredId)).toMatchObject({ attempts: 1, worker_id: slowWorker });
    expect(stack.registry.stats().expiredSessionHits).toBeGreaterThan(expiredBefore);
    expect(stack.registry.stats().loginLog.length).toBe(loginsBefore + 1);

    stack.registry.setBehaviour({ hangSearches: true });
    const [hungId = ""] = await insert([{ source: "plan_cadastraux", number: "2 345 678", circonscription: "Québec", cadastre: "Cadastre du Québec" }]);
    await waitFor("the hung row to fail its first attempt", async () => (await rowOf(hungId))?.error_message != null, 30_000);
    expect(await rowOf(hungId)).toMatchObject({ status_id: 1, attempts: 1 });
    expect((await rowOf(hungId))?.error_message).toMatch(/did not answer in time|none of/);
    stack.registry.setBehaviour({ hangSearches: false });
    // The retry policy's 30 s backoff, passed at once: what is tested is that the row is retried and succeeds.
    await sql`update extraction_queue set available_at = now() where id = ${hungId}`;
    await callDispatch();
    await waitFor("the retried row to complete", async () => (await rowOf(hungId))?.status_id === 5, 40_000);
    expect(await rowOf(hungId)).toMatchObject({ attempts: 2 });
  }, 120_000);

  it("spends no attempt when the registry goes away mid-search, and pauses registre dispatch until the cooldown ends", async () => {
    stack.registry.setBehaviour({ hangSearches: true });
    const [id = ""] = await insert([{ source: "acte", number: "12 345 678", circonscription: "Montréal", acteType: "Acte" }]);
    await waitFor("a search in flight", async () => stack.registry.stats().hangingRequests > 0, 30_000);
    await stack.registry.stop();
    const redis = new IoRedis(stack.urls.redis);
    try {
      await waitFor("the job released", async () => (await rowOf(id))?.status_id === 1 && (await redis.pttl(registryCooldownKey("", "dev"))) > 0, 20_000);
      expect(await rowOf(id)).toMatchObject({ attempts: 0 });

      // While the pause lasts, dispatch starts no registre task even with a row waiting.
      const tasksBefore = registreTasks().length;
      const response = await callDispatch();
      const outcome = (await response.json()) as { plan?: { start?: Record<string, number> } };
      expect(outcome.plan?.start?.["registre"]).toBe(0);
      expect(registreTasks().length).toBe(tasksBefore);

      await stack.registry.restart();
      stack.registry.setBehaviour({ hangSearches: false });
      await waitFor("the cooldown to end", async () => (await redis.pttl(registryCooldownKey("", "dev"))) < 0, 15_000);
    } finally {
      redis.disconnect();
    }
    // pg_cron's tick, without its minute: while the row waits and no registre task is left to take it
    // (the one that met the outage may still be backing off, or exiting after its infrastructure failures).
    await waitFor(
      "the row to complete after the outage",
      async () => {
        const row = await rowOf(id);
        if (row?.status_id === 1 && runningRegistreTasks().length === 0) await callDispatch();
        return row?.status_id === 3;
      },
      60_000,
    );
    expect(await rowOf(id)).toMatchObject({ attempts: 1 });
  }, 180_000);

  it("counts a refused login against the account, not the document, and goes on with the next account", async () => {
    await waitFor("earlier tasks gone", async () => runningRegistreTasks().length === 0, 30_000);
    // The account the next lease hands out (least recently used first) is locked at the registry.
    const [next] = await sql<{ username: string }[]>`
      select username from registry_accounts where is_active and (lease_expires_at is null or lease_expires_at <= now()) order by last_used_at nulls first, id limit 1`;
    const locked = next?.username ?? "missing";
    stack.registry.setBehaviour({ refusedUsernames: [locked] });
    try {
      const [id = ""] = await insert([{ source: "acte", number: "12 345 678", circonscription: "Montréal", acteType: "Acte" }]);
      await waitFor("the row to complete with another account", async () => (await rowOf(id))?.status_id === 3, 40_000);
      expect(await rowOf(id)).toMatchObject({ attempts: 1 });
      const [account] = await sql<{ failure_count: number; last_error: string | null }[]>`select failure_count, last_error from registry_accounts where username = ${locked}`;
      expect(account?.failure_count).toBe(1);
      expect(account?.last_error).toMatch(/refused the login/);
    } finally {
      stack.registry.setBehaviour({ refusedUsernames: [] });
    }
  }, 90_000);

  it("closes Chromium when a task drains after SIGTERM", async () => {
    await waitFor("earlier tasks gone", async () => runningRegistreTasks().length === 0, 30_000);
    stack.registry.setBehaviour({ resultDelayMs: 2_000 });
    const [id = ""] = await insert([{ source: "acte", number: "12 345 678", circonscription: "Montréal", acteType: "Acte" }]);
    await waitFor("the row to be claimed", async () => (await rowOf(id))?.status_id === 2, 30_000);
    const task = runningRegistreTasks()[0];
    const taskPid = task?.pid ?? -1;
    let pids: number[] = [];
    await waitFor("the task's Chromium", async () => (pids = chromiumDescendants(taskPid)).length > 0, 15_000);
    process.kill(taskPid, "SIGTERM");
    await waitFor("the task to stop", async () => registreTasks().find((candidate) => candidate.arn === task?.arn)?.lastStatus === "STOPPED", 30_000);
    expect(registreTasks().find((candidate) => candidate.arn === task?.arn)?.exitCode).toBe(0);
    expect(pids.filter(isRunning)).toEqual([]);
    // The job finished within the grace period, or went back unspent.
    const row = await rowOf(id);
    expect([1, 3]).toContain(row?.status_id);
    // Released means unspent (Playwright's own SIGTERM handler used to close Chromium under the job: a failed attempt).
    expect(row?.attempts).toBe(row?.status_id === 1 ? 0 : 1);
    stack.registry.setBehaviour({ resultDelayMs: 0 });
  }, 90_000);
});
