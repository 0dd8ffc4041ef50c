/**
 * `npm run bench -- registre`: documents per minute one registre task
 * fetches from the local registry replica with N = 1 to 4 browser contexts
 * in its one Chromium, each with its own login, account lease and session
 * (its jobs one at a time), with the replica's delays off and with realistic
 * (scaled) delays, and the peak memory of all its Chromium processes
 * together (PSS) against the ledger's registre profile. The real SQL
 * claim and completion, the real handler, real local storage. `--json`
 * prints the results as one JSON line at the end; `--contexts=3` measures only
 * that count. Asserts nothing.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "@upstash/redis";
import postgres from "postgres";
import { REGISTRY_CATALOGUE } from "../infra/local/registry-replica/catalogue.ts";
import { startThrowawayStack } from "../infra/local/throwaway-stack.ts";
import { parseCapacityConfig } from "../supabase/functions/_shared/capacity-config.ts";
import { RegistryCooldown } from "../supabase/functions/_shared/registry-cooldown.ts";
import { connectJobDatabase, JobQueue, type ClaimedJob } from "../runners/lifecycle/job-queue.ts";
import { createLogger } from "../runners/lifecycle/structured-log.ts";
import { parseRegistreConfig } from "../runners/registre/registre-config.ts";
import { registreJobHandler } from "../runners/registre/registre-job-handler.ts";
import { RegistryPurchases } from "../runners/registre/registry-purchases.ts";
import { RegistryAccounts } from "../runners/registre/registry-accounts.ts";
import { launchChromium, RegistrySession } from "../runners/registre/registry-session.ts";
import { createDocumentStorage } from "../runners/storage/create-document-storage.ts";
import { chromiumDescendants, totalPssBytes } from "../tests/registre/process-tree.ts";

const DOCUMENTS_PER_ROUND = 8;
/** Its spend policy reuses nothing: every round must fetch every document, not reuse the last round's PDFs. */
const BENCH_ENVIRONMENT = "dev";
/** Browser contexts in the one task's Chromium, each with its own login and account (the local stack seeds 4). */
const CONTEXT_ROUNDS = [1, 2, 3, 4] as const;
/**
 * The replica's realistic delays, scaled down 4× so a round takes a minute:
 * the site takes seconds per page and up to a minute for a result (PX waited
 * up to 3 minutes); here 1 s a page and 6 s a result.
 */
const REALISTIC = { pageDelayMs: 1_000, resultDelayMs: 6_000 } as const;

/** `--contexts=3` (or `--contexts=3,4`) measures only those counts, e.g. the runner's chosen REGISTRE_CONTEXTS. */
function contextRounds(): readonly number[] {
  const option = process.argv.find((arg) => arg.startsWith("--contexts="));
  if (option === undefined) return CONTEXT_ROUNDS;
  const value = option.slice("--contexts=".length);
  const counts = value.split(",").map(Number);
  if (counts.some((count) => !Number.isInteger(count) || count < 1 || count > 4)) {
    throw new Error(`--contexts= takes whole numbers from 1 to 4 separated by commas (the local stack seeds 4 accounts), got "${value}"`);
  }
  return counts;
}

interface RoundResult {
  contexts: number;
  delays: "off" | "realistic";
  documents: number;
  failed: number;
  seconds: number;
  documentsPerMinute: number;
  peakChromiumPssMb: number;
  chromiumProcessesAtPeak: number;
}

export async function runRegistreBench(): Promise<void> {
  const json = process.argv.includes("--json");
  const profileGb = parseCapacityConfig(process.env).profiles.registre.ramGb;
  const storageDir = await mkdtemp(join(tmpdir(), "bench-registre-"));
  console.log("registre bench: starting a throwaway local stack with the registry replica…");
  // No task processes: this process is the one registre task being measured.
  const stack = await startThrowawayStack("bench-registre", { taskCommand: () => ({ command: process.execPath, args: ["-e", ""] }) });
  // Ctrl+C (or a timeout's SIGTERM) still stops the stack: no Postgres or Chromium is left behind.
  const interrupted = () => void stack.stop().finally(() => process.exit(130));
  process.once("SIGINT", interrupted);
  process.once("SIGTERM", interrupted);
  const admin = postgres(stack.urls.database, { max: 1, onnotice: () => {} });
  await admin`
    insert into registre_spend_policy (environment, reuse_window) values (${BENCH_ENVIRONMENT}, interval '0 seconds')
    on conflict (environment) do update set reuse_window = excluded.reuse_window, daily_cap_cents = null`;
  const results: RoundResult[] = [];
  try {
    // Documents the runner completes (the catalogue also holds ones it must refuse).
    const fetchable = REGISTRY_CATALOGUE.filter((document) => document.id !== "plan-4567890-quebec");
    for (const [delays, contexts] of (["off", "realistic"] as const).flatMap((delay) => contextRounds().map((count) => [delay, count] as const))) {
      stack.registry.setBehaviour(delays === "off" ? { pageDelayMs: 0, resultDelayMs: 0 } : REALISTIC);
      await admin`delete from extraction_queue`;
      for (let index = 0; index < DOCUMENTS_PER_ROUND; index += 1) {
        const row = (fetchable[index % fetchable.length] as (typeof fetchable)[number]).row;
        await admin`
          insert into extraction_queue (document_source, document_number, circonscription_fonciere, cadastre, acte_type)
          values (${row.document_source}, ${row.document_number}, ${row.circonscription_fonciere}, ${row.cadastre}, ${row.acte_type})`;
      }
      results.push(await measureRound(contexts, delays, stack.urls.runnerDatabase, stack.urls.upstash, stack.secrets.upstashToken, stack.registry.url, storageDir));
      const last = results.at(-1) as RoundResult;
      console.log(
        `  ${last.documents} documents in ${last.seconds.toFixed(1)} s = ${last.documentsPerMinute.toFixed(1)} docs/min, ` +
          `peak Chromium PSS ${last.peakChromiumPssMb.toFixed(0)} MB (${last.chromiumProcessesAtPeak} processes), ${last.failed} failed`,
      );
    }
  } finally {
    process.off("SIGINT", interrupted);
    process.off("SIGTERM", interrupted);
    await admin.end();
    await stack.stop();
    await rm(storageDir, { recursive: true, force: true });
  }
  console.log(`\nregistre task against the replica, ${DOCUMENTS_PER_ROUND} documents per round, catalogue mix of index, acte and plan:`);
  console.log("delays     contexts  docs/min  peak Chromium PSS  vs registre profile");
  for (const result of results) {
    console.log(
      `${result.delays.padEnd(9)}  ${String(result.contexts).padStart(8)}  ${result.documentsPerMinute.toFixed(1).padStart(8)}  ${`${result.peakChromiumPssMb.toFixed(0)} MB`.padStart(17)}  ${`${((result.peakChromiumPssMb / (profileGb * 1024)) * 100).toFixed(0)} % of ${profileGb} GB`.padStart(19)}`,
    );
  }
  if (json) console.log(JSON.stringify({ benchmark: "registre", profileRamGb: profileGb, documentsPerRound: DOCUMENTS_PER_ROUND, realisticDelays: REALISTIC, results }));
}

