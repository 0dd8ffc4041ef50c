/**
 * Diagnosis: a failed registre job keeps a Playwright trace of what the
 * browser saw, stored by job id, named in the row's error, with the
 * account's password, its user code and the session cookie scrubbed; a
 * successful job keeps none; traces past 14 days are purged.
 */
import { mkdir, mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inflateRawSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { seedLocalRegistryAccounts } from "../../infra/local/registry-replica/local-registry-accounts.ts";
import { startRegistryReplica, type RegistryReplica } from "../../infra/local/registry-replica/replica-server.ts";
import { RegistryCooldown } from "../../supabase/functions/_shared/registry-cooldown.ts";
import { connectJobDatabase, JobQueue } from "../../runners/lifecycle/job-queue.ts";
import { createLogger } from "../../runners/lifecycle/structured-log.ts";
import type { JobHandler } from "../../runners/lifecycle/run-runner.ts";
import { createDocumentStorage } from "../../runners/storage/create-document-storage.ts";
import { parseRegistreConfig } from "../../runners/registre/registre-config.ts";
import { registreJobHandler } from "../../runners/registre/registre-job-handler.ts";
import { RegistryAccounts } from "../../runners/registre/registry-accounts.ts";
import { RegistryPurchases } from "../../runners/registre/registry-purchases.ts";
import { RegistrySession } from "../../runners/registre/registry-session.ts";
import { scrubTraceZip } from "../../runners/registre/trace-scrub.ts";
import { createTraceStore, TRACE_BUCKET } from "../../runners/registre/trace-store.ts";
import { createFreshDatabase, type FreshDatabase } from "../helpers/fresh-database.ts";
import { randomKeyPrefix, upstashClient } from "../helpers/upstash-client.ts";

let db: FreshDatabase;
let replica: RegistryReplica;
let storageDir: string;
let session: RegistrySession;
let queue: JobQueue;
let handle: JobHandler;
let accounts: Record<string, string>;
let sqlForRunner: ReturnType<typeof connectJobDatabase>;
const log = createLogger({ base: { test: "registre-traces" }, write: () => {} });

/** Every entry of a zip, inflated (the reading side of trace-scrub.ts, kept separate so the test does not trust it). */
function zipEntries(zip: Buffer): Map<string, Buffer> {
  const entries = new Map<string, Buffer>();
  let at = 0;
  while (zip.readUInt32LE(at) === 0x04034b50) {
    const method = zip.readUInt16LE(at + 8);
    const size = zip.readUInt32LE(at + 18);
    const nameLength = zip.readUInt16LE(at + 26);
    const extraLength = zip.readUInt16LE(at + 28);
    const name = zip.subarray(at + 30, at + 30 + nameLength).toString();
    const data = zip.subarray(at + 30 + nameLength + extraLength, at + 30 + nameLength + extraLength + size);
    entries.set(name, method === 8 ? inflateRawSync(data) : Buffer.from(data));
    at += 30 + nameLength + extraLength + size;
  }
  return entries;
}

beforeAll(async () => {
  db = await createFreshDatabase();
  accounts = await seedLocalRegistryAccounts(db.url, 1);
  replica = await startRegistryReplica({ accounts });
  storageDir = await mkdtemp(join(tmpdir(), "registre-traces-"));
  const config = parseRegistreConfig({ REGISTRY_BASE_URL: replica.url, REGISTRE_DEBUG_DIR: join(storageDir, "debug"), REGISTRE_NAVIGATION_TIMEOUT_SECONDS: "5", REGISTRE_RESULT_TIMEOUT_SECONDS: "5" });
  sqlForRunner = connectJobDatabase(db.url, { max: 2 });
  queue = new JobQueue(sqlForRunner, { kind: "registre", workerId: "traces-test", leaseSeconds: 120 });
  session = new RegistrySession(config, new RegistryAccounts(sqlForRunner, { workerId: "traces-test", leaseSeconds: 120, log }), log);
  handle = registreJobHandler({
    config,
    session,
    storage: createDocumentStorage({ kind: "local-directory", root: storageDir }),
    cooldown: new RegistryCooldown(upstashClient(), randomKeyPrefix("traces"), "dev"),
    purchases: new RegistryPurchases(sqlForRunner, "dev"),
    traces: createTraceStore({ kind: "local-directory", root: storageDir }),
  });
}, 60_000);

afterAll(async () => {
  await session?.close();
  await sqlForRunner?.end({ timeout: 2 });
  await replica?.stop();
  await db?.drop();
  await rm(storageDir, { recursive: true, force: true });
});

describe("failed jobs' traces", () => {
  it("keeps a scrubbed trace of a failed job, named by job id in the row's error, and none for a successful one", async () => {
    await db.sql`insert into extraction_queue (document_source, document_number, circonscription_fonciere, acte_type) values ('acte', '12 345 678', 'Montréal', 'Acte')`;
    const good = await queue.claim();
    if (good === undefined) throw new Error("nothing claimed");
    await handle(good, { signal: new AbortController().signal, log });
    expect(await readdir(join(storageDir, TRACE_BUCKET)).catch(() => [])).toEqual([]);

    await db.sql`insert into extraction_queue (document_source, document_number, circonscription_fonciere, acte_type) values ('acte', '12 345 687', 'Montréal', 'Acte')`;
    const bad = await queue.claim();
    if (bad === undefined) throw new Error("nothing claimed");
    const failure = (await handle(bad, { signal: new AbortController().signal, log }).then(() => undefined, (error: unknown) => error)) as Error;
    const named = /\[trace: (registre-traces\/\d{4}-\d{2}-\d{2}\/([0-9a-f-]{36})-attempt-1\.zip)\]$/.exec(failure.message);
    expect(named?.[2]).toBe(bad.id);
    const zip = await readFile(join(storageDir, named?.[1] ?? "missing"));
    const entries = zipEntries(zip);
    const all = Buffer.concat([...entries.values()]).toString("latin1");
    // What the browser saw is there: the similar-numbers list it refused to choose from.
    expect(all).toContain("dont le num");
    expect(all).toContain("12 345 768");
    // The login was traced in this job (a fresh session), and left no secret behind.
    const [[username, password]] = [Object.entries(accounts)[0] ?? ["missing", "missing"]];
    expect(all).toContain("[scrubbed]");
    expect(all).not.toContain(password);
    expect(all).not.toContain(username);
    expect(all).not.toContain(encodeURIComponent(password));
  }, 60_000);

  it("scrubs every form of a secret, and purges the days past the retention", async () => {
    const secret = "p@ss word+1";
    const root = join(storageDir, "purge");
    const store = createTraceStore({ kind: "local-directory", root });
    const now = new Date("2031-03-20T12:00:00Z");
    await mkdir(join(root, TRACE_BUCKET, "2031-03-01"), { recursive: true });
    await mkdir(join(root, TRACE_BUCKET, "2031-03-10"), { recursive: true });
    const path = await store.save("00000000-0000-4000-8000-000000000000", 2, scrubTraceZip(await zipOf(`txtMotPasse=${encodeURIComponent(secret)}&x={"value":"${secret}"}`), [secret]), now);
    expect(path).toBe(`${TRACE_BUCKET}/2031-03-20/00000000-0000-4000-8000-000000000000-attempt-2.zip`);
    const text = [...zipEntries(await readFile(join(root, path))).values()].map((data) => data.toString()).join("");
    expect(text).toBe('txtMotPasse=[scrubbed]&x={"value":"[scrubbed]"}');
    expect(await store.purge(now)).toBe(1);
    expect((await readdir(join(root, TRACE_BUCKET))).sort()).toEqual(["2031-03-10", "2031-03-20"]);
  });
});

/** A one-entry zip, as the scrubber's input (the scrubber writes it back in its own format). */
async function zipOf(text: string): Promise<Buffer> {
  const { deflateRawSync, crc32 } = await import("node:zlib");
  const data = Buffer.from(text);
  const compressed = deflateRawSync(data);
  const name = Buffer.from("trace.network");
  const local = Buffer.alloc(30);
  local.writeUInt32LE(0x04034b50, 0);
  local.writeUInt16LE(8, 8);
  local.writeUInt32LE(crc32(data) >>> 0, 14);
  local.writeUInt32LE(compressed.length, 18);
  local.writeUInt32LE(data.length, 22);
  local.writeUInt16LE(name.length, 26);
  const central = Buffer.alloc(46);
  central.writeUInt32LE(0x02014b50, 0);
  central.writeUInt16LE(8, 10);
  central.writeUInt32LE(compressed.length, 20);
  central.writeUInt32LE(data.length, 24);
  central.writeUInt16LE(name.length, 28);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(1, 8);
  end.writeUInt16LE(1, 10);
  end.writeUInt32LE(central.length + name.length, 12);
  end.writeUInt32LE(local.length + name.length + compressed.length, 16);
  return Buffer.concat([local, name, compressed, central, name, end]);
}
