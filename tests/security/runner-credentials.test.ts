import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createFreshDatabase, type FreshDatabase } from "../helpers/fresh-database.ts";
import { acteJob, createLoginFor, insertJob, type RoleLogin } from "../sql/queue-fixtures.ts";

// Least privilege: neither credential a runner holds (DATABASE_URL as
// `runner`, SUPABASE_STORAGE_KEY as the JWT role `storage_runner`) can read
// registry_accounts or write extraction_queue outside the job functions, and
// the Storage one reaches only the three document buckets. The Storage API
// logs in as `authenticator` and switches to the JWT's role; the test does
// the same.

let database: FreshDatabase;
let authenticator: RoleLogin;
let runner: RoleLogin;

beforeAll(async () => {
  database = await createFreshDatabase();
  authenticator = await createLoginFor(database, "authenticator");
  runner = await createLoginFor(database, "runner");
  await database.sql`insert into registry_accounts (username, password) values ('notaire-1', 'hunter2-registry-password')`;
  await insertJob(database.sql, acteJob("9 000 001"));
});

afterAll(async () => {
  await authenticator?.drop();
  await runner?.drop();
  await database?.drop();
});

/** Runs `query` as the Storage API would for a request carrying a storage_runner JWT. */
async function asStorageRunner<T>(query: (sql: import("postgres").TransactionSql) => Promise<T>): Promise<T> {
  const result = await authenticator.sql.begin(async (sql) => {
    await sql`select set_config('request.jwt.claims', ${JSON.stringify({ role: "storage_runner" })}, true)`;
    await sql`set local role storage_runner`;
    return query(sql);
  });
  return result as T;
}

async function errorCodeOf(run: () => Promise<unknown>): Promise<string | undefined> {
  try {
    await run();
  } catch (error) {
    return (error as { code?: string }).code;
  }
  return undefined;
}

const PERMISSION_DENIED = "42501";

describe("the Storage credential (JWT role storage_runner)", () => {
  it("is a role the Storage API may switch to, holding no other role", async () => {
    const [role] = await database.sql<{ rolcanlogin: boolean; rolbypassrls: boolean; member_of: string[] }[]>`
      select r.rolcanlogin, r.rolbypassrls,
             array(select g.rolname::text from pg_auth_members m join pg_roles g on g.oid = m.roleid where m.member = r.oid) as member_of
      from pg_roles r where r.rolname = 'storage_runner'`;
    expect(role).toEqual({ rolcanlogin: false, rolbypassrls: false, member_of: [] });
    const [granted] = await database.sql<{ ok: boolean }[]>`select pg_has_role('authenticator', 'storage_runner', 'member') as ok`;
    expect(granted?.ok).toBe(true);
  });

  it.each([
    ["read registry_accounts", "select username, password_secret_id from public.registry_accounts"],
    ["read the registry account health view", "select * from public.registry_account_health"],
    ["read extraction_queue", "select id from public.extraction_queue"],
    ["insert into extraction_queue", "insert into public.extraction_queue (document_source, document_number, circonscription_fonciere, acte_type) values ('acte', '1', 'Montréal', 'Acte')"],
    ["update extraction_queue", "update public.extraction_queue set status_id = 5"],
    ["call a job function", "select * from queue.claim_jobs('registre', 'w', 1, 60)"],
    ["lease a registry account", "select * from queue.lease_registry_account('w', 60)"],
    ["read decrypted Vault secrets", "select decrypted_secret from vault.decrypted_secrets"],
    ["read Vault secrets", "select secret from vault.secrets"],
  ])("cannot %s", async (_what, statement) => {
    expect(await errorCodeOf(() => asStorageRunner((sql) => sql.unsafe(statement)))).toBe(PERMISSION_DENIED);
  });

  it("reads and writes objects of the three document buckets, and nothing else in Storage", async () => {
    await database.sql`insert into storage.buckets (id, name) values ('private-other', 'private-other') on conflict do nothing`;
    await database.sql`insert into storage.objects (bucket_id, name) values ('private-other', 'payroll.pdf')`;

    const written = await asStorageRunner(async (sql) => {
      for (const bucket of ["index", "actes", "plans-cadastraux"]) {
        await sql`insert into storage.objects (bucket_id, name) values (${bucket}, ${`doc-${bucket}.pdf`})`;
      }
      await sql`update storage.objects set metadata = '{"size": 1}' where bucket_id = 'actes'`;
      return sql<{ bucket_id: string }[]>`select bucket_id from storage.objects order by bucket_id`;
    });
    // The other bucket's object is invisible.
    expect(written.map((row) => row.bucket_id)).toEqual(["actes", "index", "plans-cadastraux"]);
    const buckets = await asStorageRunner((sql) => sql<{ id: string }[]>`select id from storage.buckets order by id`);
    // And the private bucket of failed registre jobs' traces (migration 20261205010200), which it writes and purges.
    expect(buckets.map((row) => row.id)).toEqual(["actes", "index", "plans-cadastraux", "registre-traces"]);

    expect(await errorCodeOf(() => asStorageRunner((sql) => sql`insert into storage.objects (bucket_id, name) values ('private-other', 'x.pdf')`))).toBe(
      PERMISSION_DENIED,
    );
    const touched = await asStorageRunner((sql) => sql`delete from storage.objects where bucket_id = 'private-other'`);
    expect(touched.count).toBe(0);
    const [still] = await database.sql<{ count: number }[]>`select count(*)::int as count from storage.objects where bucket_id = 'private-other'`;
    expect(still?.count).toBe(1);
  });
});

