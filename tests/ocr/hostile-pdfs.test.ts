/**
 * Hostile PDFs on both OCR kinds (issue 19, Hostile input), through real OCR
 * runner processes started by dispatch on the local stack, Gemini played by
 * the test server: an empty file, a truncated PDF, a file that is not a PDF,
 * 2,000 pages, a 100,000 × 100,000 pt page and a decompression bomb (an
 * image declaring 100,000 × 100,000 pixels from a small Flate stream), each
 * generated here and small on disk. Each row must end in 4 as invalid_input
 * with a message naming the problem, within bounded time and memory, without
 * one Gemini call for it and without a runner crash loop (tasks exit 0).
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { deflateSync } from "node:zlib";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PROJECT_ROOT } from "../../infra/local/paths.ts";
import { defaultTaskCommand, type LocalStack } from "../../infra/local/stack.ts";
import { startThrowawayStack } from "../../infra/local/throwaway-stack.ts";
import { startGeminiTestServer, type GeminiTestServer } from "../helpers/gemini-test-server.ts";
import { textPagesPdf } from "../helpers/text-page-pdf.ts";
import { scriptedModel } from "./scripted-model.ts";

const FAST = "gemini-fast-hostile";
const STRONG = "gemini-strong-hostile";

/** A PDF from its objects' bodies (object n is bodies[n-1]), with a correct cross-reference table. */
function rawPdf(bodies: readonly (string | Buffer)[]): Buffer {
  const parts: Buffer[] = [Buffer.from("%PDF-1.4\n%\xe2\xe3\xcf\xd3\n", "latin1")];
  const offsets: number[] = [];
  let length = parts[0]?.length ?? 0;
  bodies.forEach((body, index) => {
    offsets.push(length);
    const chunk = Buffer.concat([Buffer.from(`${index + 1} 0 obj\n`), typeof body === "string" ? Buffer.from(body, "latin1") : body, Buffer.from("\nendobj\n")]);
    parts.push(chunk);
    length += chunk.length;
  });
  const xref = [`xref\n0 ${bodies.length + 1}\n0000000000 65535 f \n`, ...offsets.map((offset) => `${String(offset).padStart(10, "0")} 00000 n \n`)].join("");
  parts.push(Buffer.from(`${xref}trailer\n<< /Size ${bodies.length + 1} /Root 1 0 R >>\nstartxref\n${length}\n%%EOF\n`));
  return Buffer.concat(parts);
}

const stream = (dictionary: string, data: Buffer) => Buffer.concat([Buffer.from(`<< ${dictionary} /Length ${data.length} >>\nstream\n`), data, Buffer.from("\nendstream")]);

/** `count` pages sharing one content stream: about 60 bytes a page. */
function manyPages(count: number): Buffer {
  const kids = Array.from({ length: count }, (_, index) => `${index + 4} 0 R`).join(" ");
  const pages = Array.from({ length: count }, () => "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 3 0 R >>");
  return rawPdf(["<< /Type /Catalog /Pages 2 0 R >>", `<< /Type /Pages /Kids [${kids}] /Count ${count} >>`, stream("", Buffer.from("0 0 m 10 10 l S")), ...pages]);
}

/** One page of `size` × `size` points. */
function hugePage(size: number): Buffer {
  return rawPdf([
    "<< /Type /Catalog /Pages 2 0 R >>",
    "<< /Type /Pages /Kids [4 0 R] /Count 1 >>",
    stream("", Buffer.from("0 0 m 10 10 l S")),
    `<< /Type /Page /Parent 2 0 R /MediaBox [0 0 ${size} ${size}] /Contents 3 0 R >>`,
  ]);
}

/** A letter page drawing an image that declares `pixels` × `pixels` grey pixels, from 64 MB of zeros deflated to about 64 KB. */
function decompressionBomb(pixels: number): Buffer {
  const data = deflateSync(Buffer.alloc(64 * 1024 * 1024), { level: 9 });
  return rawPdf([
    "<< /Type /Catalog /Pages 2 0 R >>",
    "<< /Type /Pages /Kids [4 0 R] /Count 1 >>",
    stream("", Buffer.from("q 612 0 0 792 0 0 cm /Im1 Do Q")),
    "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 3 0 R /Resources << /XObject << /Im1 5 0 R >> >> >>",
    stream(`/Type /XObject /Subtype /Image /Width ${pixels} /Height ${pixels} /ColorSpace /DeviceGray /BitsPerComponent 8 /Filter /FlateDecode`, data),
  ]);
}

