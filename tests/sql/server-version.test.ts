import postgres from "postgres";
import { describe, expect, inject, it } from "vitest";

/**
 * The SQL suite runs on the PostgreSQL LOCAL_POSTGRES_MAJOR names (15 by
 * default, 17 under `npm run test:pg17`, hosted Supabase's major): this
 * proves the run used that server, not silently the other.
 */
describe("the SQL suite's server", () => {
  it("is the PostgreSQL major LOCAL_POSTGRES_MAJOR asks for", async () => {
    const sql = postgres(inject("adminDatabaseUrl"), { max: 1, onnotice: () => {} });
    try {
      const [row] = await sql<{ server_version_num: string }[]>`show server_version_num`;
      const expected = process.env["LOCAL_POSTGRES_MAJOR"] === "17" ? 17 : 15;
      expect(Math.floor(Number(row?.server_version_num) / 10000)).toBe(expected);
    } finally {
      await sql.end();
    }
  });
});
