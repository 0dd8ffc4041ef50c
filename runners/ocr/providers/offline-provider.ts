/**
 * The offline OCR engine: Tesseract (tesseract.js, WebAssembly) with the
 * French LSTM model from `@tesseract.js-data/fra`, read from node_modules,
 * nothing fetched. The default when no GEMINI_API_KEY is set, so a fresh
 * machine produces real text. What it cannot do (README, "OCR runner"):
 * - it reads in automatic page segmentation (PSM 3, as the tesseract command
 *   line does; tesseract.js defaults to the API's single block, which lost
 *   most rows of a ruled ledger) and puts each row's words back into the
 *   PARTIES | NATURE | … columns by the column-header line's positions
 *   (offline-ledger.ts); the lines above it are the page's header;
 * - its line count is its own reading's line count, so the "page shorter
 *   than counted" check cannot catch what it missed;
 * - its boost is the deterministic subset of the correction rules
 *   (correction-rules.ts), with no judgement of context, names or handwriting;
 * - handwritten deeds come out mostly as noise.
 */
import { createRequire } from "node:module";
import { join } from "node:path";
import { createWorker, OEM, PSM, type Worker } from "tesseract.js";
import { applyIndexCorrectionRules, normalizeText } from "../correction-rules.ts";
import { rasterizePage, type PageImage, type PdfFile } from "../pdf-pages.ts";
import { readLedger, type LedgerReading, type OcrLine } from "./offline-ledger.ts";
import type { LineCount, OcrCallContext, OcrProvider, Shortfall } from "./ocr-provider.ts";

/** The French "best_int" LSTM model, shipped inside the npm package. */
export function frenchModelDir(): string {
  const require = createRequire(import.meta.url);
  return join(require.resolve("@tesseract.js-data/fra/package.json"), "..", "4.0.0_best_int");
}

interface PageReading {
  readonly ledger: LedgerReading;
  readonly confidence: number;
}

export class OfflineOcrProvider implements OcrProvider {
  readonly name = "offline" as const;
  // Tesseract reads best near 300 DPI; the ×2 upscale only quadruples its time. Lossless input.
  readonly raster = { upscale: 1, format: "png" } as const;
  #worker: Promise<Worker> | undefined;
  /** A page read for its count is not read again for its text. */
  readonly #readings = new WeakMap<PageImage, Promise<PageReading>>();

  constructor(readonly dpi: number) {}

  async countIndexLines(page: PageImage, _pageCount: number, context: OcrCallContext): Promise<LineCount> {
    const { ledger, confidence } = await this.#read(page, context);
    return { totalLines: ledger.rows?.length ?? ledger.plain.length, confidence };
  }

  async extractIndexPage(page: PageImage, _pageCount: number, context: OcrCallContext, shortfall?: Shortfall): Promise<string> {
    void shortfall; // Reading the same pixels again gives the same text.
    const { ledger } = await this.#read(page, context);
    const lines = ledger.rows === undefined ? ledger.plain : ledger.rows.map((cells) => cells.join(" | "));
    return [...ledger.header.map((line) => `EN-TÊTE : ${line}`), ...lines.map((line, index) => `Ligne ${index + 1}: ${line}`)].join("\n");
  }

  async boostIndex(rawText: string): Promise<string> {
    return applyIndexCorrectionRules(rawText);
  }

  async extractActe(pdf: PdfFile, context: OcrCallContext): Promise<string> {
    const pages: string[] = [];
    for (let pageNumber = 1; pageNumber <= pdf.pageCount; pageNumber += 1) {
      const image = await rasterizePage(pdf, pageNumber, { dpi: this.dpi, ...this.raster, signal: context.signal });
      const reading = await this.#read(image, context);
      pages.push(`--- Page ${pageNumber} ---\n${reading.ledger.plain.join("\n")}`);
    }
    return pages.join("\n\n");
  }

  async boostActe(rawText: string): Promise<string> {
    return normalizeText(rawText);
  }

  async close(): Promise<void> {
    const worker = this.#worker;
    this.#worker = undefined;
    if (worker !== undefined) await (await worker).terminate();
  }

  /** Reads one page's text (one recognition at a time: the worker is single-threaded). */
  #read(page: PageImage, context: OcrCallContext): Promise<PageReading> {
    const known = this.#readings.get(page);
    if (known !== undefined) return known;
    const reading = (async () => {
      context.signal.throwIfAborted();
      const worker = await this.#getWorker();
      const { data } = await worker.recognize(Buffer.from(page.bytes), {}, { blocks: true, text: true });
      const lines: OcrLine[] = (data.blocks ?? []).flatMap((block) =>
        block.paragraphs.flatMap((paragraph) => paragraph.lines.map((line) => ({ words: line.words.map((word) => ({ text: word.text, x0: word.bbox.x0 })) }))),
      );
      return { ledger: readLedger(lines), confidence: Math.max(0, Math.min(1, data.confidence / 100)) };
    })();
    this.#readings.set(page, reading);
    return reading;
  }

  #getWorker(): Promise<Worker> {
    this.#worker ??= (async () => {
      const worker = await createWorker("fra", OEM.LSTM_ONLY, {
        langPath: frenchModelDir(),
        gzip: true,
        // Nothing written next to the process (the image's /app is read-only to the runner's user).
        cacheMethod: "none",
      });
      // Automatic page segmentation (tesseract.js's default is PSM 6, one uniform block).
      await worker.setParameters({ tessedit_pageseg_mode: PSM.AUTO });
      return worker;
    })();
    return this.#worker;
  }
}
