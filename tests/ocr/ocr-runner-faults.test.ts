/**
 * Gemini and Redis faults under real OCR runner processes started by dispatch
 * on the local stack (issue 19, Faults), Gemini played by the test server.
 * Each outcome is the one runners/ocr/providers/gemini-errors.ts classifies:
 * - a 5xx burst shorter than GEMINI_TRANSIENT_RETRIES: retried inside the
 *   call, the row completes with one attempt and no release;
 * - a 5xx burst longer: released as `infrastructure`, no attempt spent;
 * - 429 with QuotaFailure/RetryInfo details, and 429 with no details at all:
 *   released as `quota`, no attempt spent;
 * - Redis (behind the Upstash endpoint) restarted while a job is at 6: the
 *   row still ends in 5 with one attempt;
 * - Postgres restarted (stopped 3 s, started again on its data) while a
 *   job is at 6: the result is recorded when it is back, one attempt, no stall;
 * - Storage unreadable (the PDF's path is a directory: EISDIR, not "not
 *   found"): released as `infrastructure`, no attempt; completed once back;
 * - a retired model (404 NOT_FOUND on models.get and generateContent): no
 *   attempt spent, the task exits with the configuration code.
 * Every row that completes holds its text once; the capacity ledger is
 * sampled throughout and never over-committed.
 */
import { Redis } from "@upstash/redis";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PROJECT_ROOT } from "../../infra/local/paths.ts";
import { startPostgresCluster, type PostgresCluster } from "../../infra/local/postgres-cluster.ts";
import { startRedisServer, type RedisServer } from "../../infra/local/redis-server.ts";
import { defaultTaskCommand, type LocalStack } from "../../infra/local/stack.ts";
import { startThrowawayStack } from "../../infra/local/throwaway-stack.ts";
import { RUNNER_EXIT_CODES } from "../../runners/lifecycle/runner-exit-codes.ts";
import { parseCapacityConfig } from "../../supabase/functions/_shared/capacity-config.ts";
import { CapacityLedger } from "../../supabase/functions/_shared/capacity-ledger.ts";
import { startGeminiTestServer, type GeminiResponder, type GeminiTestServer } from "../helpers/gemini-test-server.ts";
import { textPagesPdf } from "../helpers/text-page-pdf.ts";
import { scriptedModel } from "./scripted-model.ts";

const FAST = "gemini-fast-faults";
const STRONG = "gemini-strong-faults";
const ACTE_TEXT = "EN-TÊTE : Vente, publiée le 12 mars 1987 sous le numéro 1 234 567\nPARTIES : François Gagné, vendeur\nMONTANTS : 245 000,00 $";
const BUDGET = { rpm: 1_000, tpm: 5_000_000, rpd: 100_000 };
const BUDGET_ENV = { GEMINI_LIMITS: JSON.stringify({ [FAST]: BUDGET, [STRONG]: BUDGET }), GEMINI_FAST_MODEL: FAST, GEMINI_BOOST_MODEL: STRONG, LEDGER_LEASE_TTL_SECONDS: "20" };

interface Row {
  status_id: number;
  ocr_attempts: number;
  ocr_stalls: number;
  infrastructure_releases: number;
  error_kind: string | null;
  ocr_error: string | null;
  file_content: string | null;
}

