/**
 * One registry account per running task, through the SQL lease functions
 * (queue.lease_registry_account and friends): least recently used healthy
 * account first, never one another runner holds, renewed while held, and
 * every login reported so a failing account stops being handed out.
 * The password lives only in memory, in the object the lease returns.
 */
import type postgres from "postgres";
import { z } from "zod";
import type { Logger } from "../lifecycle/structured-log.ts";

export interface LeasedAccount {
  readonly accountId: string;
  readonly username: string;
  readonly password: string;
  readonly leaseToken: string;
}

const leasedRowSchema = z.object({ account_id: z.string(), username: z.string(), password: z.string(), lease_token: z.string() });

export class RegistryAccounts {
  readonly #sql: postgres.Sql;
  readonly #workerId: string;
  readonly #leaseSeconds: number;
  readonly #log: Logger;
  #held: LeasedAccount | undefined;
  #renewal: NodeJS.Timeout | undefined;

  constructor(sql: postgres.Sql, options: { workerId: string; leaseSeconds: number; log: Logger }) {
    this.#sql = sql;
    this.#workerId = options.workerId;
    this.#leaseSeconds = options.leaseSeconds;
    this.#log = options.log;
  }

  get held(): LeasedAccount | undefined {
    return this.#held;
  }

  /** Leases an account (keeping it renewed); undefined when every healthy account is in use. */
  async lease(): Promise<LeasedAccount | undefined> {
    if (this.#held !== undefined) return this.#held;
    const rows = await this.#sql`select * from queue.lease_registry_account(${this.#workerId}, ${this.#leaseSeconds})`;
    if (rows[0] === undefined) return undefined;
    const row = leasedRowSchema.parse(rows[0]);
    const account = { accountId: row.account_id, username: row.username, password: row.password, leaseToken: row.lease_token };
    // From now on no log line or stored error may carry it (the logger family shares its secrets).
    this.#log.addSecret(account.password);
    this.#held = account;
    this.#log.info("registry account leased", { account_id: account.accountId });
    this.#renewal = setInterval(() => void this.#renew(account), Math.floor((this.#leaseSeconds * 1000) / 3));
    this.#renewal.unref();
    return account;
  }

  /** Records how a login with the held account went. */
  async report(succeeded: boolean, error?: string): Promise<void> {
    const account = this.#held;
    if (account === undefined) return;
    await this.#sql`select queue.report_registry_account(${account.accountId}, ${account.leaseToken}, ${succeeded}, ${succeeded ? null : (error ?? "login failed")})`;
  }

  /** Gives the held account back. */
  async release(): Promise<void> {
    const account = this.#held;
    if (this.#renewal !== undefined) clearInterval(this.#renewal);
    this.#renewal = undefined;
    this.#held = undefined;
    if (account === undefined) return;
    try {
      await this.#sql`select queue.release_registry_account(${account.accountId}, ${account.leaseToken})`;
      this.#log.info("registry account released", { account_id: account.accountId });
    } catch (error) {
      // The lease expires by itself; another runner gets the account then.
      this.#log.warn("releasing the registry account failed; its lease will expire", { account_id: account.accountId, error });
    }
  }

  async #renew(account: LeasedAccount): Promise<void> {
    try {
      await this.#sql`select queue.heartbeat_registry_account(${account.accountId}, ${account.leaseToken}, ${this.#leaseSeconds})`;
    } catch (error) {
      this.#log.warn("renewing the registry account lease failed", { account_id: account.accountId, error });
      if (error instanceof Error && "code" in error && error.code === "QL001" && this.#held === account) {
        // Someone else may hold it now: never log in with it again.
        this.#held = undefined;
        if (this.#renewal !== undefined) clearInterval(this.#renewal);
        this.#renewal = undefined;
      }
    }
  }
}
