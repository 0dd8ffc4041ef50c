/**
 * The task's registry sessions: several contexts in one Chromium, each with
 * its own login, account lease and cookies; a per-account pace between
 * documents; a normal desktop identity in French (Canada); log out on close.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { seedLocalRegistryAccounts } from "../../infra/local/registry-replica/local-registry-accounts.ts";
import { startRegistryReplica, type RegistryReplica } from "../../infra/local/registry-replica/replica-server.ts";
import { connectJobDatabase } from "../../runners/lifecycle/job-queue.ts";
import { createLogger } from "../../runners/lifecycle/structured-log.ts";
import { parseRegistreConfig } from "../../runners/registre/registre-config.ts";
import { RegistryAccounts } from "../../runners/registre/registry-accounts.ts";
import { launchChromium, RegistrySession } from "../../runners/registre/registry-session.ts";
import { createFreshDatabase, type FreshDatabase } from "../helpers/fresh-database.ts";

let db: FreshDatabase;
let replica: RegistryReplica;
let sql: ReturnType<typeof connectJobDatabase>;
const log = createLogger({ base: { test: "registry-session" }, write: () => {} });

beforeAll(async () => {
  db = await createFreshDatabase();
  replica = await startRegistryReplica({ accounts: await seedLocalRegistryAccounts(db.url, 2) });
  sql = connectJobDatabase(db.url, { max: 2 });
}, 60_000);

afterAll(async () => {
  await sql?.end({ timeout: 2 });
  await replica?.stop();
  await db?.drop();
});

describe("registry sessions", () => {
  it("runs two contexts in one Chromium, each logged in with its own account, as a desktop browser in fr-CA, and logs both out on close", async () => {
    const config = parseRegistreConfig({ REGISTRY_BASE_URL: replica.url, REGISTRE_NAVIGATION_TIMEOUT_SECONDS: "5", REGISTRE_ACCOUNT_PACE_SECONDS: "0.6" });
    const browser = launchChromium(config);
    const sessions = [0, 1].map((index) => new RegistrySession(config, new RegistryAccounts(sql, { workerId: `session-test-${index}`, leaseSeconds: 60, log }), log, { browser: () => browser }));
    try {
      for (const session of sessions) {
        const { context, page } = await session.openJobPage();
        await session.ensureLoggedIn(context, page);
        await context.close();
      }
      expect(Object.keys(replica.stats().logins).sort()).toEqual(["local-registre-1", "local-registre-2"]);
      expect(replica.stats().displacedSessions).toBe(0);
      expect(new Set(sessions.map((session) => session.accountId)).size).toBe(2);
      expect(replica.stats().lastUserAgent).toMatch(/^Mozilla\/5\.0 \(X11; Linux x86_64\).* Chrome\/\d+\.0\.0\.0 Safari\/537\.36$/);
      expect(replica.stats().lastUserAgent).not.toMatch(/Headless/i);
      expect(replica.stats().lastAcceptLanguage).toMatch(/^fr-CA/);

      // The pace: a second document of the same account waits; another account's does not.
      const [first, second] = sessions as [RegistrySession, RegistrySession];
      const signal = new AbortController().signal;
      await first.pace(signal);
      const startedAt = performance.now();
      await second.pace(signal);
      expect(performance.now() - startedAt).toBeLessThan(300);
      await first.pace(signal);
      expect(performance.now() - startedAt).toBeGreaterThanOrEqual(550);
    } finally {
      for (const session of sessions) await session.close();
      await (await browser).close();
    }
    expect(replica.stats().logouts).toBe(2);
  }, 60_000);
});
