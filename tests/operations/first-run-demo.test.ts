import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { demoDecision, demoRequests, enqueueDemo, followDemo } from "../../infra/local/demo-batch.ts";
import type { StackLog } from "../../infra/local/stack.ts";
import { startThrowawayStack } from "../../infra/local/throwaway-stack.ts";
import type { LocalStack } from "../../infra/local/stack.ts";
import { findCatalogueDocument } from "../../infra/local/registry-replica/catalogue.ts";

let stack: LocalStack;
let sql: postgres.Sql;
beforeAll(async () => {
  stack = await startThrowawayStack("first-run-demo", { budgetEnv: { RUNNER_IDLE_EXIT_SECONDS: "2" } });
  sql = postgres(stack.urls.database, { max: 2, onnotice: () => {} });
});
afterAll(async () => {
  await sql?.end();
  await stack?.stop();
});

describe("the first-run demo of npm start", () => {
  it("asks the catalogue for an index, an acte and a plan it has, and an acte it does not have", () => {
    const requests = demoRequests();
    expect(requests.map((request) => request.document_source)).toEqual(["index", "acte", "plan_cadastraux", "acte"]);
    const found = requests.map((request) =>
      findCatalogueDocument({ source: request.document_source, number: request.document_number, circonscription: request.circonscription_fonciere }),
    );
    expect(found.map((document) => document !== undefined)).toEqual([true, true, true, false]);
  });

  it("LOCAL_DEMO=off and --no-demo enqueue nothing", async () => {
    expect(await demoDecision(sql, { LOCAL_DEMO: "off" }, false)).toEqual({ run: false, reason: "LOCAL_DEMO=off" });
    expect(await demoDecision(sql, {}, true)).toEqual({ run: false, reason: "--no-demo" });
    expect(await sql`select id from extraction_queue`).toEqual([]);
  });

  it("on an empty queue, takes every demo row to a terminal status and says so", async () => {
    expect(await demoDecision(sql, {}, false)).toEqual({ run: true });
    const rows = await enqueueDemo(sql);
    expect(rows).toHaveLength(4);
    // A queue with rows is never given the demo again.
    expect(await demoDecision(sql, {}, false)).toEqual({ run: false, reason: "the queue already has 4 row(s)" });

    const lines: string[] = [];
    const log: StackLog = (entry) => lines.push(entry.msg);
    const outcome = await Promise.race([
      followDemo(sql, rows, log, { pollMs: 200 }),
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`demo rows not terminal after 90 s; progress: ${lines.join(" | ")}`)), 90_000)),
    ]);
    expect([...outcome.keys()].sort()).toEqual(rows.map((row) => row.id).sort());
    for (const state of outcome.values()) expect([4, 5]).toContain(state.status_id);
    const final = await sql<{ status_id: number }[]>`select status_id from extraction_queue where status_id not in (4, 5)`;
    expect(final).toEqual([]);
    // Progress was shown for each row, ending in a terminal status.
    for (const row of rows) expect(lines.some((line) => line.startsWith(`demo: ${row.label} → `) && /→ (4|5) /.test(line))).toBe(true);
  }, 120_000);
});
