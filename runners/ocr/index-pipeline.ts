/**
 * Index documents (scanned land-registry ledgers, 5–30 pages): every page
 * rasterized at ≈300 DPI and upscaled, then per page one line-count call and
 * one extraction call (in parallel, OCR_PAGE_CONCURRENCY pages at a time,
 * each call inside the shared Gemini budget). A page whose extraction has
 * fewer lines than were counted is read once more with the shortfall
 * stated; if still short it is flagged in the text, never passed off as
 * complete (the earlier system marked 9 of 22 lines "complete"). Then one
 * boost over the whole document, which must keep every `--- Page N ---`.
 */
import { RetryableJobError } from "../lifecycle/job-errors.ts";
import { mapWithConcurrency } from "./map-with-concurrency.ts";
import { rasterizePage, type PdfFile } from "./pdf-pages.ts";
import type { OcrCallContext, OcrProvider } from "./providers/ocr-provider.ts";

export interface IndexPipelineSettings {
  readonly dpi: number;
  readonly pageConcurrency: number;
}

export interface IndexPageOutcome {
  readonly pageNumber: number;
  readonly countedLines: number;
  readonly countConfidence: number;
  readonly extractedLines: number;
  /** The page was read a second time because it came back short. */
  readonly retried: boolean;
  /** Still short after the second read: the text says so. */
  readonly incomplete: boolean;
}

export interface IndexPipelineResult {
  readonly fileContent: string;
  readonly boostedFileContent: string;
  readonly pages: readonly IndexPageOutcome[];
}

export const pageMarker = (pageNumber: number) => `--- Page ${pageNumber} ---`;
export const incompleteFlag = (extracted: number, counted: number) =>
  `[PAGE INCOMPLÈTE : ${extracted} ligne(s) extraite(s) sur ${counted} comptée(s) ; vérifier la page d'origine]`;

export async function runIndexPipeline(pdf: PdfFile, provider: OcrProvider, settings: IndexPipelineSettings, context: OcrCallContext): Promise<IndexPipelineResult> {
  const pageNumbers = Array.from({ length: pdf.pageCount }, (_, index) => index + 1);
  let done = 0;
  const pages = await mapWithConcurrency(pageNumbers, settings.pageConcurrency, async (pageNumber) => {
    const page = await readPage(pdf, pageNumber, provider, settings, context);
    done += 1;
    context.log.info("index page read", { page: pageNumber, pages: pdf.pageCount, done, counted_lines: page.outcome.countedLines, extracted_lines: page.outcome.extractedLines, retried: page.outcome.retried, incomplete: page.outcome.incomplete });
    return page;
  });
  const fileContent = pages.map((page) => page.text).join("\n\n");
  const boosted = await provider.boostIndex(fileContent, context);
  const boostedFileContent = keepStructure(boosted, pages.map((page) => page.outcome));
  return { fileContent, boostedFileContent, pages: pages.map((page) => page.outcome) };
}

async function readPage(pdf: PdfFile, pageNumber: number, provider: OcrProvider, settings: IndexPipelineSettings, context: OcrCallContext): Promise<{ text: string; outcome: IndexPageOutcome }> {
  const image = await rasterizePage(pdf, pageNumber, { dpi: settings.dpi, ...provider.raster, signal: context.signal });
  const [count, firstText] = await Promise.all([
    provider.countIndexLines(image, pdf.pageCount, context),
    provider.extractIndexPage(image, pdf.pageCount, context),
  ]);
  let lines = ledgerLines(firstText);
  let retried = false;
  if (lines.length < count.totalLines) {
    retried = true;
    context.log.warn("index page short of its counted lines: reading it again", { page: pageNumber, counted_lines: count.totalLines, extracted_lines: lines.length });
    const second = ledgerLines(await provider.extractIndexPage(image, pdf.pageCount, context, { expected: count.totalLines, extracted: lines.length }));
    if (second.length > lines.length) lines = second;
  }
  const incomplete = lines.length < count.totalLines;
  const body = lines.map((line, index) => `Ligne ${index + 1}: ${line}`);
  const text = [pageMarker(pageNumber), ...(incomplete ? [incompleteFlag(lines.length, count.totalLines)] : []), ...body].join("\n");
  return {
    text,
    outcome: { pageNumber, countedLines: count.totalLines, countConfidence: count.confidence, extractedLines: lines.length, retried, incomplete },
  };
}

/**
 * The contents of a page's ledger lines: `Ligne N: …` lines when the reply
 * has them, else every non-blank line (a reply that forgot the prefix).
 */
export function ledgerLines(reply: string): string[] {
  const all = reply
    .replace(/^```[a-z]*\s*$/gim, "")
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "");
  const prefixed = all.flatMap((line) => {
    const match = /^Ligne\s+\d+\s*:\s*(.*)$/i.exec(line);
    return match ? [match[1] ?? ""] : [];
  });
  return prefixed.length > 0 ? prefixed : all.filter((line) => !/^---\s*Page\s+\d+\s*---$/i.test(line));
}

/**
 * The boosted text must keep the document's structure: a boost that lost a
 * page marker fails the attempt (the raw text alone would hide the loss);
 * an incomplete-page flag the boost dropped is put back under its marker.
 */
function keepStructure(boosted: string, pages: readonly IndexPageOutcome[]): string {
  const text = boosted.replace(/^```[a-z]*\s*$/gim, "").trim();
  const missing = pages.filter((page) => !text.includes(pageMarker(page.pageNumber))).map((page) => page.pageNumber);
  if (missing.length > 0) throw new RetryableJobError(`the index boost lost the marker of page(s) ${missing.join(", ")}; its text is not trusted`);
  let result = text;
  for (const page of pages) {
    if (!page.incomplete) continue;
    const flag = incompleteFlag(page.extractedLines, page.countedLines);
    if (!result.includes(flag)) result = result.replace(pageMarker(page.pageNumber), `${pageMarker(page.pageNumber)}\n${flag}`);
  }
  return result;
}
