/**
 * Index documents (scanned land-registry ledgers, 5–30 pages): every page
 * rasterized, then per page one line-count call and one extraction call (in
 * parallel, OCR_PAGE_CONCURRENCY pages at a time, each call inside the shared
 * Gemini budget), then the boost page by page (index-page-boost.ts).
 *
 * Complete or flagged, never silently short:
 * - a page whose extraction has fewer lines than were counted, or whose reply
 *   was cut or withheld (finishReason MAX_TOKENS, SAFETY, RECITATION…), is
 *   read once more (with the shortfall stated); if still short or cut it is
 *   flagged in place under its marker while the other pages complete (the
 *   earlier system marked 9 of 22 lines "complete": never again);
 * - a count that never comes back complete leaves the page flagged
 *   "unverified" rather than failing the document;
 * - an empty page is a page with no line, not a failure; only a document
 *   with no readable page at all fails (FinalJobError, document_unreadable).
 * Failures that are not the page's (quota, network, configuration) still end
 * the attempt as classified (gemini-calls.ts).
 */
import { FinalJobError } from "../lifecycle/job-errors.ts";
import { cutFlag, incompleteFlag, pageMarker, UNVERIFIED_FLAG, type IndexPageOutcome, type ReadPage } from "./index-page.ts";
import { boostIndexPages } from "./index-page-boost.ts";
import { mapWithConcurrency } from "./map-with-concurrency.ts";
import type { IndexPageStore } from "./index-page-store.ts";
import type { PdfLimits } from "./pdf-layout.ts";
import { rasterizePage, type PageImage, type PdfFile } from "./pdf-pages.ts";
import { IncompleteReplyError, type LineCount, type OcrCallContext, type OcrProvider } from "./providers/ocr-provider.ts";

export interface IndexPipelineSettings {
  readonly dpi: number;
  readonly pageConcurrency: number;
  /** The per-page pixel cap renders stay within. @default DEFAULT_PDF_LIMITS */
  readonly limits?: PdfLimits;
  /** Pages an earlier attempt read completely, reused instead of read again (index-page-store.ts). */
  readonly pageStore?: IndexPageStore;
}

export interface IndexPipelineResult {
  readonly fileContent: string;
  readonly boostedFileContent: string;
  readonly pages: readonly IndexPageOutcome[];
}

export async function runIndexPipeline(pdf: PdfFile, provider: OcrProvider, settings: IndexPipelineSettings, context: OcrCallContext): Promise<IndexPipelineResult> {
  const pageNumbers = Array.from({ length: pdf.pageCount }, (_, index) => index + 1);
  const store = settings.pageStore;
  const earlier = store === undefined ? new Map<number, ReadPage>() : await store.load().catch((error: unknown) => {
    context.log.warn("could not load the pages an earlier attempt read; reading every page", { error });
    return new Map<number, ReadPage>();
  });
  if (earlier.size > 0) context.log.info("index pages reused from an earlier attempt", { pages: [...earlier.keys()].sort((a, b) => a - b) });
  let done = 0;
  const pages = await mapWithConcurrency(pageNumbers, settings.pageConcurrency, async (pageNumber) => {
    const kept = earlier.get(pageNumber);
    if (kept !== undefined) return kept;
    const image = await rasterizePage(pdf, pageNumber, { dpi: settings.dpi, ...provider.raster, ...(settings.limits === undefined ? {} : { limits: settings.limits }), signal: context.signal });
    const page = await readPage(image, pdf.pageCount, provider, context);
    await store?.save(page).catch((error: unknown) => context.log.warn("could not keep the page for a later attempt", { page: pageNumber, error }));
    done += 1;
    const { outcome } = page;
    context.log.info("index page read", { page: pageNumber, pages: pdf.pageCount, done, counted_lines: outcome.countedLines, extracted_lines: outcome.extractedLines, retried: outcome.retried, incomplete: outcome.incomplete });
    return page;
  });
  if (pages.every((page) => page.lines.length === 0)) {
    const why = pages.map((page) => `page ${page.outcome.pageNumber}: ${page.outcome.flags.join(" ") || "aucune ligne"}`).join("; ");
    throw new FinalJobError(`no readable page in the index (${pdf.pageCount} page(s)): ${why}`.slice(0, 900), { kind: "document_unreadable" });
  }
  const fileContent = pages.map((page) => page.text).join("\n\n");
  const boosted = await boostIndexPages(pages, provider, settings.pageConcurrency, context);
  await store?.clear().catch((error: unknown) => context.log.warn("could not forget the job's read pages; they expire on their own", { error }));
  return {
    fileContent,
    boostedFileContent: boosted.map((page) => page.text).join("\n\n"),
    pages: pages.map((page, index) => ({ ...page.outcome, boostSkipped: boosted[index]?.skipped ?? false })),
  };
}

