import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { demoDecision, enqueueDemo, followDemo } from "../../infra/local/demo-batch.ts";
import type { LocalStack, StackLog } from "../../infra/local/stack.ts";
import { startThrowawayStack } from "../../infra/local/throwaway-stack.ts";

// The whole local pipeline (Chromium against the registry replica, the
// offline OCR engine): minutes on a small machine, so `npm run test:long`.
let stack: LocalStack;
let sql: postgres.Sql;
beforeAll(async () => {
  stack = await startThrowawayStack("first-run-demo", { budgetEnv: { RUNNER_IDLE_EXIT_SECONDS: "5" } });
  sql = postgres(stack.urls.database, { max: 2, onnotice: () => {} });
});
afterAll(async () => {
  await sql?.end();
  await stack?.stop();
});

describe("the first-run demo of npm start, end to end", () => {
  it("takes every demo row to a terminal status, the missing document to Erreur, and says so", async () => {
    expect(await demoDecision(sql, {}, false)).toEqual({ run: true });
    const rows = await enqueueDemo(sql);
    const lines: string[] = [];
    const log: StackLog = (entry) => lines.push(entry.msg);
    const outcome = await Promise.race([
      followDemo(sql, rows, log, { pollMs: 250 }),
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`demo rows not terminal after 8 min; progress: ${lines.join(" | ")}`)), 480_000)),
    ]);
    expect(rows.map((row) => outcome.get(row.id)?.status_id)).toEqual([5, 5, 5, 4]);
    expect(outcome.get(rows[3]?.id ?? "")?.error).toMatch(/inexistant/);
    for (const row of rows) expect(lines.some((line) => line.startsWith(`demo: ${row.label} → `) && /→ (4|5) /.test(line))).toBe(true);
  }, 540_000);
});
