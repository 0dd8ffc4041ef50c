import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GeminiRateBudget } from "../../supabase/functions/_shared/gemini-rate-budget.ts";
import { createLogger } from "../../runners/lifecycle/structured-log.ts";
import { classifyFailure } from "../../runners/lifecycle/job-errors.ts";
import { boostSkippedFlag } from "../../runners/ocr/index-page-boost.ts";
import { upstashPageStore } from "../../runners/ocr/index-page-store.ts";
import { cutFlag, incompleteFlag } from "../../runners/ocr/index-page.ts";
import { runIndexPipeline } from "../../runners/ocr/index-pipeline.ts";
import { parseOcrSettings } from "../../runners/ocr/ocr-config.ts";
import { openPdf, type PdfFile } from "../../runners/ocr/pdf-pages.ts";
import { GeminiOcrProvider } from "../../runners/ocr/providers/gemini-provider.ts";
import { startGeminiTestServer, type GeminiTestServer } from "../helpers/gemini-test-server.ts";
import { textPagesPdf } from "../helpers/text-page-pdf.ts";
import { randomKeyPrefix, upstashClient } from "../helpers/upstash-client.ts";
import { BOOST_MARK, boostInput, promptKind, promptPage, scriptedModel } from "./scripted-model.ts";

const FAST = "gemini-fast-test";
const STRONG = "gemini-strong-test";
const limits = { [FAST]: { rpm: 1000, tpm: 10_000_000, rpd: 100_000 }, [STRONG]: { rpm: 1000, tpm: 10_000_000, rpd: 100_000 } };

const ledger = (page: number, count: number) =>
  Array.from({ length: count }, (_, index) => `Tremblay, Jean ; Banque Nationale | Hypothèque | 1987-03-${String(10 + index).padStart(2, "0")} | ${page} 234 56${index} |  | 45 000,00 $`);
const PAGES = [ledger(1, 5), ledger(2, 4), ledger(3, 3)];

