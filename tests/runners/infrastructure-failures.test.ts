/**
 * Attempts are for the document: a Gemini 429 met by the real Gemini client
 * and a Storage outage met by the real Storage client are the
 * infrastructure's fault, so the runner releases the job without spending an
 * attempt, and the job backs off instead of going straight to the next
 * runner that would hit the same wall.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { GoogleGenAI } from "@google/genai";
import { Redis } from "@upstash/redis";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import { freePort } from "../../infra/local/free-port.ts";
import { RUNNER_EXIT_CODES, type JobHandler } from "../../runners/lifecycle/run-runner.ts";
import { createDocumentStorage } from "../../runners/storage/create-document-storage.ts";
import { parseStorageConfig } from "../../runners/storage/document-storage.ts";
import { createFreshDatabase, type FreshDatabase } from "../helpers/fresh-database.ts";
import { startGeminiTestServer, type GeminiTestServer } from "../helpers/gemini-test-server.ts";
import { acteJob, indexJob, insertJob, jobRow } from "../sql/queue-fixtures.ts";
import { runInProcess } from "./in-process-runner.ts";
import { createRunnerLogin, type RunnerLogin } from "./lifecycle-test-runner.ts";

let database: FreshDatabase;
let login: RunnerLogin;
let gemini: GeminiTestServer;

beforeAll(async () => {
  database = await createFreshDatabase();
  login = await createRunnerLogin(database);
  gemini = await startGeminiTestServer();
});
afterEach(async () => {
  await database.sql`delete from extraction_queue`;
});
afterAll(async () => {
  await gemini?.close();
  await login?.drop();
  await database?.drop();
});

/** What the runner leaves on the row after one infrastructure release: no attempt, a backoff, the reason. */
async function expectReleasedForInfrastructure(id: string, stage: "extraction" | "ocr", reason: RegExp): Promise<void> {
  const row = await jobRow(database.sql, id);
  expect(row).toMatchObject(
    stage === "ocr"
      ? { status_id: 3, ocr_attempts: 0, infrastructure_releases: 1, ocr_worker_id: null, ocr_lease_token: null }
      : { status_id: 1, attempts: 0, infrastructure_releases: 1, worker_id: null, extraction_lease_token: null },
  );
  expect(stage === "ocr" ? row.ocr_error : row.error_message).toMatch(reason);
  expect(row.available_at.getTime()).toBeGreaterThan(Date.now());
}

