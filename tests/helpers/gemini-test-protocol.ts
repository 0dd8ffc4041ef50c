/**
 * The Gemini REST protocol's pieces the test server (gemini-test-server.ts)
 * answers with: input tokens counted as Google counts them, error bodies,
 * and the small readers and writers of the HTTP exchange. Sources are cited
 * where each behaviour is.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import sharp from "sharp";

/** What a scripted answer sees of one generateContent call. */
export interface GeminiGenerateRequest {
  readonly model: string;
  /** Every text part of every content, in order, joined by newlines (the prompt). */
  readonly text: string;
  /** Inline images and documents (`inlineData`), by MIME type. */
  readonly inlineData: ReadonlyArray<{ readonly mimeType: string; readonly bytes: number }>;
  /** `fileData.fileUri`s the request refers to. */
  readonly fileUris: readonly string[];
  readonly generationConfig: Record<string, unknown>;
  readonly systemInstruction: string;
  /** Input tokens per modality, as `usageMetadata.promptTokensDetails` reports them. */
  readonly promptTokensDetails: ReadonlyArray<{ readonly modality: "TEXT" | "IMAGE" | "DOCUMENT"; readonly tokenCount: number }>;
  /** Input tokens the server counted for the request (what TPM quotas count). */
  readonly promptTokenCount: number;
  /** The raw JSON body. */
  readonly body: Record<string, unknown>;
}

export interface GeminiStoredFile {
  readonly name: string;
  readonly displayName: string | undefined;
  readonly mimeType: string;
  readonly bytes: Uint8Array;
  readonly createdAt: number;
  deleted: boolean;
  /** Chunks the upload came in (the SDK sends 8 MiB per chunk). */
  readonly chunks: number;
  /** Processing ends FAILED. */
  readonly fails: boolean;
}

export const RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo";
export const ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo";
export const QUOTA_FAILURE = "type.googleapis.com/google.rpc.QuotaFailure";
/** Tokens one image or one PDF page costs as input, as Gemini counts them at default resolution. */
export const GEMINI_TEST_TOKENS_PER_IMAGE = 258;

/**
 * Input tokens as Google counts them, per model generation:
 * - text: a token per 4 characters (ai.google.dev/gemini-api/docs/tokens:
 *   "a token is equivalent to about 4 characters");
 * - Gemini 3 (media-resolution docs, "Token counts"): a fixed budget per
 *   image or PDF page by `generationConfig.mediaResolution`, whatever its
 *   pixels: LOW 280, MEDIUM 560, HIGH 1,120, ULTRA_HIGH 2,240; unset, an
 *   image costs 1,120 and a PDF page 560 (the PDF default). Not the 258-per-
 *   768-px-tile formula our budget once estimated with: an upscaled ledger
 *   page is 1,120 here where that formula said ≈16K;
 * - older models: 258 per PDF page, 258 per image up to 384 px on both
 *   sides, else 258 per 768 × 768 tile (tokens docs, Gemini 2.x).
 * `promptTokensDetails` reports the count per modality (TEXT, IMAGE,
 * DOCUMENT), as `usageMetadata` does.
 */
export async function describeGenerate(
  model: string,
  body: Record<string, unknown>,
  files: ReadonlyMap<string, GeminiStoredFile>,
  override?: { readonly image: number; readonly pdfPage: number },
): Promise<GeminiGenerateRequest> {
  const texts: string[] = [];
  const inlineData: Array<{ mimeType: string; bytes: number }> = [];
  const fileUris: string[] = [];
  let imageTokensTotal = 0;
  let documentTokens = 0;
  const generationConfig = isRecord(body["generationConfig"]) ? body["generationConfig"] : {};
  const budget = override ?? mediaBudget(model, generationConfig["mediaResolution"]);
  const countImage = async (bytes: Uint8Array) => (budget === undefined ? await tiledImageTokens(bytes) : budget.image);
  const countPdf = (bytes: Uint8Array) => pdfPageCount(bytes) * (budget === undefined ? GEMINI_TEST_TOKENS_PER_IMAGE : budget.pdfPage);
  const contents = Array.isArray(body["contents"]) ? body["contents"] : [];
  for (const content of contents) {
    const parts = isRecord(content) && Array.isArray(content["parts"]) ? content["parts"] : [];
    for (const part of parts) {
      if (!isRecord(part)) continue;
      if (typeof part["text"] === "string") texts.push(part["text"]);
      const inline = part["inlineData"];
      if (isRecord(inline) && typeof inline["data"] === "string") {
        const mimeType = typeof inline["mimeType"] === "string" ? inline["mimeType"] : "application/octet-stream";
        const bytes = Buffer.from(inline["data"], "base64");
        inlineData.push({ mimeType, bytes: bytes.byteLength });
        if (mimeType === "application/pdf") documentTokens += countPdf(bytes);
        else imageTokensTotal += await countImage(bytes);
      }
      const fileData = part["fileData"];
      if (isRecord(fileData) && typeof fileData["fileUri"] === "string") {
        fileUris.push(fileData["fileUri"]);
        const file = files.get(fileNameOfUri(fileData["fileUri"]));
        if (file !== undefined) {
          if (file.mimeType === "application/pdf") documentTokens += countPdf(file.bytes);
          else imageTokensTotal += await countImage(file.bytes);
        }
      }
    }
  }
  const system = body["systemInstruction"];
  const systemParts = isRecord(system) && Array.isArray(system["parts"]) ? system["parts"] : [];
  const systemInstruction = systemParts.map((part) => (isRecord(part) && typeof part["text"] === "string" ? part["text"] : "")).join("\n");
  const text = texts.join("\n");
  const textTokens = estimateTextTokens(text) + estimateTextTokens(systemInstruction);
  const promptTokensDetails = [
    { modality: "TEXT" as const, tokenCount: textTokens },
    ...(imageTokensTotal > 0 ? [{ modality: "IMAGE" as const, tokenCount: imageTokensTotal }] : []),
    ...(documentTokens > 0 ? [{ modality: "DOCUMENT" as const, tokenCount: documentTokens }] : []),
  ];
  return {
    model,
    text,
    inlineData,
    fileUris,
    generationConfig,
    systemInstruction,
    promptTokensDetails,
    promptTokenCount: textTokens + imageTokensTotal + documentTokens,
    body,
  };
}

