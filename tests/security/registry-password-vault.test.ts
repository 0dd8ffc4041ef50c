import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createFreshDatabase, type FreshDatabase } from "../helpers/fresh-database.ts";
import { createLoginFor, type RoleLogin } from "../sql/queue-fixtures.ts";

// Registry passwords are stored encrypted in Vault (locally the bootstrap's
// Vault with the same interface) and decrypted only by the lease function.

let database: FreshDatabase;
let runner: RoleLogin;
let service: RoleLogin;

beforeAll(async () => {
  database = await createFreshDatabase();
  runner = await createLoginFor(database, "runner");
  service = await createLoginFor(database, "service_role");
});

/** As service_role itself: BYPASSRLS is an attribute of the role, which a member's login does not inherit. */
function asService(statement: string, parameters: readonly string[] = []) {
  return service.sql.begin(async (sql) => {
    await sql`set local role service_role`;
    return sql.unsafe(statement, [...parameters]);
  });
}

afterAll(async () => {
  await runner?.drop();
  await service?.drop();
  await database?.drop();
});

describe("registry passwords in Vault", () => {
  it("a written password is moved into Vault, encrypted; the table never holds it; the lease returns it", async () => {
    const password = "Tr0ub4dor&3-registry";
    await asService("insert into registry_accounts (username, password) values ('vault-1', $1)", [password]);

    const [row] = await database.sql<{ password: string | null; password_secret_id: string | null }[]>`
      select password, password_secret_id from registry_accounts where username = 'vault-1'`;
    expect(row?.password).toBeNull();
    expect(row?.password_secret_id).toMatch(/^[0-9a-f-]{36}$/);

    // Nowhere in the table's row nor in Vault's stored column in plain text.
    const [dump] = await database.sql<{ text: string }[]>`select registry_accounts::text as text from registry_accounts where username = 'vault-1'`;
    expect(dump?.text).not.toContain(password);
    const [stored] = await database.sql<{ secret: string }[]>`select secret from vault.secrets where id = ${row?.password_secret_id ?? ""}`;
    expect(stored?.secret).toBeDefined();
    expect(stored?.secret).not.toContain(password);
    expect(Buffer.from(stored?.secret ?? "", "base64").toString("latin1")).not.toContain(password);

    const [leased] = await runner.sql<{ username: string; password: string }[]>`select username, password from queue.lease_registry_account('runner-1', 60)`;
    expect(leased).toEqual({ username: "vault-1", password });
  });

  it("changing a password updates its secret; deleting the account deletes the secret", async () => {
    await asService("insert into registry_accounts (username, password) values ('vault-2', 'first-password-123')");
    const [before] = await database.sql<{ id: string; password_secret_id: string }[]>`select id, password_secret_id from registry_accounts where username = 'vault-2'`;
    await asService("update registry_accounts set password = 'second-password-456' where username = 'vault-2'");
    const [after] = await database.sql<{ password_secret_id: string }[]>`select password_secret_id from registry_accounts where username = 'vault-2'`;
    expect(after?.password_secret_id).toBe(before?.password_secret_id);
    const [decrypted] = await database.sql<{ decrypted_secret: string }[]>`
      select decrypted_secret from vault.decrypted_secrets where id = ${before?.password_secret_id ?? ""}`;
    expect(decrypted?.decrypted_secret).toBe("second-password-456");

    await asService("delete from registry_accounts where username = 'vault-2'");
    const [gone] = await database.sql<{ count: number }[]>`select count(*)::int as count from vault.secrets where id = ${before?.password_secret_id ?? ""}`;
    expect(gone?.count).toBe(0);
  });

  it("refuses an empty password, and a row that would keep plain text", async () => {
    await expect(asService("insert into registry_accounts (username, password) values ('vault-3', '')")).rejects.toMatchObject({ code: "23514" });
    // Even the migration role cannot store plain text by disabling nothing but the column: the check holds.
    await expect(database.sql`
      insert into registry_accounts (username, password_secret_id) values ('vault-4', gen_random_uuid());
      `.then(() => database.sql`alter table registry_accounts disable trigger registry_accounts_store_password`)
      .then(() => database.sql`update registry_accounts set password = 'plain-text-here' where username = 'vault-4'`)
      .finally(() => database.sql`alter table registry_accounts enable trigger registry_accounts_store_password`)).rejects.toMatchObject({ code: "23514" });
  });

  it("a failed login reported with the password in its text is stored redacted; without the password the text is kept", async () => {
    const password = "echoed-back-password-99";
    await asService("insert into registry_accounts (username, password) values ('vault-5', $1)", [password]);
    await database.sql`update registry_accounts set is_active = false where username <> 'vault-5'`;
    const [leased] = await runner.sql<{ account_id: string; lease_token: string }[]>`select account_id, lease_token from queue.lease_registry_account('runner-5', 60)`;
    if (!leased) throw new Error("no account leased");
    await runner.sql`select queue.report_registry_account(${leased.account_id}, ${leased.lease_token}, false, ${`registry said: wrong password '${password}' for vault-5`})`;
    const [health] = await database.sql<{ last_error: string }[]>`select last_error from registry_account_health where username = 'vault-5'`;
    expect(health?.last_error).toBe("registry said: wrong password '[redacted]' for vault-5");
    await runner.sql`select queue.report_registry_account(${leased.account_id}, ${leased.lease_token}, false, 'registry unreachable')`;
    const [again] = await database.sql<{ last_error: string }[]>`select last_error from registry_account_health where username = 'vault-5'`;
    expect(again?.last_error).toBe("registry unreachable");
  });

  it("no client role can decrypt: service_role and runner cannot read Vault", async () => {
    for (const login of [service, runner]) {
      await expect(login.sql`select decrypted_secret from vault.decrypted_secrets`).rejects.toMatchObject({ code: "42501" });
      await expect(login.sql`select vault.create_secret('x')`).rejects.toMatchObject({ code: "42501" });
    }
  });
});
