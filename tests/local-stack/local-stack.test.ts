import postgres from "postgres";
import { describe, expect, it } from "vitest";
import { isProcessAlive } from "../../infra/local/child-process.ts";
import { startThrowawayStack } from "../../infra/local/throwaway-stack.ts";

describe("the embedded local stack", () => {
  it("starts every part, answers, and leaves no stray process when stopped", async () => {
    const stack = await startThrowawayStack("stack-test");
    const pids = stack.pids();
    try {
      expect(pids.length).toBeGreaterThanOrEqual(3);
      const health = await fetch(`${stack.urls.functions}/functions/v1/health`);
      expect(await health.json()).toMatchObject({ ok: true, database: "postgres" });
      const runner = postgres(stack.urls.runnerDatabase, { max: 1 });
      await expect(runner`select current_user as role`).resolves.toEqual([{ role: "runner" }]);
      await runner.end();

      // The whole local pipeline: a request goes 1 → 2 → 3 → 6 → 5 through
      // dispatch, a registre task and an OCR task, each a real runner process.
      const sql = postgres(stack.urls.database, { max: 1, onnotice: () => {} });
      try {
        const [job] = await sql<{ id: string }[]>`
          insert into extraction_queue (document_source, document_number, circonscription_fonciere, acte_type)
          values ('acte', '12 345 678', 'Montréal', 'Acte') returning id`;
        const deadline = Date.now() + 60_000;
        let row: { status_id: number; supabase_path: string | null; file_content: string | null } | undefined;
        while (Date.now() < deadline) {
          [row] = await sql<{ status_id: number; supabase_path: string | null; file_content: string | null }[]>`
            select status_id, supabase_path, file_content from extraction_queue where id = ${job?.id ?? null}`;
          if (row?.status_id === 5) break;
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
        expect(row?.status_id).toBe(5);
        expect(row?.supabase_path).toMatch(/^actes\/12345678-Montr_al-\d+\.pdf$/);
        expect(row?.file_content).toBeTruthy();
        const kinds = stack.ecs.tasks().map((task) => task.environment["JOB_KIND"]);
        expect(kinds).toEqual(expect.arrayContaining(["registre", "acte-ocr"]));
        // One more request, so a runner is busy with it when the stack stops.
        const [second] = await sql<{ id: string }[]>`
          insert into extraction_queue (document_source, document_number, circonscription_fonciere, acte_type)
          values ('acte', '87 654 321', 'Laval', 'Acte') returning id`;
        for (;;) {
          const [state] = await sql<{ status_id: number }[]>`select status_id from extraction_queue where id = ${second?.id ?? null}`;
          if (state?.status_id !== 1 || Date.now() > deadline) break;
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      } finally {
        await sql.end();
      }
      pids.push(...stack.ecs.tasks().flatMap((task) => (task.pid === undefined ? [] : [task.pid])));
    } finally {
      await stack.stop();
    }
    const groupsAlive = pids.filter((pid) => isProcessAlive(pid) || isProcessAlive(-pid));
    expect(groupsAlive).toEqual([]);
  }, 120_000);
});