describe("an OCR runner meeting Gemini and Redis faults", () => {
  const model = scriptedModel({ indexPages: [], acteText: ACTE_TEXT });
  let server: GeminiTestServer;
  let stack: LocalStack;
  let storageDir: string;
  let sql: postgres.Sql;
  let restartedRedis: RedisServer | undefined;
  let restartedPostgres: PostgresCluster | undefined;
  let sampling = true;
  let samples = 0;
  let overAllocations = 0;
  let sampler: Promise<void> | undefined;

  beforeAll(async () => {
    server = await startGeminiTestServer({ latencyMs: 20, fileProcessingMs: 50, respond: model });
    storageDir = await mkdtemp(join(tmpdir(), "ocr-faults-storage-"));
    stack = await startThrowawayStack("ocr-faults", {
      budgetEnv: BUDGET_ENV,
      taskCommand: (family) =>
        family === "ocr"
          ? {
              command: "/usr/bin/env",
              args: [
                "GEMINI_API_KEY=test-key",
                `GEMINI_BASE_URL=${server.url}`,
                `STORAGE_LOCAL_DIR=${storageDir}`,
                "GEMINI_FILE_POLL_MS=50",
                "GEMINI_TRANSIENT_RETRIES=2",
                "GEMINI_BACKOFF_BASE_MS=100",
                // A quota that stays exhausted past this releases the job instead of holding the task.
                "GEMINI_BUDGET_MAX_WAIT_MS=1500",
                "RUNNER_POLL_SECONDS=0.5",
                "RUNNER_IDLE_EXIT_SECONDS=3",
                process.execPath,
                "--import",
                "tsx",
                join(PROJECT_ROOT, "runners", "ocr", "main.ts"),
              ],
              cwd: PROJECT_ROOT,
            }
          : defaultTaskCommand(family),
    });
    sql = postgres(stack.urls.database, { max: 2, onnotice: () => {} });
    const ledger = new CapacityLedger(new Redis({ url: stack.urls.upstash, token: stack.secrets.upstashToken, enableTelemetry: false }), parseCapacityConfig(BUDGET_ENV));
    sampler = (async () => {
      while (sampling) {
        // While Redis is down the snapshot fails: nothing to sample then.
        const snapshot = await ledger.snapshot().catch(() => undefined);
        if (snapshot !== undefined) {
          samples += 1;
          if (snapshot.allocated.vcpu > snapshot.capacity.vcpu + 1e-9 || snapshot.allocated.ramGb > snapshot.capacity.ramGb + 1e-9) overAllocations += 1;
        }
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    })();
  }, 120_000);

  afterAll(async () => {
    sampling = false;
    await sampler;
    await sql?.end();
    await restartedPostgres?.stop();
    await stack?.stop();
    await restartedRedis?.stop();
    await server?.close();
    if (storageDir) await rm(storageDir, { recursive: true, force: true });
  });

  /** `unreadable`: the object's path is a directory, so reading it fails (EISDIR) as an unreachable Storage does, not as "not found". */
  async function acteReadyForOcr(number: string, unreadable = false): Promise<string> {
    const path = `actes/${number.replaceAll(" ", "")}.pdf`;
    await mkdir(dirname(join(storageDir, path)), { recursive: true });
    if (unreadable) await mkdir(join(storageDir, path));
    else await writeFile(join(storageDir, path), await textPagesPdf([{ lines: ACTE_TEXT.split("\n") }]));
    return sql.begin(async (tx) => {
      const [row] = await tx<{ id: string }[]>`
        insert into extraction_queue (document_source, document_number, circonscription_fonciere, acte_type)
        values ('acte', ${number}, 'Montréal', 'Acte') returning id`;
      if (!row) throw new Error("insert returned no row");
      const [job] = await tx<{ id: string; lease_token: string }[]>`select id, lease_token from queue.claim_jobs('registre', 'test-registre', 1, 60)`;
      await tx`select queue.complete_extraction(${job?.id ?? null}, ${job?.lease_token ?? null}, ${path})`;
      return row.id;
    });
  }

  const rowOf = async (id: string) =>
    (await sql<Row[]>`select status_id, ocr_attempts, ocr_stalls, infrastructure_releases, error_kind, ocr_error, file_content from extraction_queue where id = ${id}`)[0];
  const runningOcrTasks = () => stack.ecs.tasks().filter((task) => task.environment["JOB_KIND"] === "acte-ocr" && task.lastStatus !== "STOPPED");

  async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = await probe();
      if (value !== undefined) return value;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  /** The row at rest in 3 after a release, its backoff passed at once and pg_cron's tick sent, until it ends. */
  async function finish(id: string): Promise<Row> {
    return until(
      "the row to end",
      async () => {
        const row = await rowOf(id);
        if (row?.status_id === 3 && runningOcrTasks().length === 0) {
          await sql`update extraction_queue set available_at = now() where id = ${id} and status_id = 3`;
          await sql`select private.dispatch_tick()`.catch(() => {});
        }
        return row !== undefined && (row.status_id === 4 || row.status_id === 5) ? row : undefined;
      },
      90_000,
    );
  }

  /** Answers `fault` to every generateContent until switched back; the File API and models.get go on answering. */
  const failing = (fault: ReturnType<GeminiResponder>): GeminiResponder => () => fault;

  it("a 5xx burst within the call's retries: completed, one attempt, no release", async () => {
    let served = 0;
    server.setResponder((request) => (served++ < 2 ? { error: { code: 503, message: "The model is overloaded. Please try again later." } } : model(request)));
    const id = await acteReadyForOcr("7 200 001");
    const done = await finish(id);
    expect(done).toMatchObject({ status_id: 5, ocr_attempts: 1, infrastructure_releases: 0 });
    expect(done.file_content).toContain("François Gagné");
  }, 120_000);

  it.each([
    { what: "a 5xx burst past the retries", number: "7 200 101", kind: "infrastructure", fault: { error: { code: 500, message: "An internal error has occurred." } }, message: /HTTP 500/ },
    { what: "429 with QuotaFailure and RetryInfo", number: "7 200 201", kind: "quota", fault: { error: { code: 429, message: "Resource has been exhausted (e.g. check quota).", retryDelay: "1s" } }, message: /quota/i },
    { what: "429 with no details", number: "7 200 202", kind: "quota", fault: { error: { code: 429, message: "Resource has been exhausted (e.g. check quota).", noDetails: true } }, message: /quota/i },
  ] as const)("$what: released as $kind with no attempt spent, then completed once with one attempt", async ({ number, kind, fault, message }) => {
    server.setResponder(failing(fault));
    const id = await acteReadyForOcr(number);
    const released = await until("the job released", async () => {
      const row = await rowOf(id);
      return row !== undefined && row.infrastructure_releases > 0 ? row : undefined;
    });
    expect(released).toMatchObject({ status_id: 3, ocr_attempts: 0, error_kind: kind });
    expect(released.ocr_error).toMatch(message);
    server.setResponder(model);
    const done = await finish(id);
    expect(done).toMatchObject({ status_id: 5, ocr_attempts: 1 });
    expect(done.file_content).toContain("François Gagné");
  }, 150_000);

  it("Redis restarted while the job is at 6: the row ends in 5 with one attempt", async () => {
    server.setLatency(3_000);
    try {
      const id = await acteReadyForOcr("7 200 301");
      await until("the job at 6", async () => ((await rowOf(id))?.status_id === 6 ? true : undefined));
      await new Promise((resolve) => setTimeout(resolve, 500));
      const port = stack.redis.port;
      await stack.redis.stop();
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      restartedRedis = await startRedisServer({ port });
      // The stack wrote the budget's limits at start; a restarted Redis has none until a dispatcher or runner stores them.
      const done = await finish(id);
      expect(done).toMatchObject({ status_id: 5, ocr_attempts: 1 });
      expect(done.file_content).toContain("François Gagné");
    } finally {
      server.setLatency(20);
    }
  }, 150_000);

  it("Postgres restarted while the job is at 6: the result lands when it is back, one attempt, no stall", async () => {
    server.setLatency(4_000);
    try {
      const id = await acteReadyForOcr("7 200 302");
      await until("the job at 6", async () => ((await rowOf(id))?.status_id === 6 ? true : undefined));
      const { port, dataDir } = stack.postgres;
      await stack.postgres.stop();
      await new Promise((resolve) => setTimeout(resolve, 3_000));
      restartedPostgres = await startPostgresCluster({ dataDir, port });
      const done = await finish(id);
      expect(done).toMatchObject({ status_id: 5, ocr_attempts: 1, ocr_stalls: 0 });
      expect(done.file_content).toContain("François Gagné");
    } finally {
      server.setLatency(20);
    }
  }, 150_000);

  it("Storage unreadable: released as infrastructure with no attempt, completed once it reads again", async () => {
    const id = await acteReadyForOcr("7 200 303", true);
    const path = join(storageDir, "actes", "7200303.pdf");
    const released = await until("the job released", async () => {
      const row = await rowOf(id);
      return row !== undefined && row.infrastructure_releases > 0 ? row : undefined;
    });
    expect(released).toMatchObject({ status_id: 3, ocr_attempts: 0, error_kind: "infrastructure" });
    expect(released.ocr_error).toMatch(/local storage could not read/);
    await rm(path, { recursive: true });
    await writeFile(path, await textPagesPdf([{ lines: ACTE_TEXT.split("\n") }]));
    const done = await finish(id);
    expect(done).toMatchObject({ status_id: 5, ocr_attempts: 1 });
  }, 120_000);

  it("a retired model: no attempt spent, the task exits with the configuration code", async () => {
    await until("earlier tasks gone", async () => (runningOcrTasks().length === 0 ? true : undefined), 30_000);
    const before = stack.ecs.tasks().length;
    server.setModels([STRONG]);
    try {
      const id = await acteReadyForOcr("7 200 401");
      const task = await until("an OCR task to stop", async () => stack.ecs.tasks().slice(before).find((candidate) => candidate.lastStatus === "STOPPED"), 60_000);
      expect(task.exitCode).toBe(RUNNER_EXIT_CODES.configuration);
      expect(await rowOf(id)).toMatchObject({ status_id: 3, ocr_attempts: 0 });
    } finally {
      server.setModels(undefined);
    }
  }, 120_000);

  it("never over-committed the capacity ledger", () => {
    expect(samples).toBeGreaterThan(10);
    expect(overAllocations).toBe(0);
  });
});
