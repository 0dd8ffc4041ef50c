/**
 * Gemini as the OCR engine, through `@google/genai` (GEMINI_BASE_URL points
 * it at the local test server in tests). Index pages go inline as images to
 * the fast model (count, then extract); actes go through the File API
 * (upload, wait until ACTIVE, extract, delete — also on failure). Both
 * boosts use the stronger model. Prompts are the versioned files of
 * prompts/.
 */
import { GoogleGenAI, type GenerateContentConfig, type GenerateContentResponse } from "@google/genai";
import { estimateInputTokens } from "../../../supabase/functions/_shared/gemini-call.ts";
import type { GeminiRateBudget } from "../../../supabase/functions/_shared/gemini-rate-budget.ts";
import type { GeminiTokenCalibration } from "../../../supabase/functions/_shared/gemini-token-calibration.ts";
import { delayUnlessAborted } from "../../lifecycle/backoff.ts";
import { RetryableJobError } from "../../lifecycle/job-errors.ts";
import type { GeminiSettings } from "../ocr-config.ts";
import type { PageImage, PdfFile } from "../pdf-pages.ts";
import { renderPrompt, type PromptName } from "../prompts.ts";
import { callParameters } from "./gemini-call-parameters.ts";
import { FileGoneError, GeminiCalls, replyText, type ConfigurationFaultRecorder } from "./gemini-calls.ts";
import type { LineCount, ModelTokenUsage, OcrCallContext, OcrProvider, Shortfall } from "./ocr-provider.ts";

export interface GeminiProviderOptions {
  /** Scale after rendering. @default 1 (no upscale) */
  readonly upscale?: number;
  /** Records a configuration fault where dispatch and status read it. */
  readonly onConfigurationFault?: ConfigurationFaultRecorder;
  /** Media tokens as Google last counted them (Upstash). */
  readonly calibration?: GeminiTokenCalibration;
}

export interface GeminiModels {
  readonly fast: string;
  readonly boost: string;
}

export class GeminiOcrProvider implements OcrProvider {
  readonly name = "gemini" as const;
  readonly raster: { readonly upscale: number; readonly format: "jpeg"; readonly embedded: true };
  readonly calls: GeminiCalls;

  constructor(
    settings: GeminiSettings,
    readonly models: GeminiModels,
    budget: GeminiRateBudget,
    options: GeminiProviderOptions = {},
  ) {
    const ai = new GoogleGenAI({ apiKey: settings.apiKey, ...(settings.baseUrl === undefined ? {} : { httpOptions: { baseUrl: settings.baseUrl } }) });
    this.calls = new GeminiCalls(ai, budget, settings, options.onConfigurationFault);
    // No upscale by default: Gemini resizes every image to its media-resolution budget, so upscaling only costs CPU.
    // A page that is one embedded scan goes as it is (pdf-layout.ts): the fast page path.
    this.raster = { upscale: options.upscale ?? 1, format: "jpeg", embedded: true } as const;
    this.#settings = settings;
    this.#calibration = options.calibration;
  }

  readonly #settings: GeminiSettings;
  readonly #calibration: GeminiTokenCalibration | undefined;