describe("the index pipeline with Gemini (test server)", () => {
  let server: GeminiTestServer;
  let pdf: PdfFile;
  beforeAll(async () => {
    server = await startGeminiTestServer();
    pdf = await openPdf(await textPagesPdf(PAGES.map((lines) => ({ lines, fontSizePx: 30 }))));
  });
  afterAll(async () => {
    await pdf?.dispose();
    await server?.close();
  });

  function provider(): GeminiOcrProvider {
    const settings = parseOcrSettings({ GEMINI_API_KEY: "test-key", GEMINI_BASE_URL: server.url, GEMINI_BACKOFF_BASE_MS: "50" });
    if (settings.gemini === undefined) throw new Error("gemini settings expected");
    const budget = new GeminiRateBudget(upstashClient(), { limits }, { keyPrefix: randomKeyPrefix("ocr-index") });
    return new GeminiOcrProvider(settings.gemini, { fast: FAST, boost: STRONG }, budget);
  }

  it("counts and extracts every page at 300 DPI, retries a short page with the shortfall stated, flags one still short, and boosts page by page", async () => {
    server.clearLog();
    // Page 1: 2 lines missing on the first read, none on the retry. Page 2: 3 missing, then 1 still missing.
    server.setResponder(scriptedModel({ indexPages: PAGES, acteText: "", dropLines: new Map([[1, [2, 0]], [2, [3, 1]]]) }));
    const context = { signal: new AbortController().signal, log: createLogger({ base: { test: "index-pipeline" }, level: "error" }) };
    const result = await runIndexPipeline(pdf, provider(), { dpi: 300, pageConcurrency: 6 }, context);

    const calls = server.requests.filter((request) => request.kind === "generateContent");
    const kinds = calls.map((request) => (request.generate ? promptKind(request.generate) : "none"));
    expect(kinds.filter((kind) => kind === "line-count")).toHaveLength(3);
    expect(kinds.filter((kind) => kind === "index-extraction")).toHaveLength(5);
    // The boost runs page by page.
    expect(kinds.filter((kind) => kind === "index-boost")).toHaveLength(3);
    expect(calls.every((request) => request.model === (request.generate && promptKind(request.generate) === "index-boost" ? STRONG : FAST))).toBe(true);
    // The retries state the shortfall.
    const retries = calls.filter((request) => request.generate?.text.includes("ATTENTION")).map((request) => request.generate?.text ?? "");
    expect(retries).toHaveLength(2);
    expect(retries.some((text) => text.includes("n'a transcrit que 3 lignes alors que le tableau en compte 5"))).toBe(true);
    expect(retries.some((text) => text.includes("n'a transcrit que 1 lignes alors que le tableau en compte 4"))).toBe(true);
    // Each page went as one image rendered at 300 DPI, not upscaled (8.5 × 11 in → 2550 × 3300 px): Gemini resizes to its token budget anyway.
    const image = calls.find((request) => request.generate && promptKind(request.generate) === "line-count")?.generate?.body;
    const data = JSON.stringify(image).match(/"data":"([^"]+)"/)?.[1] ?? "";
    const metadata = await sharp(Buffer.from(data, "base64")).metadata();
    expect([metadata.width, metadata.height, metadata.format]).toEqual([2550, 3300, "jpeg"]);

    expect(result.pages.map((page) => [page.pageNumber, page.countedLines, page.extractedLines, page.retried, page.incomplete])).toEqual([
      [1, 5, 5, true, false],
      [2, 4, 3, true, true],
      [3, 3, 3, false, false],
    ]);
    for (const text of [result.fileContent, result.boostedFileContent]) {
      for (const page of [1, 2, 3]) expect(text).toContain(`--- Page ${page} ---`);
      expect(text).toContain(`--- Page 2 ---\n${incompleteFlag(3, 4)}\nLigne 1: `);
      expect(text.match(/\[PAGE INCOMPLÈTE/g)).toHaveLength(1);
    }
    expect(result.fileContent).toContain(`--- Page 1 ---\nLigne 1: ${PAGES[0]?.[0]}`);
    expect(result.fileContent).toContain(`Ligne 5: ${PAGES[0]?.[4]}`);
    expect(result.boostedFileContent).toContain(BOOST_MARK);
    expect(result.fileContent).not.toContain(BOOST_MARK);
  });

  const quietContext = () => ({ signal: new AbortController().signal, log: createLogger({ base: { test: "index-pipeline" }, level: "error" }) });
  const perfect = () => scriptedModel({ indexPages: PAGES, acteText: "" });

  it("a boost that loses a page marker or changes a page's Ligne N set leaves that page's raw text, flagged; the others are boosted", async () => {
    server.setResponder((request) => {
      if (promptKind(request) !== "index-boost") return perfect()(request);
      const input = boostInput(request);
      if (input.startsWith("--- Page 2 ---")) return "Ligne 1: tout"; // marker lost
      if (input.startsWith("--- Page 3 ---")) return input.split("\n").slice(0, -1).join("\n"); // a line dropped
      return perfect()(request);
    });
    const result = await runIndexPipeline(pdf, provider(), { dpi: 100, pageConcurrency: 3 }, quietContext());
    expect(result.pages.map((page) => page.boostSkipped)).toEqual([false, true, true]);
    expect(result.boostedFileContent).toContain(`--- Page 1 ---\n${BOOST_MARK}`);
    expect(result.boostedFileContent).toContain(`--- Page 2 ---\n${boostSkippedFlag("le marqueur de page a été perdu")}\nLigne 1: ${PAGES[1]?.[0]}`);
    expect(result.boostedFileContent).toMatch(/--- Page 3 ---\n\[CORRECTION NON APPLIQUÉE : lignes 2 au lieu de 3/);
    for (const line of [...(PAGES[1] ?? []), ...(PAGES[2] ?? [])]) expect(result.boostedFileContent).toContain(line);
  });

  it("a page cut by MAX_TOKENS twice is flagged in place with the lines it had; a SAFETY stop is read again; the other pages complete", async () => {
    const reads = new Map<string, number>();
    server.setResponder((request) => {
      if (promptKind(request) !== "index-extraction") return perfect()(request);
      const page = promptPage(request);
      const read = (reads.get(String(page)) ?? 0) + 1;
      reads.set(String(page), read);
      const full = String(perfect()(request));
      if (page === 2) return { text: full.split("\n").slice(0, 3).join("\n") + "\nLigne 4: Trembl", finishReason: "MAX_TOKENS" };
      if (page === 3 && read === 1) return { text: "", finishReason: "SAFETY" };
      return full;
    });
    const result = await runIndexPipeline(pdf, provider(), { dpi: 100, pageConcurrency: 3 }, quietContext());
    expect(result.pages.map((page) => [page.pageNumber, page.extractedLines, page.retried, page.incomplete])).toEqual([
      [1, 5, false, false],
      [2, 3, true, true],
      [3, 3, true, false],
    ]);
    expect(result.fileContent).toContain(`--- Page 2 ---\n${cutFlag("MAX_TOKENS", 3)}\n${incompleteFlag(3, 4)}\nLigne 1: ${PAGES[1]?.[0]}`);
    // The cut last line is not kept as if it were a line.
    expect(result.fileContent.split("--- Page 2 ---")[1]?.split("--- Page 3 ---")[0]).not.toContain("Ligne 4");
    expect(result.boostedFileContent).toContain(cutFlag("MAX_TOKENS", 3));
    expect(result.fileContent).toContain(`Ligne 3: ${PAGES[2]?.[2]}`);
  });

  it("an empty page is a page with no line, not a failure; a document with no readable page fails for good (document_unreadable)", async () => {
    server.setResponder((request) => {
      const kind = promptKind(request);
      if (kind === "line-count" && promptPage(request) === 2) return JSON.stringify({ total_lines: 0, confidence: 0.99 });
      if (kind === "index-extraction" && promptPage(request) === 2) return { text: "", finishReason: "STOP" };
      return perfect()(request);
    });
    const result = await runIndexPipeline(pdf, provider(), { dpi: 100, pageConcurrency: 3 }, quietContext());
    expect(result.pages.map((page) => [page.countedLines, page.extractedLines, page.incomplete])).toEqual([[5, 5, false], [0, 0, false], [3, 3, false]]);
    expect(result.fileContent).toContain("--- Page 2 ---\n\n--- Page 3 ---");

    server.setResponder((request) => (promptKind(request) === "index-extraction" ? { text: "", finishReason: "RECITATION" } : perfect()(request)));
    const failure = await runIndexPipeline(pdf, provider(), { dpi: 100, pageConcurrency: 3 }, quietContext()).catch((error: unknown) => error);
    expect(classifyFailure(failure)).toMatchObject({ disposition: "final", kind: "document_unreadable" });
    expect(classifyFailure(failure).message).toContain("réponse interrompue (RECITATION)");
  });

  it("a retry reads only the pages the failed attempt did not finish; the kept pages are forgotten once the job is done", async () => {
    const store = upstashPageStore(upstashClient(), `${randomKeyPrefix("pages")}:`, "job-1", "gemini:v2");
    // Attempt 1: page 3's extraction is refused (a failed attempt), after pages 1 and 2 were read completely.
    server.setLatency((request) => (request !== undefined && promptKind(request) === "index-extraction" && promptPage(request) === 3 ? 400 : 0));
    server.setResponder((request) => (promptKind(request) === "index-extraction" && promptPage(request) === 3 ? { error: { code: 400, message: "Request contains an invalid argument." } } : perfect()(request)));
    await expect(runIndexPipeline(pdf, provider(), { dpi: 100, pageConcurrency: 3, pageStore: store }, quietContext())).rejects.toMatchObject({ disposition: "retryable" });
    expect([...(await store.load()).keys()].sort()).toEqual([1, 2]);
    // Attempt 2: only page 3 is read again.
    server.setLatency(0);
    server.clearLog();
    server.setResponder(perfect());
    const result = await runIndexPipeline(pdf, provider(), { dpi: 100, pageConcurrency: 3, pageStore: store }, quietContext());
    const read = server.requests.filter((request) => request.generate !== undefined && ["line-count", "index-extraction"].includes(promptKind(request.generate))).map((request) => (request.generate === undefined ? 0 : promptPage(request.generate)));
    expect([...new Set(read)]).toEqual([3]);
    for (const page of [1, 2, 3]) expect(result.fileContent).toContain(`Ligne 1: ${PAGES[page - 1]?.[0]}`);
    expect((await store.load()).size).toBe(0);
  });
});
