/**
 * A bulk UPDATE costs time in proportion to its rows: the statement-level
 * hint trigger joins its two transition tables, which carry no statistics,
 * and a nested-loop join there made 20,000 rows take about 29 s (rows locked
 * all along). Timed on the real database with a wide margin: linear takes a
 * fraction of a second per 10,000 rows.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createFreshDatabase, type FreshDatabase } from "../helpers/fresh-database.ts";

let database: FreshDatabase;

beforeAll(async () => {
  database = await createFreshDatabase();
  await database.sql`update private.dispatch_hint_throttle set min_interval = '0', min_insert_interval = '0'`;
});
afterAll(async () => {
  await database?.drop();
});

describe("a bulk UPDATE of the queue", () => {
  it("of 20,000 rows takes linear time, and a change that makes no work claimable sends no hint", async () => {
    await database.sql`
      insert into extraction_queue (document_source, document_number, circonscription_fonciere, cadastre)
      select 'index', (1000000 + g)::text, 'Montréal', 'Cadastre du Québec'
      from generate_series(1, 20000) g`;
    let hints = 0;
    const listener = await database.sql.listen("edge_function_calls", () => {
      hints += 1;
    });
    // One session, as a pooled connection lives: the trigger's plan is cached
    // per session, and the small updates that came first (single-row
    // transitions, the usual traffic) shaped it.
    const session = await database.sql.reserve();
    try {
      for (let i = 0; i < 10; i += 1) await session`update extraction_queue set priority = 1 where document_number = ${String(1000001 + i)}`;
      const startedAt = Date.now();
      // As staff would: raise the priority of the whole waiting backlog in one statement.
      const updated = await session`update extraction_queue set priority = priority + 1 where status_id = 1`;
      const elapsedMs = Date.now() - startedAt;
      expect(updated.count).toBe(20_000);
      // Nested loop: ~29 s; linear: well under a second, even on a busy 2-core machine.
      expect(elapsedMs).toBeLessThan(8_000);
      await database.sql`select pg_notify('edge_function_calls', '{}')`;
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(hints).toBe(1); // the marker alone
    } finally {
      session.release();
      await listener.unlisten();
    }
  }, 120_000);
});