  /** The input-token estimate of a call on `model` with `config`: Google's budgets per image/page, as last measured when known. */
  #estimate(model: string, config: GenerateContentConfig, prompt: { textChars: number; images?: readonly PageImage[]; pdfPages?: number }): number {
    const mediaResolution = config.mediaResolution === undefined ? undefined : String(config.mediaResolution);
    return estimateInputTokens({ ...prompt, model, mediaResolution, mediaTokens: this.#calibration?.mediaTokens(model, mediaResolution) ?? {} });
  }

  /** Records what Google counted per image / PDF page (promptTokensDetails), for the next estimates. */
  async #observe(model: string, config: GenerateContentConfig, kind: "image" | "pdfPage", items: number, response: GenerateContentResponse, context: OcrCallContext): Promise<void> {
    const mediaResolution = config.mediaResolution === undefined ? undefined : String(config.mediaResolution);
    await this.#calibration?.observe(model, mediaResolution, kind, items, response.usageMetadata?.promptTokensDetails).catch((error: unknown) => {
      context.log.warn("could not record the measured media tokens", { error: error instanceof Error ? error.message : String(error) });
    });
  }

  /**
   * Checks that Google serves both configured models to this key
   * (models.get, not metered by the generateContent quota): a retired model
   * (404), a refused key (400 API_KEY_INVALID) or billing off ends here as a
   * ConfigurationError, before any job is claimed.
   */
  async checkModels(context: OcrCallContext): Promise<void> {
    for (const model of [...new Set([this.models.fast, this.models.boost])]) {
      await this.calls.modelCall(`models.get ${model}`, () => this.calls.ai.models.get({ model }), context);
    }
    // The media tokens Google last counted, for the estimates (the documented budgets stand in until then).
    await this.#calibration?.load().catch((error: unknown) => context.log.warn("could not load the measured media tokens", { error: error instanceof Error ? error.message : String(error) }));
  }

  async countIndexLines(page: PageImage, pageCount: number, context: OcrCallContext): Promise<LineCount> {
    const prompt = renderPrompt("index-line-count", { page: page.pageNumber, pages: pageCount });
    const label = `line count of page ${page.pageNumber}`;
    const config = callParameters(this.models.fast, "line-count");
    const response = await this.calls.generate(
      label,
      { model: this.models.fast, contents: [{ role: "user", parts: [imagePart(page), { text: prompt }] }], config },
      this.#estimate(this.models.fast, config, { textChars: prompt.length, images: [page] }),
      context,
    );
    await this.#observe(this.models.fast, config, "image", 1, response, context);
    return parseLineCount(label, replyText(label, response));
  }

  async extractIndexPage(page: PageImage, pageCount: number, context: OcrCallContext, shortfall?: Shortfall): Promise<string> {
    const retry =
      shortfall === undefined
        ? ""
        : renderPrompt("index-extraction-retry", { extracted: shortfall.extracted, expected: shortfall.expected, missing: shortfall.expected - shortfall.extracted });
    const prompt = renderPrompt("index-extraction", { page: page.pageNumber, pages: pageCount, shortfall: retry });
    const label = `${shortfall === undefined ? "extraction" : "second extraction"} of page ${page.pageNumber}`;
    const config = callParameters(this.models.fast, "page-extraction");
    const response = await this.calls.generate(
      label,
      { model: this.models.fast, contents: [{ role: "user", parts: [imagePart(page), { text: prompt }] }], config },
      this.#estimate(this.models.fast, config, { textChars: prompt.length, images: [page] }),
      context,
    );
    await this.#observe(this.models.fast, config, "image", 1, response, context);
    return replyText(label, response);
  }

  boostIndex(rawText: string, context: OcrCallContext): Promise<string> {
    return this.#boost("index-boost", rawText, context);
  }

  async extractActe(pdf: PdfFile, context: OcrCallContext): Promise<string> {
    try {
      return await this.#extractActeOnce(pdf, context);
    } catch (error) {
      // A 403/404 on the file (expired, deleted between upload and use): one fresh upload, then the verdict stands.
      if (!(error instanceof FileGoneError)) throw error;
      context.log.warn("the uploaded PDF was no longer readable: uploading it again", { error: error.message });
      return await this.#extractActeOnce(pdf, context);
    }
  }

  async #extractActeOnce(pdf: PdfFile, context: OcrCallContext): Promise<string> {
    const ai = this.calls.ai;
    const uploaded = await this.calls.fileCall(
      "upload",
      () => ai.files.upload({ file: new Blob([Buffer.from(pdf.bytes)], { type: "application/pdf" }), config: { mimeType: "application/pdf", displayName: "acte.pdf" } }),
      context,
    );
    const name = uploaded.name;
    if (name === undefined) throw new RetryableJobError("Gemini upload answered without a file name");
    try {
      let file = uploaded;
      const deadline = Date.now() + this.#settings.fileActiveTimeoutMs;
      while (file.state !== "ACTIVE") {
        if (file.state === "FAILED") throw new RetryableJobError(`Gemini could not process the uploaded PDF (${file.error?.message ?? "state FAILED"})`);
        if (Date.now() > deadline) throw new RetryableJobError(`the uploaded PDF was still ${String(file.state)} after ${this.#settings.fileActiveTimeoutMs} ms`);
        await delayUnlessAborted(this.#settings.filePollMs, context.signal);
        file = await this.calls.fileCall("files.get", () => ai.files.get({ name }), context);
      }
      const prompt = renderPrompt("acte-extraction", { pages: pdf.pageCount });
      const uri = file.uri;
      if (uri === undefined) throw new RetryableJobError(`Gemini answered the uploaded file ${name} without a uri`);
      const config = callParameters(this.models.fast, "acte-extraction");
      const response = await this.calls.generate(
        "acte extraction",
        { model: this.models.fast, contents: [{ role: "user", parts: [{ fileData: { fileUri: uri, mimeType: "application/pdf" } }, { text: prompt }] }], config },
        this.#estimate(this.models.fast, config, { textChars: prompt.length, pdfPages: pdf.pageCount }),
        context,
      );
      await this.#observe(this.models.fast, config, "pdfPage", pdf.pageCount, response, context);
      return replyText("acte extraction", response);
    } finally {
      // Also after a failure or an abort: an uploaded deed must not linger at Google for 48 h.
      const cleanup = { ...context, signal: AbortSignal.timeout(30_000) };
      await this.calls.fileCall("files.delete", () => ai.files.delete({ name }), cleanup).catch((error: unknown) => {
        context.log.warn("could not delete the uploaded PDF (Gemini deletes it after 48 h)", { file: name, error: error instanceof Error ? error.message : String(error) });
      });
    }
  }

  boostActe(rawText: string, context: OcrCallContext): Promise<string> {
    return this.#boost("acte-boost", rawText, context);
  }

  tokenUsage(): ReadonlyMap<string, ModelTokenUsage> {
    return new Map(this.calls.usageByModel);
  }

  async close(): Promise<void> {}

  async #boost(promptName: "index-boost" | "acte-boost", rawText: string, context: OcrCallContext): Promise<string> {
    const prompt = renderPrompt(promptName, { text: rawText });
    const label = promptName === "index-boost" ? "index boost" : "acte boost";
    const config = callParameters(this.models.boost, "boost");
    const response = await this.calls.generate(
      label,
      { model: this.models.boost, contents: [{ role: "user", parts: [{ text: prompt }] }], config },
      this.#estimate(this.models.boost, config, { textChars: prompt.length }),
      context,
    );
    return replyText(label, response);
  }
}

function imagePart(page: PageImage) {
  return { inlineData: { mimeType: page.mimeType, data: Buffer.from(page.bytes).toString("base64") } };
}

/** `{"total_lines": N, "confidence": c}`; anything else is a failed call (one attempt), never a guess. */
export function parseLineCount(label: string, text: string): LineCount {
  const json = /\{[\s\S]*\}/.exec(text)?.[0];
  let value: unknown;
  try {
    value = json === undefined ? undefined : JSON.parse(json);
  } catch {
    value = undefined;
  }
  if (typeof value === "object" && value !== null && "total_lines" in value) {
    const total = Number(value.total_lines);
    const confidence = "confidence" in value ? Number(value.confidence) : Number.NaN;
    if (Number.isInteger(total) && total >= 0) return { totalLines: total, confidence: Number.isFinite(confidence) ? Math.min(1, Math.max(0, confidence)) : 0 };
  }
  throw new RetryableJobError(`Gemini ${label} did not answer {"total_lines", "confidence"} JSON: ${text.slice(0, 200)}`);
}

