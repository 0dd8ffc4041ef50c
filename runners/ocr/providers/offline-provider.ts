/**
 * The offline OCR engine: Tesseract (tesseract.js, WebAssembly) with the
 * French and English LSTM models (`@tesseract.js-data/fra`, `…/eng`: the
 * registry's older ledgers include English pre-printed forms), read from
 * node_modules, nothing fetched. The default when no GEMINI_API_KEY is set, so a fresh
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
import { copyFile, mkdtemp, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createWorker, OEM, PSM, type Worker } from "tesseract.js";
import { applyIndexCorrectionRules, normalizeText } from "../correction-rules.ts";
import { rasterizePage, type PageImage, type PdfFile } from "../pdf-pages.ts";
import { readLedger, type LedgerReading, type OcrLine } from "./offline-ledger.ts";
import type { LineCount, OcrCallContext, OcrProvider, Shortfall } from "./ocr-provider.ts";

/** The languages Tesseract reads with, in its order of preference (`fra+eng`). */
export const OFFLINE_LANGUAGES = ["fra", "eng"] as const;
export type OfflineLanguage = (typeof OFFLINE_LANGUAGES)[number];

/** A language's "best_int" LSTM model, shipped inside its npm package (gzipped). */
export function languageModelFile(language: OfflineLanguage): string {
  const require = createRequire(import.meta.url);
  return join(require.resolve(`@tesseract.js-data/${language}/package.json`), "..", "4.0.0_best_int", `${language}.traineddata.gz`);
}

/**
 * One folder holding every language's model, for tesseract.js's single
 * `langPath`: it reads `<langPath>/<code>.traineddata.gz` for each code of
 * "fra+eng" (tesseract.js 7.0.0, src/worker-script/index.js, loadLanguage),
 * and each model lives in its own npm package. Its other way, a `{ code,
 * data }` per language, loads the models but then initializes with the
 * models' bytes in place of their codes (same file, `initialize`:
 * `l.data` joined with "+"), so the models are copied into a private temp
 * folder, removed when the engine closes.
 */
async function modelFolder(languages: readonly OfflineLanguage[]): Promise<string> {
  const folder = await mkdtemp(join(tmpdir(), "ocr-tesseract-"));
  await Promise.all(languages.map((language) => copyFile(languageModelFile(language), join(folder, `${language}.traineddata.gz`))));
  return folder;
}

interface PageReading {
  readonly ledger: LedgerReading;
  readonly confidence: number;
}

export class OfflineOcrProvider implements OcrProvider {
  readonly name = "offline" as const;
  // Tesseract reads best near 300 DPI; the ×2 upscale only quadruples its time. Lossless input.
  readonly raster = { upscale: 1, format: "png" } as const;
  #worker: Promise<{ readonly worker: Worker; readonly folder: string }> | undefined;
  /** A page read for its count is not read again for its text. */
  readonly #readings = new WeakMap<PageImage, Promise<PageReading>>();

  /** `languages`: the models Tesseract combines; the runner always reads fra+eng, tests compare. */
  constructor(
    readonly dpi: number,
    readonly languages: readonly OfflineLanguage[] = OFFLINE_LANGUAGES,
  ) {}

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
    if (worker === undefined) return;
    const { worker: engine, folder } = await worker;
    await engine.terminate();
    await rm(folder, { recursive: true, force: true });
  }

  /** Reads one page's text (one recognition at a time: the worker is single-threaded). */
  #read(page: PageImage, context: OcrCallContext): Promise<PageReading> {
    const known = this.#readings.get(page);
    if (known !== undefined) return known;
    const reading = (async () => {
      context.signal.throwIfAborted();
      const { worker } = await this.#getWorker();
      const { data } = await worker.recognize(Buffer.from(page.bytes), {}, { blocks: true, text: true });
      const lines: OcrLine[] = (data.blocks ?? []).flatMap((block) =>
        block.paragraphs.flatMap((paragraph) => paragraph.lines.map((line) => ({ words: line.words.map((word) => ({ text: word.text, x0: word.bbox.x0 })) }))),
      );
      return { ledger: readLedger(lines), confidence: Math.max(0, Math.min(1, data.confidence / 100)) };
    })();
    this.#readings.set(page, reading);
    return reading;
  }

  #getWorker(): Promise<{ readonly worker: Worker; readonly folder: string }> {
    this.#worker ??= (async () => {
      const folder = await modelFolder(this.languages);
      const worker = await createWorker(this.languages.join("+"), OEM.LSTM_ONLY, {
        langPath: folder,
        gzip: true,
        // Nothing written next to the process (the image's /app is read-only to the runner's user).
        cacheMethod: "none",
      }).catch(async (error: unknown) => {
        await rm(folder, { recursive: true, force: true });
        throw error;
      });
      // Automatic page segmentation (tesseract.js's default is PSM 6, one uniform block).
      await worker.setParameters({ tessedit_pageseg_mode: PSM.AUTO });
      return { worker, folder };
    })();
    return this.#worker;
  }
}