async function measureRound(
  contexts: number,
  delays: RoundResult["delays"],
  databaseUrl: string,
  upstashUrl: string,
  upstashToken: string,
  registryUrl: string,
  storageDir: string,
): Promise<RoundResult> {
  const log = createLogger({ base: { bench: "registre" }, write: process.env["BENCH_REGISTRE_LOG"] === "1" ? (line) => void process.stderr.write(line) : () => {} });
  const config = parseRegistreConfig({ REGISTRY_BASE_URL: registryUrl, REGISTRE_DEBUG_DIR: join(storageDir, "debug"), REGISTRE_ACCOUNT_PACE_SECONDS: "0" });
  const sql = connectJobDatabase(databaseUrl, { max: contexts + 1 });
  const accountsSql = connectJobDatabase(databaseUrl, { max: contexts });
  const queue = new JobQueue(sql, { kind: "registre", workerId: `bench-registre-${contexts}`, leaseSeconds: 300 });
  // One Chromium for the task; each context its own session and account.
  const browser = launchChromium(config);
  const sessions = Array.from(
    { length: contexts },
    (_, index) => new RegistrySession(config, new RegistryAccounts(accountsSql, { workerId: `bench-registre-${contexts}-${index}`, leaseSeconds: 600, log }), log, { browser: () => browser }),
  );
  const handlers = sessions.map((session) =>
    registreJobHandler({
      config,
      session,
      storage: createDocumentStorage({ kind: "local-directory", root: storageDir }),
      cooldown: new RegistryCooldown(new Redis({ url: upstashUrl, token: upstashToken, enableTelemetry: false }), "", BENCH_ENVIRONMENT),
      purchases: new RegistryPurchases(accountsSql, BENCH_ENVIRONMENT),
      traces: undefined,
    }),
  );
  let peakPss = 0;
  let processesAtPeak = 0;
  const sampler = setInterval(() => {
    const pids = chromiumDescendants(process.pid);
    const pss = totalPssBytes(pids);
    if (pss > peakPss) {
      peakPss = pss;
      processesAtPeak = pids.length;
    }
  }, 100);
  let documents = 0;
  let failed = 0;
  const startedAt = performance.now();
  try {
    const worker = async (handle: (typeof handlers)[number]) => {
      for (;;) {
        const job: ClaimedJob | undefined = await queue.claim();
        if (job === undefined) return;
        try {
          const outcome = await handle(job, { signal: new AbortController().signal, log });
          if (outcome.kind === "extracted") await queue.completeExtraction(job, outcome.supabasePath);
          documents += 1;
          process.stdout.write(".");
        } catch (error) {
          failed += 1;
          process.stdout.write(`\n  failed: ${error instanceof Error ? error.message.split("\n")[0] : String(error)}\n`);
          await queue.fail(job, error instanceof Error ? error.message : String(error), false, "needs_attention");
        }
      }
    };
    process.stdout.write(`  delays ${delays}, ${contexts} context(s): `);
    await Promise.all(handlers.map(worker));
    process.stdout.write("\n");
  } finally {
    clearInterval(sampler);
    for (const session of sessions) await session.close();
    await (await browser).close();
    await sql.end();
    await accountsSql.end();
  }
  const seconds = (performance.now() - startedAt) / 1000;
  return { contexts, delays, documents, failed, seconds, documentsPerMinute: (documents / seconds) * 60, peakChromiumPssMb: peakPss / 2 ** 20, chromiumProcessesAtPeak: processesAtPeak };
}