describe("infrastructure failures spend no attempt", () => {
  test("Gemini answering 429 to the real client: the OCR job is released, no attempt spent, and backs off", async () => {
    gemini.setResponder(() => ({ error: { code: 429, message: "Resource has been exhausted (e.g. check quota).", status: "RESOURCE_EXHAUSTED", retryDelay: "17s" } }));
    const id = await insertJob(database.sql, acteJob("429 000 001"));
    await database.sql`update extraction_queue set status_id = 3, supabase_path = 'actes/4290001-Laval-1700000000.pdf' where id = ${id}`;

    const client = new GoogleGenAI({ apiKey: "test-gemini-key-0123456789", httpOptions: { baseUrl: gemini.url } });
    const handle: JobHandler = async (job) => {
      const response = await client.models.generateContent({ model: "gemini-3.5-flash-lite", contents: `OCR of ${job.supabasePath ?? "?"}` });
      return { kind: "ocr", fileContent: response.text ?? "", boostedFileContent: response.text ?? "" };
    };
    const run = await runInProcess({ name: "ocr-429", kind: "acte-ocr", databaseUrl: login.url, handle, env: { RUNNER_MAX_INFRASTRUCTURE_FAILURES: "1" } });

    expect(await run.exited).toBe(RUNNER_EXIT_CODES.infrastructure);
    expect(gemini.rateLimitedCount()).toBeGreaterThan(0);
    await expectReleasedForInfrastructure(id, "ocr", /^released after an infrastructure failure .*429/);
  });

  test("Storage unreachable from the real Storage client: the registre job is released, no attempt spent, and backs off", async () => {
    const closedPort = await freePort();
    const storage = createDocumentStorage(
      parseStorageConfig({ SUPABASE_URL: `http://127.0.0.1:${closedPort}`, SUPABASE_STORAGE_KEY: "test-storage-key-0123456789" }),
    );
    const id = await insertJob(database.sql, indexJob("503 000 001"));
    const handle: JobHandler = async (job) => {
      const path = `index/${job.documentNumberNormalized}.pdf`;
      await storage.upload(path, new TextEncoder().encode("%PDF-1.4 test"), "application/pdf");
      return { kind: "extracted", supabasePath: path };
    };
    const run = await runInProcess({ name: "storage-outage", kind: "registre", databaseUrl: login.url, handle, env: { RUNNER_MAX_INFRASTRUCTURE_FAILURES: "1" } });

    expect(await run.exited).toBe(RUNNER_EXIT_CODES.infrastructure);
    await expectReleasedForInfrastructure(id, "extraction", /^released after an infrastructure failure .*Supabase Storage upload of index\/503000001\.pdf failed: fetch failed$/);
    expect(run.logs().filter((line) => line.msg === "job released after an infrastructure failure (no attempt spent)")).toHaveLength(1);
  });

  test("Upstash answering an error to the real client: the OCR job is released, no attempt spent (an Upstash incident must not sweep the backlog into 4)", async () => {
    // Upstash's REST error answer: a non-2xx status with {"error": "..."}
    // (the client throws UpstashError with it: @upstash/redis HttpClient.request).
    const upstash = createServer((request, response) => {
      request.resume();
      response.writeHead(400, { "content-type": "application/json" }).end(JSON.stringify({ error: "ERR max daily request limit exceeded. Limit: 10000, Usage: 10000" }));
    });
    await new Promise<void>((resolve) => upstash.listen(0, "127.0.0.1", resolve));
    try {
      const redis = new Redis({ url: `http://127.0.0.1:${(upstash.address() as AddressInfo).port}`, token: "test-upstash-token-0123456789", enableTelemetry: false, retry: false });
      const id = await insertJob(database.sql, acteJob("429 000 002"));
      await database.sql`update extraction_queue set status_id = 3, supabase_path = 'actes/4290002-Laval-1700000000.pdf' where id = ${id}`;
      const handle: JobHandler = async () => {
        await redis.incr("gemini:rpm");
        return { kind: "ocr", fileContent: "never", boostedFileContent: "never" };
      };
      const run = await runInProcess({ name: "upstash-error", kind: "acte-ocr", databaseUrl: login.url, handle, env: { RUNNER_MAX_INFRASTRUCTURE_FAILURES: "1" } });

      expect(await run.exited).toBe(RUNNER_EXIT_CODES.infrastructure);
      await expectReleasedForInfrastructure(id, "ocr", /^released after an infrastructure failure .*max daily request limit exceeded/);
      const [kind] = await database.sql<{ error_kind: string }[]>`select error_kind from extraction_queue where id = ${id}`;
      expect(kind?.error_kind).toBe("infrastructure");
    } finally {
      await new Promise<void>((resolve) => upstash.close(() => resolve()));
    }
  });

  test("the same failures as a retryable error would have spent the attempt (the check above can fail)", async () => {
    const id = await insertJob(database.sql, indexJob("503 000 002"));
    const handle: JobHandler = async () => {
      throw new Error("the registry answered 503");
    };
    const run = await runInProcess({ name: "registry-503", kind: "registre", databaseUrl: login.url, handle });

    expect(await run.exited).toBe(RUNNER_EXIT_CODES.ok);
    expect(await jobRow(database.sql, id)).toMatchObject({ status_id: 1, attempts: 1, infrastructure_releases: 0 });
  });
});
