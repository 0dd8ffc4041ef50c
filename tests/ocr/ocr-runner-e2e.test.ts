import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PROJECT_ROOT } from "../../infra/local/paths.ts";
import { defaultTaskCommand, type LocalStack } from "../../infra/local/stack.ts";
import { startThrowawayStack } from "../../infra/local/throwaway-stack.ts";
import { startGeminiTestServer, type GeminiLoggedRequest, type GeminiTestServer } from "../helpers/gemini-test-server.ts";
import { textPagesPdf } from "../helpers/text-page-pdf.ts";
import { BOOST_MARK, promptKind, scriptedModel } from "./scripted-model.ts";

/**
 * The OCR runner end to end on the embedded local stack: rows at status 3
 * with their PDFs in local Storage, dispatch starting real OCR runner
 * processes (runners/ocr/main.ts), Gemini played by the test server speaking
 * its REST protocol, the shared budget in the stack's Redis.
 */

const FAST = "gemini-fast-e2e";
const STRONG = "gemini-strong-e2e";
/** The server's quota per model and minute; the runners' budget is 80 % of it (GEMINI_LIMITS). */
const QUOTA_RPM = 40;
const STORM_RETRY_DELAY_MS = 1_500;
const STORM_429S = 3;

const ledgerPage = (page: number) =>
  Array.from({ length: 4 }, (_, index) => `Côté, Élise ; Caisse Desjardins | Hypothèque | 1998-0${page}-1${index} | ${page}${index} 123 456 |  | 95 000,00 $`);
const INDEX_PAGES = [1, 2, 3].map(ledgerPage);
const ACTE_TEXT = "EN-TÊTE : Vente, publiée le 12 mars 1987 sous le numéro 1 234 567\nPARTIES : François Gagné, vendeur ; Société immobilière Ça va inc., acheteur\nMONTANTS : 245 000,00 $";

interface Row {
  status_id: number;
  ocr_attempts: number;
  file_content: string | null;
  boosted_file_content: string | null;
  ocr_error: string | null;
}

