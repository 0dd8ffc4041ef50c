/**
 * One interface for what reads documents, so the index and acte pipelines
 * do not care whether Gemini or the offline engine does the reading.
 */
import { RetryableJobError } from "../../lifecycle/job-errors.ts";
import type { Logger } from "../../lifecycle/structured-log.ts";
import type { PageImage, PdfFile, RasterOptions } from "../pdf-pages.ts";

export interface OcrCallContext {
  /** Aborted when the runner stops the job: every wait must honour it. */
  readonly signal: AbortSignal;
  readonly log: Logger;
}

export interface LineCount {
  readonly totalLines: number;
  /** 0..1, as the counter judged it. */
  readonly confidence: number;
}

/** A retry of a page that came back short, with what the first read found. */
export interface Shortfall {
  readonly expected: number;
  readonly extracted: number;
}

/** Tokens one model was sent and wrote, as usageMetadata reported them. */
export interface ModelTokenUsage {
  readonly calls: number;
  readonly inputTokens: number;
  readonly outputTokens: number;
  readonly thinkingTokens: number;
}

export interface OcrProvider {
  readonly name: "gemini" | "offline";
  /** How index pages are rasterized for this engine. */
  readonly raster: Pick<RasterOptions, "upscale" | "format" | "embedded">;
  /** Counts the ledger lines of one index page. */
  countIndexLines(page: PageImage, pageCount: number, context: OcrCallContext): Promise<LineCount>;
  /** The page's lines, as the model wrote them (`Ligne N: …`), before any check. */
  extractIndexPage(page: PageImage, pageCount: number, context: OcrCallContext, shortfall?: Shortfall): Promise<string>;
  /** Applies the correction rules to a whole index document, keeping `--- Page N ---` / `Ligne N:`. */
  boostIndex(rawText: string, context: OcrCallContext): Promise<string>;
  /** Reads a whole acte. */
  extractActe(pdf: PdfFile, context: OcrCallContext): Promise<string>;
  /** Corrects an acte's text without inventing anything. */
  boostActe(rawText: string, context: OcrCallContext): Promise<string>;
  /** Tokens per model since the provider started (Gemini); the handler records each job's share. */
  tokenUsage?(): ReadonlyMap<string, ModelTokenUsage>;
  /** Frees what the provider holds (workers). */
  close(): Promise<void>;
}

/**
 * A reply that is not complete: cut (MAX_TOKENS), withheld (SAFETY,
 * RECITATION, a blocked prompt…) or empty. Never stored as if complete: the
 * index pipeline reads the page once more, then flags it in place; elsewhere
 * it is a failed attempt. `partialText` is what came back (maybe nothing).
 */
export class IncompleteReplyError extends RetryableJobError {
  constructor(
    message: string,
    readonly finishReason: string,
    readonly partialText: string,
  ) {
    super(message);
  }
}