/** Gemini 3's fixed budgets per image and per PDF page at the request's media resolution; undefined for older models. */
export function mediaBudget(model: string, mediaResolution: unknown): { readonly image: number; readonly pdfPage: number } | undefined {
  if (!/^gemini-(3|[4-9])([.-]|$)/.test(model)) return undefined;
  switch (mediaResolution) {
    case "MEDIA_RESOLUTION_LOW":
      return { image: 280, pdfPage: 280 };
    case "MEDIA_RESOLUTION_MEDIUM":
      return { image: 560, pdfPage: 560 };
    case "MEDIA_RESOLUTION_HIGH":
      return { image: 1_120, pdfPage: 1_120 };
    case "MEDIA_RESOLUTION_ULTRA_HIGH":
      return { image: 2_240, pdfPage: 2_240 };
    default:
      return { image: 1_120, pdfPage: 560 };
  }
}

async function tiledImageTokens(bytes: Uint8Array): Promise<number> {
  try {
    const { width, height } = await sharp(bytes).metadata();
    if (width <= 384 && height <= 384) return GEMINI_TEST_TOKENS_PER_IMAGE;
    return Math.ceil(width / 768) * Math.ceil(height / 768) * GEMINI_TEST_TOKENS_PER_IMAGE;
  } catch {
    return GEMINI_TEST_TOKENS_PER_IMAGE; // Not an image sharp can read: counted as a small one.
  }
}

export function referencedFiles(body: Record<string, unknown>): string[] {
  const contents = Array.isArray(body["contents"]) ? body["contents"] : [];
  return contents.flatMap((content) =>
    (isRecord(content) && Array.isArray(content["parts"]) ? content["parts"] : []).flatMap((part) =>
      isRecord(part) && isRecord(part["fileData"]) && typeof part["fileData"]["fileUri"] === "string" ? [part["fileData"]["fileUri"]] : [],
    ),
  );
}

/** `files/{id}` from `…/v1beta/files/{id}` or `files/{id}`. */
export function fileNameOfUri(uri: string): string {
  const match = /(files\/[^/?#]+)$/.exec(uri);
  return match?.[1] ?? uri;
}

/** Pages of a PDF by its page objects; 1 when none is found (a bad file still costs a page). */
export function pdfPageCount(bytes: Uint8Array): number {
  const text = Buffer.from(bytes).toString("latin1");
  return Math.max(1, (text.match(/\/Type\s*\/Page(?![s\w])/g) ?? []).length);
}

export function estimateTextTokens(text: string): number {
  return Math.ceil(text.length / 4);
}

/** A protobuf Duration in JSON: seconds with up to ms precision ("1.234s"), never below 1 ms. */
export function formatDuration(ms: number): string {
  const seconds = Math.max(1, Math.ceil(ms)) / 1000;
  return `${Number(seconds.toFixed(3))}s`;
}

export function quotaErrorBody(model: string, verdict: { metric: string; quotaId: string; value: number }, retryDelay: string) {
  return {
    error: {
      code: 429,
      message: `You exceeded your current quota, please check your plan and billing details. Quota exceeded for metric: generativelanguage.googleapis.com/${verdict.metric}, limit: ${verdict.value}, model: ${model}. Please retry in ${retryDelay}.`,
      status: "RESOURCE_EXHAUSTED",
      details: [
        {
          "@type": QUOTA_FAILURE,
          violations: [
            {
              quotaMetric: `generativelanguage.googleapis.com/${verdict.metric}`,
              quotaId: verdict.quotaId,
              quotaDimensions: { location: "global", model },
              quotaValue: String(verdict.value),
            },
          ],
        },
        { "@type": "type.googleapis.com/google.rpc.Help", links: [{ description: "Learn more about Gemini API quotas", url: "https://ai.google.dev/gemini-api/docs/rate-limits" }] },
        { "@type": RETRY_INFO, retryDelay },
      ],
    },
  };
}

export function errorBody(code: number, message: string, status: string) {
  return { error: { code, message, status } };
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json; charset=UTF-8", "content-length": Buffer.byteLength(text) }).end(text);
}

export function headerOf(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

export async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(typeof chunk === "string" ? Buffer.from(chunk) : (chunk as Buffer));
  return Buffer.concat(chunks);
}

export function parseJson(body: Buffer): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(body.toString("utf8") || "{}");
    return isRecord(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