describe("the OCR runner on the local stack, with the Gemini test server", () => {
  let server: GeminiTestServer;
  let stack: LocalStack;
  let storageDir: string;
  let sql: postgres.Sql;
  let stormAnswered = 0;

  beforeAll(async () => {
    const model = scriptedModel({ indexPages: INDEX_PAGES, acteText: ACTE_TEXT });
    server = await startGeminiTestServer({
      quotas: { [FAST]: { rpm: QUOTA_RPM }, [STRONG]: { rpm: QUOTA_RPM } },
      latencyMs: 30,
      fileProcessingMs: 300,
      // The storm: the first calls answer 429 with a RetryInfo, as Google does when a quota runs out elsewhere.
      respond: (request) => {
        if (stormAnswered < STORM_429S) {
          stormAnswered += 1;
          return { error: { code: 429, message: "Resource has been exhausted (e.g. check quota).", retryDelay: `${STORM_RETRY_DELAY_MS / 1000}s` } };
        }
        return model(request);
      },
    });
    storageDir = await mkdtemp(join(tmpdir(), "ocr-e2e-storage-"));
    const budget = { rpm: Math.floor(QUOTA_RPM * 0.8), tpm: 5_000_000, rpd: 100_000 };
    stack = await startThrowawayStack("ocr-e2e", {
      budgetEnv: { GEMINI_LIMITS: JSON.stringify({ [FAST]: budget, [STRONG]: budget }), GEMINI_FAST_MODEL: FAST, GEMINI_BOOST_MODEL: STRONG },
      taskCommand: (family) =>
        family === "ocr"
          ? {
              // A task's environment is its definition's: these stand for the OCR task definition's variables.
              command: "/usr/bin/env",
              args: [
                "GEMINI_API_KEY=test-key",
                `GEMINI_BASE_URL=${server.url}`,
                `STORAGE_LOCAL_DIR=${storageDir}`,
                "GEMINI_BACKOFF_BASE_MS=100",
                "GEMINI_FILE_POLL_MS=50",
                "RUNNER_POLL_SECONDS=0.5",
                "RUNNER_IDLE_EXIT_SECONDS=5",
                // As the image starts it (see infra/local/runner-command.ts).
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
  }, 120_000);

  afterAll(async () => {
    await sql?.end();
    await stack?.stop();
    await server?.close();
    if (storageDir) await rm(storageDir, { recursive: true, force: true });
  });

  async function store(path: string, bytes: Uint8Array): Promise<void> {
    await mkdir(dirname(join(storageDir, path)), { recursive: true });
    await writeFile(join(storageDir, path), bytes);
  }

  /**
   * Rows the registre stage has finished, through the real state machine: in
   * one transaction (so dispatch never sees them at 1), inserted, claimed as
   * registre and completed with their PDF's path: status 3.
   */
  async function insertReadyForOcr(rows: ReadonlyArray<{ source: "index" | "acte"; number: string; path: string }>): Promise<string[]> {
    return sql.begin(async (tx) => {
      const ids: string[] = [];
      for (const { source, number } of rows) {
        const [row] = await tx<{ id: string }[]>`
          insert into extraction_queue (document_source, document_number, circonscription_fonciere, cadastre, acte_type)
          values (${source}, ${number}, 'Montréal', ${source === "index" ? "Cadastre du Québec" : null}, ${source === "acte" ? "Acte" : null})
          returning id`;
        if (!row) throw new Error("insert returned no row");
        ids.push(row.id);
      }
      const claimed = await tx<{ id: string; lease_token: string }[]>`select id, lease_token from queue.claim_jobs('registre', 'test-registre', ${rows.length}, 60)`;
      for (const job of claimed) {
        const path = rows[ids.indexOf(job.id)]?.path ?? null;
        await tx`select queue.complete_extraction(${job.id}, ${job.lease_token}, ${path})`;
      }
      return ids;
    });
  }

  /** Polls the row until it reaches a final status, recording every status seen. */
  async function follow(id: string, seen: number[], timeoutMs = 90_000): Promise<Row> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const [row] = await sql<(Row & { status_id: number })[]>`
        select status_id, ocr_attempts, file_content, boosted_file_content, ocr_error from extraction_queue where id = ${id}`;
      if (!row) throw new Error(`row ${id} vanished`);
      if (seen.at(-1) !== row.status_id) seen.push(row.status_id);
      if (row.status_id === 4 || row.status_id === 5) return row;
      if (Date.now() > deadline) throw new Error(`row ${id} still at status ${row.status_id} after ${timeoutMs} ms (seen ${seen.join(" → ")})`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  it("reads an index page by page and an acte through the File API, through a 429 storm, and fails a corrupt PDF for good", async () => {
    await store("index/e2e-index.pdf", await textPagesPdf(INDEX_PAGES.map((lines) => ({ lines, fontSizePx: 30 }))));
    await store("actes/e2e-acte.pdf", await textPagesPdf([{ lines: ACTE_TEXT.split("\n") }, { lines: ["Signé à Montréal."] }]));
    await store("index/e2e-corrupt.pdf", new TextEncoder().encode("%PDF-1.4\nthis is not a PDF body, the scan was cut short"));
    const [indexId = "", acteId = "", corruptId = ""] = await insertReadyForOcr([
      { source: "index", number: "1 111 111", path: "index/e2e-index.pdf" },
      { source: "acte", number: "2 222 222", path: "actes/e2e-acte.pdf" },
      { source: "index", number: "3 333 333", path: "index/e2e-corrupt.pdf" },
    ]);

    const indexSeen: number[] = [];
    const acteSeen: number[] = [];
    const corruptSeen: number[] = [];
    const [index, acte, corrupt] = await Promise.all([follow(indexId, indexSeen), follow(acteId, acteSeen), follow(corruptId, corruptSeen)]);

    // Index: 3 → 6 → 5, both columns, a marker per page, per-page calls and one boost seen by "Gemini".
    expect(indexSeen).toEqual([3, 6, 5]);
    expect(index.ocr_attempts).toBe(1); // The 429s spent no attempt.
    for (const text of [index.file_content ?? "", index.boosted_file_content ?? ""]) {
      for (const page of [1, 2, 3]) expect(text).toContain(`--- Page ${page} ---`);
      expect(text).toContain(`Ligne 4: ${INDEX_PAGES[2]?.[3]}`);
    }
    expect(index.boosted_file_content).toContain(BOOST_MARK);
    const served = server.requests.filter((request) => request.kind === "generateContent" && request.status === 200);
    const kindsServed = served.map((request) => (request.generate ? promptKind(request.generate) : "unknown"));
    expect(kindsServed.filter((kind) => kind === "line-count")).toHaveLength(3);
    expect(kindsServed.filter((kind) => kind === "index-extraction")).toHaveLength(3);
    // The index boost runs page by page (3 pages).
    expect(kindsServed.filter((kind) => kind === "index-boost")).toHaveLength(3);

    // Acte: upload, ACTIVE, one extraction on the file, one boost, the file deleted.
    expect(acteSeen).toEqual([3, 6, 5]);
    expect(acte.ocr_attempts).toBe(1);
    expect(acte.file_content).toBe(ACTE_TEXT);
    expect(acte.boosted_file_content).toBe(`${ACTE_TEXT}\n${BOOST_MARK}`);
    const fileKinds = server.requests.filter((request) => request.kind.startsWith("upload") || request.kind.startsWith("files")).map((request) => request.kind);
    expect(fileKinds[0]).toBe("upload.start");
    expect(fileKinds[1]).toBe("upload.finalize");
    expect(fileKinds.at(-1)).toBe("files.delete");
    expect([...server.files.values()].every((file) => file.deleted)).toBe(true);
    expect(kindsServed.filter((kind) => kind === "acte-extraction")).toHaveLength(1);
    expect(kindsServed.filter((kind) => kind === "acte-boost")).toHaveLength(1);

    // Tokens per job and model, as the server counted them, on the rows' lease; summed per day in the Studio view.
    const usage = await sql<{ job_id: string; model: string; calls: number; input_tokens: string; output_tokens: string; thinking_tokens: string }[]>`
      select job_id, model, calls, input_tokens, output_tokens, thinking_tokens from public.ocr_token_usage order by job_id, model`;
    const callsOf = (id: string, model: string) => usage.filter((row) => row.job_id === id && row.model === model).reduce((sum, row) => sum + row.calls, 0);
    expect([callsOf(indexId, FAST), callsOf(indexId, STRONG), callsOf(acteId, FAST), callsOf(acteId, STRONG)]).toEqual([6, 3, 1, 1]);
    for (const model of [FAST, STRONG]) {
      const counted = served.filter((request) => request.model === model).reduce((sum, request) => sum + request.promptTokenCount, 0);
      expect(usage.filter((row) => row.model === model).reduce((sum, row) => sum + Number(row.input_tokens), 0)).toBe(counted);
    }
    const perDay = await sql<{ environment: string; model: string; jobs: string; calls: string }[]>`select environment, model, jobs, calls from public.ocr_tokens_by_day order by model`;
    expect(perDay.map((row) => [row.environment, row.model, Number(row.jobs), Number(row.calls)])).toEqual([
      ["dev", FAST, 2, 7],
      ["dev", STRONG, 2, 4],
    ].sort((a, b) => String(a[1]).localeCompare(String(b[1]))));

    // Corrupt: final after its one attempt, with a message a person can act on.
    // Sampled every 50 ms, a fast failure may pass through 6 unseen; its one counted attempt is the durable proof it was claimed.
    expect(corruptSeen[0]).toBe(3);
    expect(corruptSeen.at(-1)).toBe(4);
    expect(corruptSeen.filter((status) => status !== 3 && status !== 6 && status !== 4)).toEqual([]);
    expect(corrupt.ocr_attempts).toBe(1);
    expect(corrupt.ocr_error).toMatch(/stored PDF is corrupt: pdfinfo could not read it .*fetch the document again/);

    // The storm: every 429 was honoured, no call of that model before its retryDelay ran out.
    const storm = server.requests.filter((request) => request.status === 429);
    expect(storm).toHaveLength(STORM_429S);
    for (const refused of storm) {
      // The same call sent again (same model, same prompt) waited out the retryDelay.
      const again = server.requests.find((request) => request.receivedAt > refused.answeredAt && request.model === refused.model && request.generate?.text === refused.generate?.text);
      expect(again).toBeDefined();
      expect((again?.receivedAt ?? 0) - refused.answeredAt).toBeGreaterThanOrEqual(STORM_RETRY_DELAY_MS - 5);
      // And no other call of that model went out while the cooldown ran.
      const early = server.requests.filter(
        (request) =>
          request.kind === "generateContent" &&
          request.model === refused.model &&
          // Calls already admitted when the 429 came back may still arrive within the next moment.
          request.receivedAt > refused.answeredAt + 150 &&
          request.receivedAt < refused.answeredAt + STORM_RETRY_DELAY_MS - 20,
      );
      expect(early.map((request) => request.receivedAt - refused.answeredAt)).toEqual([]);
    }
    // And the server never saw more than its quota in any minute, per model.
    for (const model of [FAST, STRONG]) expect(maxInAnyWindow(server.requests, model, 60_000)).toBeLessThanOrEqual(QUOTA_RPM);
  }, 180_000);
});

/** The most generateContent requests of `model` received within any `windowMs` span. */
function maxInAnyWindow(requests: readonly GeminiLoggedRequest[], model: string, windowMs: number): number {
  const times = requests.filter((request) => request.kind === "generateContent" && request.model === model).map((request) => request.receivedAt);
  let most = 0;
  for (const [index, start] of times.entries()) most = Math.max(most, times.slice(index).filter((time) => time < start + windowMs).length);
  return most;
}