/** What one extraction returned: its lines, and the finishReason when the reply was not complete. */
interface Extraction {
  readonly lines: string[];
  /** The page's header lines (`EN-TÊTE : …`: lot, cadastre, "Suite de la page…"), kept above the ledger lines. */
  readonly header: string[];
  readonly cut: string | undefined;
}

export async function readPage(image: PageImage, pageCount: number, provider: OcrProvider, context: OcrCallContext): Promise<ReadPage> {
  const pageNumber = image.pageNumber;
  const [count, first] = await Promise.all([countOf(image, pageCount, provider, context), extract(image, pageCount, provider, context)]);
  let best = first;
  const short = (reading: Extraction) => reading.cut !== undefined || (count !== null && reading.lines.length < count.totalLines);
  const retried = short(first);
  if (retried) {
    context.log.warn("index page short or cut: reading it again", { page: pageNumber, counted_lines: count?.totalLines ?? null, extracted_lines: first.lines.length, finish_reason: first.cut ?? "STOP" });
    const shortfall = count !== null && first.lines.length < count.totalLines ? { expected: count.totalLines, extracted: first.lines.length } : undefined;
    const second = await extract(image, pageCount, provider, context, shortfall);
    if (betterThan(second, first)) best = second;
  }
  const flags: string[] = [];
  if (best.cut !== undefined) flags.push(cutFlag(best.cut, best.lines.length));
  if (count === null) flags.push(UNVERIFIED_FLAG);
  else if (best.lines.length < count.totalLines) flags.push(incompleteFlag(best.lines.length, count.totalLines));
  const body = best.lines.map((line, index) => `Ligne ${index + 1}: ${line}`);
  return {
    text: [pageMarker(pageNumber), ...flags, ...best.header, ...body].join("\n"),
    lines: best.lines,
    outcome: {
      pageNumber,
      countedLines: count?.totalLines ?? null,
      countConfidence: count?.confidence ?? 0,
      extractedLines: best.lines.length,
      retried,
      incomplete: flags.length > 0,
      flags,
    },
  };
}

/** A complete reply beats a cut one; between two alike, the one with more lines. */
function betterThan(candidate: Extraction, current: Extraction): boolean {
  if ((candidate.cut === undefined) !== (current.cut === undefined)) return candidate.cut === undefined;
  return candidate.lines.length > current.lines.length;
}

/** The page's line count, read again once when the reply is not complete; null when it never is. */
async function countOf(image: PageImage, pageCount: number, provider: OcrProvider, context: OcrCallContext): Promise<LineCount | null> {
  for (let attempt = 1; attempt <= 2; attempt += 1) {
    try {
      return await provider.countIndexLines(image, pageCount, context);
    } catch (error) {
      if (!(error instanceof IncompleteReplyError)) throw error;
      context.log.warn("index line count not complete", { page: image.pageNumber, attempt, finish_reason: error.finishReason });
    }
  }
  return null;
}

/** One extraction; a reply cut or withheld keeps what it had, marked with its finishReason. */
async function extract(image: PageImage, pageCount: number, provider: OcrProvider, context: OcrCallContext, shortfall?: { expected: number; extracted: number }): Promise<Extraction> {
  try {
    const reply = await provider.extractIndexPage(image, pageCount, context, shortfall);
    return { lines: ledgerLines(reply), header: headerLines(reply), cut: undefined };
  } catch (error) {
    if (!(error instanceof IncompleteReplyError)) throw error;
    // STOP with no text: a page with no line (an empty page is not a failure).
    if (error.finishReason === "STOP") return { lines: [], header: [], cut: undefined };
    // The last line of a cut reply may itself be cut: keep only the lines before it.
    const lines = ledgerLines(error.partialText);
    return { lines: error.finishReason === "MAX_TOKENS" ? lines.slice(0, -1) : lines, header: headerLines(error.partialText), cut: error.finishReason };
  }
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
  return prefixed.length > 0 ? prefixed : all.filter((line) => !/^---\s*Page\s+\d+\s*---$/i.test(line) && !/^\[.*\]$/.test(line) && !HEADER_LINE.test(line));
}

/** A page-header line of a reply: `EN-TÊTE : Lot 1 234 567`, written as `EN-TÊTE : …`. */
const HEADER_LINE = /^EN[-\s]?T[ÊE]TE\s*:\s*(.*)$/i;

export function headerLines(reply: string): string[] {
  return reply.split("\n").flatMap((line) => {
    const match = HEADER_LINE.exec(line.trim());
    return match?.[1] === undefined || match[1].trim() === "" ? [] : [`EN-TÊTE : ${match[1].trim()}`];
  });
}
