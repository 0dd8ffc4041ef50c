import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { demoDecision, demoRequests, enqueueDemo } from "../../infra/local/demo-batch.ts";
import { findCatalogueDocument } from "../../infra/local/registry-replica/catalogue.ts";
import { createFreshDatabase, type FreshDatabase } from "../helpers/fresh-database.ts";

// The demo's run through the whole pipeline is in first-run-demo.long.ts (npm run test:long).
let db: FreshDatabase;
beforeAll(async () => {
  db = await createFreshDatabase();
});
afterAll(async () => {
  await db.drop();
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

  it("LOCAL_DEMO=off and --no-demo enqueue nothing; an empty queue gets the batch once", async () => {
    expect(await demoDecision(db.sql, { LOCAL_DEMO: "off" }, false)).toEqual({ run: false, reason: "LOCAL_DEMO=off" });
    expect(await demoDecision(db.sql, {}, true)).toEqual({ run: false, reason: "--no-demo" });
    expect(await db.sql`select id from extraction_queue`).toEqual([]);

    expect(await demoDecision(db.sql, {}, false)).toEqual({ run: true });
    const rows = await enqueueDemo(db.sql);
    const stored = await db.sql<{ id: string; document_source: string; status_id: number }[]>`select id, document_source, status_id from extraction_queue`;
    expect(stored.map((row) => row.id).sort()).toEqual(rows.map((row) => row.id).sort());
    expect(stored.every((row) => row.status_id === 1)).toBe(true);
    // A queue with rows is never given the demo again.
    expect(await demoDecision(db.sql, {}, false)).toEqual({ run: false, reason: "the queue already has 4 row(s)" });
  });
});
