import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ACTE_TYPES, DOCUMENT_SOURCES, JOB_KINDS, JOB_STATUS, TERMINAL_STATUS_IDS } from "../../supabase/functions/_shared/job-kinds.ts";
import { ERROR_KINDS } from "../../runners/lifecycle/job-errors.ts";
import { createFreshDatabase, type FreshDatabase } from "../helpers/fresh-database.ts";
import { expectPostgresError, indexJob, insertJob, SQLSTATE } from "./queue-fixtures.ts";

// The TypeScript constants in _shared mirror the database; these tests fail
// as soon as one side changes without the other.
describe("TypeScript job constants agree with the database", () => {
  let database: FreshDatabase;
  beforeAll(async () => {
    database = await createFreshDatabase();
  });
  afterAll(async () => {
    await database?.drop();
  });

  it("JOB_STATUS has exactly the ids and names of extraction_status", async () => {
    const rows = await database.sql<{ id: number; name: string }[]>`select id, name from extraction_status order by id`;
    const mirrored = Object.values(JOB_STATUS)
      .map((status) => ({ id: status.id, name: status.name }))
      .sort((a, b) => a.id - b.id);
    expect(mirrored).toEqual(rows.map((row) => ({ id: row.id, name: row.name })));
  });

  it("ERROR_KINDS has exactly the kinds of error_kind, each with the disposition its owner implies", async () => {
    const rows = await database.sql<{ name: string; whose: string }[]>`select name, whose from error_kind order by name`;
    expect(Object.keys(ERROR_KINDS).sort()).toEqual(rows.map((row) => row.name));
    const dispositionOf = (whose: string): string[] =>
      whose === "document" ? ["final", "retryable"] : whose === "staff" ? ["retryable"] : whose === "configuration" ? ["configuration"] : ["infrastructure"];
    for (const row of rows) expect(dispositionOf(row.whose)).toContain(ERROR_KINDS[row.name as keyof typeof ERROR_KINDS]);
  });

  it("TERMINAL_STATUS_IDS are exactly the statuses a row cannot leave by a plain update", async () => {
    const id = await insertJob(database.sql, indexJob("terminal-mirror"));
    const leftWithoutRetry: Record<number, boolean> = {};
    for (const status of Object.values(JOB_STATUS)) {
      // Put the row in `status` (the guard only looks at where a row comes from).
      await database.sql.begin(async (tx) => {
        await tx`select set_config('extraction_queue.reopening', ${id}, true)`;
        await tx`
          update extraction_queue
          set status_id = ${status.id},
              -- An index row past extraction carries its PDF's path (a check constraint).
              supabase_path = 'index/terminal-mirror.pdf',
              extraction_lease_token = case when ${status.id} = 2 then gen_random_uuid() end,
              extraction_lease_expires_at = case when ${status.id} = 2 then now() + interval '1 minute' end,
              ocr_lease_token = case when ${status.id} = 6 then gen_random_uuid() end,
              ocr_lease_expires_at = case when ${status.id} = 6 then now() + interval '1 minute' end
          where id = ${id}`;
      });
      const target = status.id === 1 ? 3 : 1;
      const left = await database.sql`
        update extraction_queue
        set status_id = ${target}, extraction_lease_token = null, extraction_lease_expires_at = null,
            ocr_lease_token = null, ocr_lease_expires_at = null
        where id = ${id}`.then(
        () => true,
        (error: unknown) => {
          expect(error).toMatchObject({ code: SQLSTATE.terminalStatus });
          return false;
        },
      );
      leftWithoutRetry[status.id] = left;
    }
    const terminal = Object.entries(leftWithoutRetry)
      .filter(([, left]) => !left)
      .map(([id]) => Number(id));
    expect(terminal.sort()).toEqual([...TERMINAL_STATUS_IDS].sort());
  });

  it("DOCUMENT_SOURCES and ACTE_TYPES are the values insert validation accepts", async () => {
    const [row] = await database.sql<{ sources: string[]; acte_types: string[] }[]>`
      select private.document_sources() as sources, private.acte_types() as acte_types`;
    expect(row?.sources).toEqual([...DOCUMENT_SOURCES]);
    expect(row?.acte_types).toEqual([...ACTE_TYPES]);
  });

  it("JOB_KINDS are the kinds claim_jobs and queue_backlog know", async () => {
    const rows = await database.sql<{ kind: string }[]>`select kind from queue.queue_backlog()`;
    expect(rows.map((row) => row.kind)).toEqual([...JOB_KINDS]);
    for (const kind of JOB_KINDS) {
      await expect(database.sql`select * from queue.claim_jobs(${kind}, 'mirror-test', 1, 60)`).resolves.toBeInstanceOf(Array);
    }
    await expectPostgresError(database.sql`select * from queue.claim_jobs('ocr', 'mirror-test', 1, 60)`, {
      code: SQLSTATE.invalidParameter,
      message: /^kind must be one of registre, index-ocr, acte-ocr; got "ocr"$/,
    });
  });
});