interface Row {
  status_id: number;
  ocr_attempts: number;
  error_kind: string | null;
  ocr_error: string | null;
}

/** Resident memory of a process and all its descendants (pdftoppm, pdfinfo …), in MB, from /proc. */
async function treeRssMb(rootPid: number): Promise<number> {
  const { readdir } = await import("node:fs/promises");
  const parents = new Map<number, number>();
  const rss = new Map<number, number>();
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const status = await readFile(`/proc/${entry}/status`, "utf8");
      parents.set(Number(entry), Number(/^PPid:\s+(\d+)/m.exec(status)?.[1] ?? -1));
      rss.set(Number(entry), Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? 0) / 1024);
    } catch {
      // Gone between the listing and the read.
    }
  }
  let total = 0;
  const pending = [rootPid];
  while (pending.length > 0) {
    const pid = pending.pop() as number;
    total += rss.get(pid) ?? 0;
    for (const [child, parent] of parents) if (parent === pid) pending.push(child);
  }
  return total;
}

describe("hostile PDFs on both OCR kinds", () => {
  let server: GeminiTestServer;
  let stack: LocalStack;
  let storageDir: string;
  let sql: postgres.Sql;
  let peakRssMb = 0;
  let sampling: NodeJS.Timeout | undefined;

  beforeAll(async () => {
    server = await startGeminiTestServer({ latencyMs: 10, fileProcessingMs: 50, respond: scriptedModel({ indexPages: [], acteText: "texte" }) });
    storageDir = await mkdtemp(join(tmpdir(), "ocr-hostile-storage-"));
    const budget = { rpm: 1_000, tpm: 5_000_000, rpd: 100_000 };
    stack = await startThrowawayStack("ocr-hostile", {
      budgetEnv: { GEMINI_LIMITS: JSON.stringify({ [FAST]: budget, [STRONG]: budget }), GEMINI_FAST_MODEL: FAST, GEMINI_BOOST_MODEL: STRONG },
      taskCommand: (family) =>
        family === "ocr"
          ? {
              command: "/usr/bin/env",
              args: [
                "GEMINI_API_KEY=test-key",
                `GEMINI_BASE_URL=${server.url}`,
                `STORAGE_LOCAL_DIR=${storageDir}`,
                "GEMINI_FILE_POLL_MS=50",
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
    sampling = setInterval(() => {
      const pids = stack.ecs.tasks().filter((task) => task.lastStatus !== "STOPPED" && task.pid !== undefined).map((task) => task.pid as number);
      void Promise.all(pids.map(treeRssMb)).then((sizes) => {
        for (const size of sizes) peakRssMb = Math.max(peakRssMb, size);
      });
    }, 100);
  }, 120_000);

  afterAll(async () => {
    if (sampling !== undefined) clearInterval(sampling);
    await sql?.end();
    await stack?.stop();
    await server?.close();
    if (storageDir) await rm(storageDir, { recursive: true, force: true });
  });

  /** Rows the registre stage finished with these files, inserted, claimed and completed in one transaction: status 3. */
  async function readyForOcr(source: "index" | "acte", files: ReadonlyArray<{ number: string; path: string }>): Promise<string[]> {
    return sql.begin(async (tx) => {
      const ids: string[] = [];
      for (const { number } of files) {
        const [row] = await tx<{ id: string }[]>`
          insert into extraction_queue (document_source, document_number, circonscription_fonciere, cadastre, acte_type)
          values (${source}, ${number}, 'Montréal', ${source === "index" ? "Cadastre du Québec" : null}, ${source === "acte" ? "Acte" : null})
          returning id`;
        if (!row) throw new Error("insert returned no row");
        ids.push(row.id);
      }
      const claimed = await tx<{ id: string; lease_token: string }[]>`select id, lease_token from queue.claim_jobs('registre', 'test-registre', ${files.length}, 60)`;
      for (const job of claimed) await tx`select queue.complete_extraction(${job.id}, ${job.lease_token}, ${files[ids.indexOf(job.id)]?.path ?? null})`;
      return ids;
    });
  }

  it.each(["index", "acte"] as const)("%s: each hostile PDF ends in 4 as invalid_input naming the problem, no Gemini call, no crash loop", async (source) => {
    const valid = await textPagesPdf([{ lines: ["Une page lisible."] }, { lines: ["Une autre page."] }]);
    const cases = [
      { name: "empty", bytes: Buffer.alloc(0), message: /the stored PDF is empty \(0 bytes\)/ },
      { name: "truncated", bytes: Buffer.from(valid.slice(0, Math.floor(valid.byteLength / 2))), message: /the stored PDF is corrupt|has no pages/ },
      { name: "not-a-pdf", bytes: Buffer.from("<!DOCTYPE html><html><body>Service Unavailable</body></html>"), message: /the stored file is not a PDF/ },
      { name: "2000-pages", bytes: manyPages(2_000), message: /the PDF has 2000 pages, more than OCR_MAX_PAGES=300/ },
      { name: "huge-page", bytes: hugePage(100_000), message: /page 1 of the PDF is 1388\.9 × 1388\.9 in: it would need \d+ DPI/ },
      { name: "bomb", bytes: decompressionBomb(100_000), message: /page 1 of the PDF holds an image of 100000 × 100000 pixels .*a decompression bomb/ },
    ];
    for (const { bytes } of cases) expect(bytes.byteLength).toBeLessThan(1_000_000);
    const prefix = source === "index" ? "index" : "actes";
    const files = cases.map((hostile, index) => ({ number: `${source === "index" ? 8 : 9} 000 00${index}`, path: `${prefix}/hostile-${hostile.name}.pdf` }));
    for (const [index, file] of files.entries()) {
      await mkdir(dirname(join(storageDir, file.path)), { recursive: true });
      await writeFile(join(storageDir, file.path), cases[index]?.bytes ?? Buffer.alloc(0));
    }
    const generateBefore = server.requests.filter((request) => request.kind === "generateContent" || request.kind.startsWith("upload")).length;
    const tasksBefore = stack.ecs.tasks().length;
    const startedAt = Date.now();
    const ids = await readyForOcr(source, files);

    const deadline = Date.now() + 90_000;
    let rows: Row[] = [];
    for (;;) {
      rows = await sql<Row[]>`select status_id, ocr_attempts, error_kind, ocr_error from extraction_queue where id in ${sql(ids)} order by document_number`;
      if (rows.every((row) => row.status_id === 4 || row.status_id === 5)) break;
      if (Date.now() > deadline) throw new Error(`not every hostile row ended: ${JSON.stringify(rows)}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const elapsedMs = Date.now() - startedAt;
    for (const [index, row] of rows.entries()) {
      const hostile = cases[index];
      expect({ name: hostile?.name, ...row }).toMatchObject({ name: hostile?.name, status_id: 4, ocr_attempts: 1, error_kind: "invalid_input", ocr_error: expect.stringMatching(hostile?.message ?? /never/) });
    }
    // Not one page of them went to Gemini.
    expect(server.requests.filter((request) => request.kind === "generateContent" || request.kind.startsWith("upload")).length).toBe(generateBefore);
    // Bounded: all six settled well within a minute. No crash loop: dispatch started at most a task per row
    // (its plan), and every one of them idles out and exits 0; none died on a file.
    expect(elapsedMs).toBeLessThan(60_000);
    const started = () => stack.ecs.tasks().slice(tasksBefore);
    expect(started().length).toBeGreaterThan(0);
    expect(started().length).toBeLessThanOrEqual(cases.length);
    const stoppedBy = Date.now() + 30_000;
    while (started().some((task) => task.lastStatus !== "STOPPED") && Date.now() < stoppedBy) await new Promise((resolve) => setTimeout(resolve, 200));
    expect(started().map((task) => task.exitCode)).toEqual(started().map(() => 0));
  }, 150_000);

  it("stayed within bounded memory (runner and poppler together)", () => {
    // The OCR profile's RAM is 0.5–0.75 GB: a bomb inflated anywhere would show as gigabytes here.
    console.log(`hostile PDFs: peak resident memory of one OCR task with its poppler children ${Math.round(peakRssMb)} MB`);
    expect(peakRssMb).toBeGreaterThan(0);
    expect(peakRssMb).toBeLessThan(700);
  });
});
