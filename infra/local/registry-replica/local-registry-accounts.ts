/**
 * The local stack's registry accounts: a few logins the replica accepts,
 * written to `registry_accounts` (a trigger moves each password into the
 * local Vault) so registre runners lease them as they would in production.
 * New passwords at every start: nothing outside the running stack knows them.
 */
import { randomBytes } from "node:crypto";
import postgres from "postgres";

/** @default 4: more than the local budget's registre tasks, so a failing account never stops work. */
export const LOCAL_REGISTRY_ACCOUNT_COUNT = 4;

/** Creates or resets `count` accounts; returns username → password for the replica. */
export async function seedLocalRegistryAccounts(databaseUrl: string, count = LOCAL_REGISTRY_ACCOUNT_COUNT): Promise<Record<string, string>> {
  const accounts: Record<string, string> = {};
  for (let index = 1; index <= count; index += 1) accounts[`local-registre-${index}`] = randomBytes(12).toString("base64url");
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {} });
  try {
    for (const [username, password] of Object.entries(accounts)) {
      await sql`
        insert into public.registry_accounts (username, password)
        values (${username}, ${password})
        on conflict (username) do update
          set password = excluded.password, is_active = true, failure_count = 0, last_error = null,
              leased_by = null, lease_token = null, lease_expires_at = null
      `;
    }
  } finally {
    await sql.end({ timeout: 2 });
  }
  return accounts;
}
