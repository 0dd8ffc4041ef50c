import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { inject } from "vitest";

// pg_cron lives only in the `postgres` database (cron.database_name), as on
// Supabase; the global setup migrated that database too.
describe("pg_cron on the private cluster", () => {
  let sql: postgres.Sql;
  beforeAll(() => {
    sql = postgres(inject("adminDatabaseUrl"), { max: 2, onnotice: () => {} });
  });
  afterAll(async () => {
    await sql?.end();
  });

  it("is loaded", async () => {
    const rows = await sql<{ extversion: string }[]>`select extversion from pg_extension where extname = 'pg_cron'`;
    expect(rows).toHaveLength(1);
    expect(rows[0]?.extversion).toMatch(/^1\.\d/);
  });

  it("schedules the named dispatch tick and reaper every minute", async () => {
    const jobs = await sql<{ jobname: string; schedule: string }[]>`select jobname, schedule from cron.job order by jobname`;
    expect(jobs.map((job) => job.jobname)).toEqual(expect.arrayContaining(["dispatch-tick", "reap-expired-leases"]));
    for (const job of jobs.filter((job) => job.jobname === "dispatch-tick" || job.jobname === "reap-expired-leases")) expect(job.schedule).toBe("* * * * *");
  });

  it("runs the dispatch tick's SQL when invoked: a dispatch hint goes out", async () => {
    const [job] = await sql<{ command: string }[]>`select command from cron.job where jobname = 'dispatch-tick'`;
    expect(job).toBeDefined();
    const received: string[] = [];
    const listener = await sql.listen("edge_function_calls", (payload) => received.push(payload));
    try {
      await sql.unsafe(job?.command ?? "select 'missing dispatch-tick job'::int");
      const deadline = Date.now() + 5_000;
      while (received.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    } finally {
      await listener.unlisten();
    }
    expect(received).toHaveLength(1);
    expect(JSON.parse(received[0] ?? "{}")).toMatchObject({ function: "dispatch", body: { reason: "tick" } });
  });
});
