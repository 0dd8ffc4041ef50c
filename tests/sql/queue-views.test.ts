import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createFreshDatabase, type FreshDatabase } from "../helpers/fresh-database.ts";
import { acteJob, claimOne, expireLease, indexJob, insertJob, insertJobs, planJob } from "./queue-fixtures.ts";

// One scene for every view: the same queue an operator would look at.
describe("what operators see in Supabase Studio, and the dispatcher's backlog", () => {
  let database: FreshDatabase;
  const ids: Record<string, string> = {};

  beforeAll(async () => {
    database = await createFreshDatabase();
    const sql = database.sql;
    // Waiting: 3 index, 1 acte, 1 plan at status 1.
    await insertJobs(sql, [indexJob("W-1"), indexJob("W-2"), indexJob("W-3"), acteJob("W-4"), planJob("W-5")]);

    // An index extracted and waiting for OCR; another whose OCR runner died.
    await insertJobs(sql, [indexJob("O-1", { priority: 9 }), indexJob("O-2", { priority: 9 })]);
    for (let n = 0; n < 2; n++) {
      const job = await claimOne(sql, "registre");
      await sql`select queue.complete_extraction(${job.id}, ${job.lease_token}, ${`index/${job.id}.pdf`})`;
    }
    const dying = await claimOne(sql, "index-ocr", "ocr-runner-9");
    ids["ocrDead"] = dying.id;
    await expireLease(sql, dying.id);

    // An acte that failed for good, and one backing off after a timeout.
    ids["failed"] = await insertJob(sql, acteJob("E-1", { priority: 8 }));
    const failing = await claimOne(sql, "registre");
    await sql`select queue.fail_job(${failing.id}, ${failing.lease_token}, 'Le document demandé est inexistant', true, 'document_not_found')`;
    ids["delayed"] = await insertJob(sql, acteJob("E-2", { priority: 8 }));
    const timingOut = await claimOne(sql, "registre");
    await sql`select queue.fail_job(${timingOut.id}, ${timingOut.lease_token}, 'navigation timeout after 30 s', false, 'document_retryable')`;

    // A registre runner working for 25 minutes with a live lease.
    ids["slow"] = await insertJob(sql, planJob("S-1", { priority: 7 }));
    const slow = await claimOne(sql, "registre", "registre-runner-3");
    await sql`update extraction_queue set processing_started_at = now() - interval '25 minutes' where id = ${slow.id}`;
  });
  afterAll(async () => {
    await database?.drop();
  });

  it("queue_backlog counts waiting, delayed and running jobs per kind", async () => {
    const rows = await database.sql<{ kind: string; waiting: string; delayed: string; running: string }[]>`select * from queue.queue_backlog()`;
    expect(rows.map((row) => ({ kind: row.kind, waiting: Number(row.waiting), delayed: Number(row.delayed), running: Number(row.running) }))).toEqual([
      { kind: "registre", waiting: 5, delayed: 1, running: 1 },
      // The dead OCR lease is neither waiting nor running until the reaper runs.
      { kind: "index-ocr", waiting: 1, delayed: 0, running: 0 },
      { kind: "acte-ocr", waiting: 0, delayed: 0, running: 0 },
    ]);
  });

  it("extraction_queue_by_status counts jobs per status name and source", async () => {
    const rows = await database.sql<{ status: string; document_source: string; jobs: string }[]>`
      select status, document_source, jobs from extraction_queue_by_status`;
    expect(rows.map((row) => `${row.status} / ${row.document_source}: ${row.jobs}`)).toEqual([
      "En attente / acte: 2",
      "En attente / index: 3",
      "En attente / plan_cadastraux: 1",
      "En traitement / plan_cadastraux: 1",
      "Complété / index: 1",
      "Erreur / acte: 1",
      "OCR en traitement / index: 1",
    ]);
  });

  it("extraction_queue_stuck_jobs lists the expired lease and the job running past its stage limit", async () => {
    const rows = await database.sql<{ id: string; kind: string; status: string; runner: string; why_stuck: string }[]>`
      select id, kind, status, runner, why_stuck from extraction_queue_stuck_jobs`;
    expect(rows).toEqual([
      { id: ids["slow"], kind: "registre", status: "En traitement", runner: "registre-runner-3", why_stuck: "running longer than 00:20:00" },
      { id: ids["ocrDead"], kind: "index-ocr", status: "OCR en traitement", runner: "ocr-runner-9", why_stuck: "lease expired (runner gone; the reaper will requeue it)" },
    ]);
  });

  it("extraction_queue_recent_errors shows each error with its stage and whether the job gave up", async () => {
    const rows = await database.sql<{ id: string; stage: string; status: string; final: boolean; error: string }[]>`
      select id, stage, status, final, error from extraction_queue_recent_errors order by error`;
    expect(rows).toEqual([
      { id: ids["failed"], stage: "extraction", status: "Erreur", final: true, error: "Le document demandé est inexistant" },
      { id: ids["delayed"], stage: "extraction", status: "En attente", final: false, error: "navigation timeout after 30 s" },
    ]);
  });

  it("extraction_queue_throughput_per_hour counts completed stages and final failures per kind", async () => {
    const rows = await database.sql<{ kind: string; completed: string; failed: string }[]>`
      select kind, sum(completed) as completed, sum(failed) as failed from extraction_queue_throughput_per_hour group by kind order by kind`;
    expect(rows.map((row) => ({ kind: row.kind, completed: Number(row.completed), failed: Number(row.failed) }))).toEqual([
      { kind: "registre", completed: 2, failed: 1 },
    ]);
  });

  it("every view is documented with comment on view", async () => {
    const rows = await database.sql<{ view: string; comment: string | null }[]>`
      select c.relname as view, obj_description(c.oid, 'pg_class') as comment
      from pg_class c where c.relnamespace = 'public'::regnamespace and c.relkind = 'v' order by 1`;
    expect(rows.map((row) => row.view)).toEqual([
      "extraction_queue_by_status",
      "extraction_queue_recent_errors",
      "extraction_queue_stuck_jobs",
      "extraction_queue_throughput_per_hour",
      "ocr_tokens_by_day",
      "registry_account_health",
      "registry_spend_per_day",
      "runner_task_exits",
      "running_tasks",
      "running_tasks_by_kind",
    ]);
    for (const row of rows) expect(row.comment?.length ?? 0, `comment on ${row.view}`).toBeGreaterThan(40);
  });
});
