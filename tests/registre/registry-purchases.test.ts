/**
 * Money: every document bought is recorded (row, account, environment,
 * time, document) and shows in the spend view; an identical request
 * completed within the reuse window gets the stored PDF, and once OCRed its
 * text, without a second purchase; a retry after the purchase point resumes
 * from what was bought; the daily cap stops registre work. Against the real
 * Postgres (a fresh database), the replica, Chromium and the local Upstash.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { seedLocalRegistryAccounts } from "../../infra/local/registry-replica/local-registry-accounts.ts";
import { startRegistryReplica, type RegistryReplica } from "../../infra/local/registry-replica/replica-server.ts";
import { RegistryCooldown } from "../../supabase/functions/_shared/registry-cooldown.ts";
import { registreSpendCapped } from "../../supabase/functions/_shared/dispatch.ts";
import { classifyFailure } from "../../runners/lifecycle/job-errors.ts";
import { connectJobDatabase, JobQueue, type ClaimedJob } from "../../runners/lifecycle/job-queue.ts";
import { createLogger } from "../../runners/lifecycle/structured-log.ts";
import { createDocumentStorage } from "../../runners/storage/create-document-storage.ts";
import { parseRegistreConfig } from "../../runners/registre/registre-config.ts";
import { registreJobHandler } from "../../runners/registre/registre-job-handler.ts";
import { RegistryAccounts } from "../../runners/registre/registry-accounts.ts";
import { RegistryPurchases } from "../../runners/registre/registry-purchases.ts";
import { RegistrySession } from "../../runners/registre/registry-session.ts";
import type { JobHandler } from "../../runners/lifecycle/run-runner.ts";
import { createFreshDatabase, type FreshDatabase } from "../helpers/fresh-database.ts";
import { randomKeyPrefix, upstashClient } from "../helpers/upstash-client.ts";

let db: FreshDatabase;
let replica: RegistryReplica;
let storageDir: string;
let session: RegistrySession;
let queue: JobQueue;
let handle: JobHandler;
let sqlForRunner: ReturnType<typeof connectJobDatabase>;
const log = createLogger({ base: { test: "registry-purchases" }, write: () => {} });

async function insertActe(number: string): Promise<string> {
  const [row] = await db.sql<{ id: string }[]>`
    insert into extraction_queue (document_source, document_number, circonscription_fonciere, acte_type)
    values ('acte', ${number}, 'Montréal', 'Acte') returning id`;
  return row?.id ?? "missing";
}

async function claim(id: string): Promise<ClaimedJob> {
  const job = await queue.claim();
  if (job?.id !== id) throw new Error(`expected to claim ${id}, got ${job?.id ?? "nothing"}`);
  return job;
}

const run = (job: ClaimedJob) => handle(job, { signal: new AbortController().signal, log });
const purchasesOf = () => db.sql<{ job_id: string; account_id: string | null; environment: string; supabase_path: string | null; amount_cents: number }[]>`select * from registry_purchases order by id`;
const setPolicy = (reuse: string, capCents: number | null) =>
  db.sql`insert into registre_spend_policy (environment, reuse_window, daily_cap_cents) values ('dev', ${reuse}::interval, ${capCents})
         on conflict (environment) do update set reuse_window = excluded.reuse_window, daily_cap_cents = excluded.daily_cap_cents`;

beforeAll(async () => {
  db = await createFreshDatabase();
  const accounts = await seedLocalRegistryAccounts(db.url, 1);
  replica = await startRegistryReplica({ accounts });
  storageDir = await mkdtemp(join(tmpdir(), "registry-purchases-"));
  const config = parseRegistreConfig({ REGISTRY_BASE_URL: replica.url, REGISTRE_DEBUG_DIR: join(storageDir, "debug"), REGISTRE_NAVIGATION_TIMEOUT_SECONDS: "5", REGISTRE_RESULT_TIMEOUT_SECONDS: "5" });
  sqlForRunner = connectJobDatabase(db.url, { max: 2 });
  queue = new JobQueue(sqlForRunner, { kind: "registre", workerId: "purchases-test", leaseSeconds: 120 });
  session = new RegistrySession(config, new RegistryAccounts(sqlForRunner, { workerId: "purchases-test", leaseSeconds: 120, log }), log);
  handle = registreJobHandler({
    config,
    session,
    storage: createDocumentStorage({ kind: "local-directory", root: storageDir }),
    cooldown: new RegistryCooldown(upstashClient(), randomKeyPrefix("purchases"), "dev"),
    purchases: new RegistryPurchases(sqlForRunner, "dev"),
    traces: undefined,
  });
}, 60_000);

afterAll(async () => {
  await session?.close();
  await sqlForRunner?.end({ timeout: 2 });
  await replica?.stop();
  await db?.drop();
  await rm(storageDir, { recursive: true, force: true });
});

describe("registry purchases", () => {
  it("records each purchase, and reuses an identical request's PDF, then its OCR text, instead of buying again", async () => {
    await setPolicy("1 day", null);
    const first = await insertActe("12 345 678");
    const job = await claim(first);
    const outcome = await run(job);
    if (outcome.kind !== "extracted") throw new Error("expected a PDF");
    expect(await queue.completeExtraction(job, outcome.supabasePath)).toBe(3);
    expect(replica.stats().downloads).toBe(1);
    const [purchase] = await purchasesOf();
    expect(purchase).toMatchObject({ job_id: first, environment: "dev", supabase_path: outcome.supabasePath, amount_cents: 150 });
    expect(purchase?.account_id).not.toBeNull();
    const [day] = await db.sql<{ documents: string; spend_dollars: string; account: string }[]>`select * from registry_spend_per_day`;
    expect(day).toMatchObject({ documents: "1", account: "local-registre-1" });
    expect(Number(day?.spend_dollars)).toBe(1.5);

    // Identical, before the first one's OCR: same PDF, no purchase, waits for its own OCR (3).
    const second = await insertActe("12345678");
    const secondJob = await claim(second);
    const reused = await run(secondJob);
    expect(reused).toEqual({ kind: "extracted", supabasePath: outcome.supabasePath });
    expect(await queue.completeExtraction(secondJob, outcome.supabasePath)).toBe(3);

    // Once the first is OCRed, an identical request takes its text too and ends at 5.
    await db.sql`update extraction_queue set status_id = 5, file_content = 'texte brut', boosted_file_content = 'texte corrigé' where id = ${first}`;
    const third = await insertActe("12 345 678");
    const thirdJob = await claim(third);
    const withText = await run(thirdJob);
    if (withText.kind !== "extracted") throw new Error("expected a PDF");
    expect(await queue.completeExtraction(thirdJob, withText.supabasePath)).toBe(5);
    const [copied] = await db.sql<{ file_content: string; boosted_file_content: string; supabase_path: string }[]>`select file_content, boosted_file_content, supabase_path from extraction_queue where id = ${third}`;
    expect(copied).toEqual({ file_content: "texte brut", boosted_file_content: "texte corrigé", supabase_path: outcome.supabasePath });
    expect(replica.stats().downloads).toBe(1);
    expect(await purchasesOf()).toHaveLength(1);

    // Outside the window (set to nothing), the same request is bought again.
    await setPolicy("0 seconds", null);
    const fourth = await insertActe("12 345 678");
    const fourthJob = await claim(fourth);
    await run(fourthJob);
    expect(replica.stats().downloads).toBe(2);
    expect(await purchasesOf()).toHaveLength(2);
    await queue.release(fourthJob);
    await db.sql`delete from extraction_queue where id = ${fourth}`;
  }, 60_000);

  it("resumes a retry after the purchase point from what was bought", async () => {
    await setPolicy("0 seconds", null);
    const id = await insertActe("7 654 321");
    const job = await claim(id);
    const bought = await run(job);
    if (bought.kind !== "extracted") throw new Error("expected a PDF");
    const downloads = replica.stats().downloads;
    // The completion never happened (the task died): the job comes back.
    await queue.release(job);
    const retry = await claim(id);
    expect(await run(retry)).toEqual(bought);
    expect(replica.stats().downloads).toBe(downloads);
    expect((await purchasesOf()).filter((row) => row.job_id === id)).toHaveLength(1);
    expect(await queue.completeExtraction(retry, bought.supabasePath)).toBe(3);
  }, 60_000);

  it("stops registre work, spending no attempt, once the day's spend reaches the environment's cap, and dispatch sees it", async () => {
    await setPolicy("0 seconds", 300);
    expect(await registreSpendCapped(db.sql, "dev")).toBe(true);
    expect(await registreSpendCapped(db.sql, "prod")).toBe(false);
    const id = await insertActe("1 111 111");
    const job = await claim(id);
    const downloads = replica.stats().downloads;
    const failure = await run(job).then(() => undefined, (error: unknown) => error);
    expect(classifyFailure(failure)).toMatchObject({ disposition: "infrastructure", kind: "spend_cap" });
    expect((failure as Error).message).toContain("4,50 $ of 3,00 $");
    expect(replica.stats().downloads).toBe(downloads);
    await queue.release(job);
    await setPolicy("0 seconds", 1_000);
    expect(await registreSpendCapped(db.sql, "dev")).toBe(false);
  }, 60_000);
});
