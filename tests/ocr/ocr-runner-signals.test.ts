/**
 * SIGTERM and SIGKILL in the middle of a real OCR job (issue 19, Faults):
 * dispatch starts real OCR runner processes (runners/ocr/main.ts) on the
 * local stack, Gemini is the test server answering slowly, and the signal
 * arrives while the job is at 6 (OCR en traitement). For each: the row ends
 * in 5 with its text, the interrupted run spent no attempt (SIGTERM: the job
 * is released; SIGKILL: the lease lapses and the reaper counts a stall), and
 * the capacity of the killed task is never counted twice.
 */
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PROJECT_ROOT } from "../../infra/local/paths.ts";
import { defaultTaskCommand, type LocalStack } from "../../infra/local/stack.ts";
import { startThrowawayStack } from "../../infra/local/throwaway-stack.ts";
import { startGeminiTestServer, type GeminiTestServer } from "../helpers/gemini-test-server.ts";
import { textPagesPdf } from "../helpers/text-page-pdf.ts";
import { scriptedModel } from "./scripted-model.ts";

const FAST = "gemini-fast-signals";
const STRONG = "gemini-strong-signals";
/** Long and unique, so finding it anywhere can only mean it leaked. */
const GEMINI_KEY = `test-gemini-key-${randomBytes(12).toString("hex")}`;
const ACTE_TEXT = "EN-TÊTE : Vente, publiée le 12 mars 1987 sous le numéro 1 234 567\nPARTIES : François Gagné, vendeur\nMONTANTS : 245 000,00 $";

interface Row {
  status_id: number;
  ocr_attempts: number;
  ocr_stalls: number;
  file_content: string | null;
}

describe("an OCR runner signalled mid-job", () => {
  let server: GeminiTestServer;
  let stack: LocalStack;
  let storageDir: string;
  let sql: postgres.Sql;
  /** Every line the stack logged: its own, the dispatch function's and every task's output. */
  const logs: string[] = [];

  beforeAll(async () => {
    server = await startGeminiTestServer({ latencyMs: 4_000, fileProcessingMs: 100, respond: scriptedModel({ indexPages: [], acteText: ACTE_TEXT }) });
    storageDir = await mkdtemp(join(tmpdir(), "ocr-signals-storage-"));
    const budget = { rpm: 100, tpm: 5_000_000, rpd: 100_000 };
    stack = await startThrowawayStack("ocr-signals", {
      log: (entry) => void logs.push(JSON.stringify(entry)),
      // A short ledger TTL: the SIGKILLed task's capacity lease (never released) frees its kind's slot within it.
      budgetEnv: { GEMINI_LIMITS: JSON.stringify({ [FAST]: budget, [STRONG]: budget }), GEMINI_FAST_MODEL: FAST, GEMINI_BOOST_MODEL: STRONG, LEDGER_LEASE_TTL_SECONDS: "20" },
      taskCommand: (family) =>
        family === "ocr"
          ? {
              command: "/usr/bin/env",
              args: [
                `GEMINI_API_KEY=${GEMINI_KEY}`,
                `GEMINI_BASE_URL=${server.url}`,
                `STORAGE_LOCAL_DIR=${storageDir}`,
                "GEMINI_FILE_POLL_MS=50",
                "RUNNER_POLL_SECONDS=0.5",
                "RUNNER_IDLE_EXIT_SECONDS=3",
                "JOB_LEASE_SECONDS=6",
                "SHUTDOWN_GRACE_SECONDS=1",
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
    await mkdir(join(storageDir, "actes"), { recursive: true });
  }, 120_000);

  afterAll(async () => {
    await sql?.end();
    await stack?.stop();
    await server?.close();
    if (storageDir) await rm(storageDir, { recursive: true, force: true });
  });

  async function acteReadyForOcr(number: string): Promise<string> {
    const path = `actes/${number.replaceAll(" ", "")}.pdf`;
    await mkdir(dirname(join(storageDir, path)), { recursive: true });
    await writeFile(join(storageDir, path), await textPagesPdf([{ lines: ACTE_TEXT.split("\n") }]));
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
    (await sql<Row[]>`select status_id, ocr_attempts, ocr_stalls, file_content from extraction_queue where id = ${id}`)[0];

  async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = await probe();
      if (value !== undefined) return value;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /** The OCR task working on the row: the running acte-ocr task. */
  const workingTask = () => stack.ecs.tasks().find((task) => task.environment["JOB_KIND"] === "acte-ocr" && task.lastStatus === "RUNNING" && task.pid !== undefined);

  it.each([
    { signal: "SIGTERM" as const, number: "7 100 001" },
    { signal: "SIGKILL" as const, number: "7 100 002" },
  ])("$signal mid-OCR: the row still ends in 5 with its text, and the interrupted run spent no attempt", async ({ signal, number }) => {
    const id = await acteReadyForOcr(number);
    await until("the job at 6", async () => ((await rowOf(id))?.status_id === 6 ? true : undefined));
    const task = await until("its task", async () => workingTask());
    // Mid-call: the test server holds every Gemini answer for 4 s.
    await new Promise((resolve) => setTimeout(resolve, 500));
    process.kill(task.pid ?? 0, signal);
    await until("the task to stop", async () => (stack.ecs.tasks().find((t) => t.arn === task.arn)?.lastStatus === "STOPPED" ? true : undefined), 30_000);
    const stopped = stack.ecs.tasks().find((t) => t.arn === task.arn);
    if (signal === "SIGTERM") expect(stopped?.exitCode).toBe(0);
    if (signal === "SIGKILL") {
      // Its lease lapses (JOB_LEASE_SECONDS=6); the reaper takes the job back, as pg_cron does every minute.
      await until("the lease to lapse and the reaper to requeue", async () => {
        await sql`select queue.reap_expired_leases()`;
        return (await rowOf(id))?.status_id === 3 ? true : undefined;
      }, 30_000);
      // The killed task's capacity lease is returned when it lapses (or by the stopped-task sweep); ticks, as pg_cron sends them, start a new runner.
      const ticking = setInterval(() => void sql`select private.dispatch_tick()`.catch(() => {}), 3_000);
      try {
        await until("a new runner to take the job", async () => ((await rowOf(id))?.status_id === 6 ? true : undefined), 60_000);
      } finally {
        clearInterval(ticking);
      }
    }
    const done = await until("the row to end", async () => {
      const row = await rowOf(id);
      return row !== undefined && (row.status_id === 4 || row.status_id === 5) ? row : undefined;
    }, 90_000);
    expect(done).toMatchObject({ status_id: 5, ocr_attempts: 1, ocr_stalls: signal === "SIGKILL" ? 1 : 0 });
    expect(done.file_content).toContain("François Gagné");
  }, 180_000);

  it("left no secret in any log line or row of the whole run", async () => {
    const secrets = [GEMINI_KEY, stack.secrets.dispatchSecret, stack.secrets.upstashToken, stack.secrets.runnerPassword];
    expect(logs.length).toBeGreaterThan(20);
    expect(logs.some((line) => line.includes("job completed"))).toBe(true);
    for (const secret of secrets) expect(logs.filter((line) => line.includes(secret))).toEqual([]);
    const rows = JSON.stringify(await sql`select * from extraction_queue`);
    for (const secret of secrets) expect(rows.includes(secret)).toBe(false);
  });
});
