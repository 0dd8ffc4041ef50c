/**
 * Acte documents (notarial deeds, typed or handwritten): the engine reads
 * the whole PDF (Gemini: File API upload, wait until ACTIVE, one extraction
 * call, delete), then one boost call corrects it without inventing anything.
 */
import { RetryableJobError } from "../lifecycle/job-errors.ts";
import type { PdfFile } from "./pdf-pages.ts";
import type { OcrCallContext, OcrProvider } from "./providers/ocr-provider.ts";

export interface ActePipelineResult {
  readonly fileContent: string;
  readonly boostedFileContent: string;
}

export async function runActePipeline(pdf: PdfFile, provider: OcrProvider, context: OcrCallContext): Promise<ActePipelineResult> {
  const fileContent = (await provider.extractActe(pdf, context)).trim();
  context.log.info("acte read", { pages: pdf.pageCount, characters: fileContent.length });
  const boostedFileContent = (await provider.boostActe(fileContent, context)).trim();
  if (boostedFileContent === "") throw new RetryableJobError("the acte boost returned no text");
  return { fileContent, boostedFileContent };
}
