/**
 * The OCR job: the stored PDF from Storage, read by the configured engine
 * through the index or acte pipeline (by the job's kind), both texts
 * returned for the lifecycle to record (`file_content`,
 * `boosted_file_content`, status 5). A file that is not a readable PDF, or
 * a row pointing at nothing, fails for good after one attempt with a message
 * saying what to do; everything else is classified where it happens.
 */
import { setMaxListeners } from "node:events";
import { FinalJobError } from "../lifecycle/job-errors.ts";
import type { ClaimedJob } from "../lifecycle/job-queue.ts";
import type { JobContext, JobHandler, JobOutcome } from "../lifecycle/run-runner.ts";
import { StorageObjectNotFoundError, type DocumentStorage } from "../storage/document-storage.ts";
import { runActePipeline } from "./acte-pipeline.ts";
import { runIndexPipeline } from "./index-pipeline.ts";
import type { IndexPageStore } from "./index-page-store.ts";
import type { PdfLimits } from "./pdf-layout.ts";
import { openPdf } from "./pdf-pages.ts";
import { tokensSpent, type TokenRecorder } from "./ocr-token-record.ts";
import type { OcrProvider } from "./providers/ocr-provider.ts";

export interface OcrJobHandlerOptions {
  readonly storage: DocumentStorage;
  readonly provider: OcrProvider;
  readonly dpi: number;
  readonly pageConcurrency: number;
  /** Caps on pages and pixels, checked when the PDF is opened, before any OCR call. */
  readonly limits: PdfLimits;
  /** Records the Gemini tokens each job attempt spent, per model (ocr_token_usage). */
  readonly recordTokens?: TokenRecorder;
  /** Where an index job's completely read pages wait for its next attempt. */
  readonly pageStore?: (job: ClaimedJob) => IndexPageStore;
}

export function ocrJobHandler(options: OcrJobHandlerOptions): JobHandler {
  const { storage, provider } = options;
  return async (job: ClaimedJob, context: JobContext): Promise<JobOutcome> => {
    if (job.kind === "registre") throw new Error("the OCR handler was given a registre job: JOB_KIND must be index-ocr or acte-ocr");
    const path = job.supabasePath;
    if (path === null) throw new FinalJobError("the OCR job has no supabase_path: the registre stage stored no PDF for it");
    // Each Gemini call in flight listens on the job's signal; an index runs a dozen at once.
    setMaxListeners(0, context.signal);
    const startedAt = Date.now();
    const tokensBefore = provider.tokenUsage?.();
    try {
      return await readJob(job, path, context, startedAt);
    } finally {
      // Also after a failure: the tokens were spent all the same. Bookkeeping never fails the job.
      if (options.recordTokens !== undefined && tokensBefore !== undefined && provider.tokenUsage !== undefined) {
        const spent = tokensSpent(tokensBefore, provider.tokenUsage());
        await options.recordTokens(job, spent).catch((error: unknown) => context.log.warn("could not record the job's Gemini tokens", { error }));
      }
    }
  };

  async function readJob(job: ClaimedJob, path: string, context: JobContext, startedAt: number): Promise<JobOutcome> {
    let bytes: Uint8Array;
    try {
      bytes = await storage.download(path);
    } catch (error) {
      if (error instanceof StorageObjectNotFoundError) {
        throw new FinalJobError(`the PDF ${path} is not in Storage (deleted, or never stored): fetch the document again`, { cause: error });
      }
      throw error;
    }
    const pdf = await openPdf(bytes, context.signal, { limits: options.limits, dpi: options.dpi });
    try {
      context.log.info("ocr started", { engine: provider.name, pages: pdf.pageCount, bytes: bytes.byteLength });
      let result: { fileContent: string; boostedFileContent: string };
      let incomplete: number[] = [];
      if (job.kind === "index-ocr") {
        const pageStore = options.pageStore?.(job);
        const index = await runIndexPipeline(pdf, provider, { dpi: options.dpi, pageConcurrency: options.pageConcurrency, limits: options.limits, ...(pageStore === undefined ? {} : { pageStore }) }, context);
        incomplete = index.pages.filter((page) => page.incomplete).map((page) => page.pageNumber);
        result = index;
      } else {
        result = await runActePipeline(pdf, provider, context);
      }
      context.log.info("ocr finished", {
        engine: provider.name,
        pages: pdf.pageCount,
        duration_ms: Date.now() - startedAt,
        characters: result.fileContent.length,
        ...(incomplete.length > 0 ? { incomplete_pages: incomplete } : {}),
      });
      return { kind: "ocr", fileContent: result.fileContent, boostedFileContent: result.boostedFileContent };
    } finally {
      await pdf.dispose();
    }
  }
}
