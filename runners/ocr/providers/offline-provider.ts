/**
 * The offline OCR engine: Tesseract (tesseract.js, WebAssembly) with the
 * French LSTM model from `@tesseract.js-data/fra`, read from node_modules,
 * nothing fetched. The default when no GEMINI_API_KEY is set, so a fresh
 * machine produces real text. What it cannot do (README, "OCR runner"):
 * - it does not split a ledger line into PARTIES | NATURE | … columns; each
 *   index line is Tesseract's line of text, as read;
 * - its line count is its own reading's line count, so the "page shorter
 *   than counted" check cannot catch what it missed;
 * - its boost is the deterministic subset of the correction rules
 *   (correction-rules.ts), with no judgement of context, names or handwriting;
 * - handwritten deeds come out mostly as noise.
 */
import { createRequire } from "node:module";
import { join } from "node:path";
import { createWorker, OEM, type Worker } from "tesseract.js";
import { applyIndexCorrectionRules, normalizeText } from "../correction-rules.ts";
import { rasterizePage, type PageImage, type PdfFile } from "../pdf-pages.ts";
import type { LineCount, OcrCallContext, OcrProvider, Shortfall } from "./ocr-provider.ts";

/** The French "best_int" LSTM model, shipped inside the npm package. */
export function frenchModelDir(): string {
  const require = createRequire(import.meta.url);
  return join(require.resolve("@tesseract.js-data/fra/package.json"), "..", "4.0.0_best_int");
}

interface PageReading {
  readonly lines: readonly string[];
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
    const reading = await this.#read(page, context);
    return { totalLines: reading.lines.length, confidence: reading.confidence };
  }

  async extractIndexPage(page: PageImage, _pageCount: number, context: OcrCallContext, shortfall?: Shortfall): Promise<string> {
    void shortfall; // Reading the same pixels again gives the same text.
    const reading = await this.#read(page, context);
    return reading.lines.map((line, index) => `Ligne ${index + 1}: ${line}`).join("\n");
  }

  async boostIndex(rawText: string): Promise<string> {
    return applyIndexCorrectionRules(rawText);
  }

  async extractActe(pdf: PdfFile, context: OcrCallContext): Promise<string> {
    const pages: string[] = [];
    for (let pageNumber = 1; pageNumber <= pdf.pageCount; pageNumber += 1) {
      const image = await rasterizePage(pdf, pageNumber, { dpi: this.dpi, ...this.raster, signal: context.signal });
      const reading = await this.#read(image, context);
      pages.push(`--- Page ${pageNumber} ---\n${reading.lines.join("\n")}`);
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
      const { data } = await worker.recognize(Buffer.from(page.bytes));
      const lines = data.text
        .split("\n")
        .map((line) => line.trim())
        .filter((line) => line !== "");
      return { lines, confidence: Math.max(0, Math.min(1, data.confidence / 100)) };
    })();
    this.#readings.set(page, reading);
    return reading;
  }

  #getWorker(): Promise<Worker> {
    this.#worker ??= createWorker("fra", OEM.LSTM_ONLY, {
      langPath: frenchModelDir(),
      gzip: true,
      // Nothing written next to the process (the image's /app is read-only to the runner's user).
      cacheMethod: "none",
    });
    return this.#worker;
  }
}
