import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "../../infra/local/child-process.ts";
import type { LocalStack, StackLog } from "../../infra/local/stack.ts";
import { startThrowawayStack } from "../../infra/local/throwaway-stack.ts";
import { lifecycleTestTaskCommand } from "../../infra/local/lifecycle-test-task-command.ts";

// The issue this guards against, on the default budget (8 vCPU / 16 GB, 20 %
// reserve = 6.4 vCPU) with the lifecycle test handler: one index, one acte
// and one plan row inserted together start two registre tasks (6 vCPU); their
// work takes a second, and the idle registre runners used to hold the room
// for their whole idle period (60 s) while the index and acte rows waited at
// status 3 for the next cron minute. Now dispatch records the OCR kinds as
// waiting for room, an idle registre runner hands its lease back and hints
// dispatch, and both OCR rows are claimed within 10 s of reaching status 3.
const TARGET_MS = 10_000;

describe("idle capacity back at once, on the local stack", () => {
  let stack: LocalStack;
  let sql: postgres.Sql;
  const logs: Parameters<StackLog>[0][] = [];

  beforeAll(async () => {
    stack = await startThrowawayStack("idle-capacity-e2e", {
      log: (entry) => logs.push(entry),
      taskCommand: lifecycleTestTaskCommand,
      // One document per registre task, so the two rows start two tasks whose idle room the OCR kinds then need.
      budgetEnv: { REGISTRE_CONTEXTS: "1", RUNNER_CONCURRENCY: "1" },
    });
    sql = postgres(stack.urls.database, { max: 2, onnotice: () => {} });
  }, 120_000);

  afterAll(async () => {
    await sql?.end();
    await stack?.stop();
  });

  it("claims the index and acte OCR rows within 10 s of status 3, with the default idle period", async () => {
    const rows = await sql<{ id: string; document_source: string }[]>`
      insert into extraction_queue (document_source, document_number, circonscription_fonciere, cadastre, acte_type)
      values ('index', '1 234 567', 'Montréal', 'Cadastre du Québec', null),
             ('acte', '12 345 678', 'Montréal', null, 'Acte'),
             ('plan_cadastraux', '2 345 678', 'Laval', 'Cadastre du Québec', null)
      returning id, document_source`;
    const ocrIds = rows.filter((row) => row.document_source !== "plan_cadastraux").map((row) => row.id);

    type Timing = { id: string; document_source: string; status_id: number; wait_ms: number | null };
    const timings = () => sql<Timing[]>`
      select id, document_source, status_id,
             (extract(epoch from ocr_started_at - extraction_completed_at) * 1000)::float8 as wait_ms
      from extraction_queue where id in ${sql(ocrIds)}`;
    await waitFor("both OCR rows to be claimed", async () => (await timings()).every((row) => row.wait_ms !== null), 60_000);

    const report = JSON.stringify({ timings: await timings(), tasks: stack.ecs.tasks().map((task) => task.environment["JOB_KIND"]) });
    for (const row of await timings()) expect(row.wait_ms, report).toBeLessThan(TARGET_MS);
    // It was the hand-back that made the room: an idle registre runner said so.
    expect(logs.some((entry) => entry.msg.endsWith("handing the capacity back")), report).toBe(true);
    await waitFor("every row to reach status 5", async () => {
      const [done] = await sql<{ count: number }[]>`select count(*)::int as count from extraction_queue where status_id = 5`;
      return done?.count === 3;
    }, 30_000);
  }, 90_000);
});
