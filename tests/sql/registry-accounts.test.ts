import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createFreshDatabase, type FreshDatabase } from "../helpers/fresh-database.ts";
import { createLoginFor, expectPostgresError, SQLSTATE, type RoleLogin } from "./queue-fixtures.ts";

interface AccountLease {
  account_id: string;
  username: string;
  password: string;
  lease_token: string;
  lease_expires_at: Date;
}

describe("registry account leases", () => {
  let database: FreshDatabase;
  let runner: RoleLogin;
  beforeAll(async () => {
    database = await createFreshDatabase();
    runner = await createLoginFor(database, "runner", { max: 4 });
  });
  afterAll(async () => {
    await runner?.drop();
    await database?.drop();
  });
  beforeEach(async () => {
    await database.sql`delete from registry_accounts`;
  });

  async function addAccount(username: string, fields: { lastUsedMinutesAgo?: number; failureCount?: number; failedMinutesAgo?: number; active?: boolean } = {}): Promise<string> {
    const [row] = await database.sql<{ id: string }[]>`
      insert into registry_accounts (username, password, is_active, last_used_at, failure_count, last_failure_at)
      values (${username}, ${`secret-of-${username}`}, ${fields.active ?? true},
              now() - make_interval(mins => ${fields.lastUsedMinutesAgo ?? null}::int),
              ${fields.failureCount ?? 0},
              now() - make_interval(mins => ${fields.failedMinutesAgo ?? null}::int))
      returning id`;
    if (!row) throw new Error("account not inserted");
    return row.id;
  }

  const lease = async (workerId: string, seconds = 600): Promise<AccountLease | undefined> =>
    (await runner.sql<AccountLease[]>`select * from queue.lease_registry_account(${workerId}, ${seconds})`)[0];
  const mustLease = async (workerId: string, seconds = 600): Promise<AccountLease> => {
    const account = await lease(workerId, seconds);
    if (!account) throw new Error(`no account was free for ${workerId}`);
    return account;
  };

  it("leases the least recently used healthy account, with its password, to one runner at a time", async () => {
    await addAccount("recent", { lastUsedMinutesAgo: 5 });
    await addAccount("never-used");
    await addAccount("old", { lastUsedMinutesAgo: 600 });
    await addAccount("inactive", { active: false });
    await addAccount("failing", { failureCount: 3, failedMinutesAgo: 10 });

    const first = await lease("runner-1");
    const second = await lease("runner-2");
    const third = await lease("runner-3");
    expect([first?.username, second?.username, third?.username]).toEqual(["never-used", "old", "recent"]);
    expect(first).toMatchObject({ password: "secret-of-never-used", lease_token: expect.stringMatching(/^[0-9a-f-]{36}$/) });
    // Every healthy account is in use; the inactive and failing ones are never offered.
    expect(await lease("runner-4")).toBeUndefined();
  });

  it("gives concurrent runners different accounts", async () => {
    for (let n = 0; n < 4; n++) await addAccount(`account-${n}`);
    const leases = await Promise.all(Array.from({ length: 6 }, (_, n) => lease(`runner-${n}`)));
    const usernames = leases.flatMap((account) => (account ? [account.username] : []));
    expect(usernames.sort()).toEqual(["account-0", "account-1", "account-2", "account-3"]);
  });

  it("an account failing 3 times in a row stops being offered; a success resets the count; it returns after an hour's cool-down", async () => {
    const id = await addAccount("flaky");
    for (let n = 1; n <= 2; n++) {
      const account = await mustLease("runner-1");
      await runner.sql`select queue.report_registry_account(${id}, ${account.lease_token}, false, ${`login refused ${n}`})`;
      await runner.sql`select queue.release_registry_account(${id}, ${account.lease_token})`;
    }
    const recovered = await mustLease("runner-1");
    await runner.sql`select queue.report_registry_account(${id}, ${recovered.lease_token}, true)`;
    expect(await health(database, "flaky")).toMatchObject({ failure_count: 0, healthy: true, in_use: true, leased_by: "runner-1" });
    await runner.sql`select queue.release_registry_account(${id}, ${recovered.lease_token})`;

    for (let n = 1; n <= 3; n++) {
      const account = await mustLease("runner-1");
      expect(account.username).toBe("flaky");
      await runner.sql`select queue.report_registry_account(${id}, ${account.lease_token}, false, 'Code d''utilisateur invalide')`;
      await runner.sql`select queue.release_registry_account(${id}, ${account.lease_token})`;
    }
    expect(await lease("runner-1")).toBeUndefined();
    expect(await health(database, "flaky")).toMatchObject({ failure_count: 3, healthy: false, in_use: false, last_error: "Code d'utilisateur invalide" });

    await database.sql`update registry_accounts set last_failure_at = now() - interval '61 minutes' where id = ${id}`;
    expect((await lease("runner-1"))?.username).toBe("flaky");
  });

  it("a stale or expired account lease cannot heartbeat, report or release", async () => {
    const id = await addAccount("fenced");
    const account = await mustLease("runner-1");
    await database.sql`update registry_accounts set lease_expires_at = now() - interval '1 second' where id = ${id}`;
    const taken = await mustLease("runner-2");
    expect(taken.account_id).toBe(id);
    const stale = account.lease_token;
    for (const call of [
      () => runner.sql`select queue.heartbeat_registry_account(${id}, ${stale}, 600)`,
      () => runner.sql`select queue.report_registry_account(${id}, ${stale}, false, 'late')`,
      () => runner.sql`select queue.release_registry_account(${id}, ${stale})`,
    ]) {
      await expectPostgresError(call(), { code: SQLSTATE.leaseNotHeld, message: /refused for registry account .*: the lease token is not its current, unexpired lease/ });
    }
    expect(await health(database, "fenced")).toMatchObject({ in_use: true, leased_by: "runner-2", failure_count: 0 });
  });

  it("a heartbeat keeps the account; a release frees it at once", async () => {
    const id = await addAccount("steady");
    const account = await mustLease("runner-1", 60);
    const [row] = await runner.sql<{ expires: Date }[]>`select queue.heartbeat_registry_account(${id}, ${account.lease_token}, 3600) as expires`;
    expect(row?.expires.getTime()).toBeGreaterThan(account.lease_expires_at.getTime() + 3000 * 1000);
    expect(await lease("runner-2")).toBeUndefined();
    await runner.sql`select queue.release_registry_account(${id}, ${account.lease_token})`;
    expect((await lease("runner-2"))?.username).toBe("steady");
  });

  it("the health view never shows a password", async () => {
    await addAccount("private");
    const columns = await database.sql<{ column_name: string }[]>`
      select column_name from information_schema.columns where table_name = 'registry_account_health'`;
    expect(columns.map((column) => column.column_name)).not.toContain("password");
    const rows = await database.sql`select * from registry_account_health`;
    expect(JSON.stringify(rows)).not.toContain("secret-of-private");
  });
});

async function health(database: FreshDatabase, username: string): Promise<Record<string, unknown> | undefined> {
  const [row] = await database.sql`select * from registry_account_health where username = ${username}`;
  return row;
}