describe("the database credential (role runner)", () => {
  it.each([
    ["read registry_accounts", "select username from public.registry_accounts"],
    ["insert into extraction_queue", "insert into public.extraction_queue (document_source, document_number, circonscription_fonciere, acte_type) values ('acte', '1', 'Montréal', 'Acte')"],
    ["update extraction_queue", "update public.extraction_queue set status_id = 5"],
    ["read decrypted Vault secrets", "select decrypted_secret from vault.decrypted_secrets"],
    ["write Storage objects", "insert into storage.objects (bucket_id, name) values ('actes', 'y.pdf')"],
  ])("cannot %s", async (_what, statement) => {
    expect(await errorCodeOf(() => runner.sql.unsafe(statement))).toBe(PERMISSION_DENIED);
  });
});

describe("minting SUPABASE_STORAGE_KEY", () => {
  it("is an HS256 JWT signed with the project's secret whose role claim is storage_runner", async () => {
    const { createHmac } = await import("node:crypto");
    const { mintStorageKey } = await import("../../scripts/storage-key.ts");
    const jwtSecret = "super-secret-jwt-token-with-at-least-32-characters-long";
    const now = Date.UTC(2026, 10, 29);
    const { token, expiresAt } = mintStorageKey({ jwtSecret, days: 30, now });
    const [header, payload, signature] = token.split(".");
    expect(JSON.parse(Buffer.from(header ?? "", "base64url").toString())).toEqual({ alg: "HS256", typ: "JWT" });
    expect(JSON.parse(Buffer.from(payload ?? "", "base64url").toString())).toEqual({ iss: "supabase", role: "storage_runner", iat: now / 1000, exp: now / 1000 + 30 * 86_400 });
    expect(signature).toBe(createHmac("sha256", jwtSecret).update(`${header}.${payload}`).digest("base64url"));
    expect(expiresAt.toISOString()).toBe("2026-12-29T00:00:00.000Z");
    // The role it names is the one the migration limits to the document buckets.
    const [role] = await database.sql<{ count: number }[]>`select count(*)::int as count from pg_roles where rolname = 'storage_runner'`;
    expect(role?.count).toBe(1);
    expect(() => mintStorageKey({ jwtSecret: "short" })).toThrow(/at least 32/);
  });
});
