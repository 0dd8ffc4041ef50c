/**
 * A local server speaking the Gemini REST protocol (v1beta), as far as the
 * OCR runners and the rate budget use it, so tests and benchmarks run the
 * production client (`@google/genai` with `httpOptions.baseUrl`) unchanged:
 *
 * - `POST /v1beta/models/{model}:generateContent` and `:countTokens`;
 * - the resumable File API upload: `POST /upload/v1beta/files` with
 *   `x-goog-upload-protocol: resumable` and `x-goog-upload-command: start`
 *   answers an `x-goog-upload-url`; POSTs there carry the bytes in chunks
 *   of 8 MiB (`@google/genai` 2.32 dist/node/index.mjs: MAX_CHUNK_SIZE =
 *   8 MiB, `x-goog-upload-command: upload` at each `x-goog-upload-offset`,
 *   `upload, finalize` on the last; it reads `x-goog-upload-status`
 *   "active" between chunks), then answers `{ file }` with
 *   `x-goog-upload-status: final`;
 * - `GET /v1beta/files/{id}` (state PROCESSING, then ACTIVE after
 *   `fileProcessingMs`, or FAILED with an `error` for a file the test says
 *   Google could not process: File.state FAILED in the Files API reference)
 *   and `DELETE /v1beta/files/{id}`.
 * - `GET /v1beta/models/{model}` (models.get): the model resource, or 404
 *   NOT_FOUND for a model the server does not serve (`models`), worded as
 *   Google words a retired model: "models/… is not found for API version
 *   v1beta, or is not supported for generateContent" (deprecations page:
 *   a shut-down model's "endpoint is no longer available"); generateContent
 *   answers the same.
 * - keys: a request without `x-goog-api-key` answers 403 PERMISSION_DENIED
 *   ("Method doesn't allow unregistered callers", Google's answer to a
 *   keyless call); a key outside `validApiKeys` answers 400 INVALID_ARGUMENT
 *   with ErrorInfo reason API_KEY_INVALID (Google's answer to a bad or
 *   expired key: public reports continuedev/continue#8516,
 *   google-gemini/gemini-cli#25198), never 401.
 * - a generateContent naming a file that is gone answers 403
 *   PERMISSION_DENIED "You do not have permission to access the File … or it
 *   may not exist" (issue 18, domain.md §3).
 *
 * Replies carry `usageMetadata` (prompt, candidates, total tokens; input
 * counted as Google documents it, images by 768 px tiles; a scripted
 * `thoughtsTokenCount` as Gemini 3 reports thinking, apart from
 * candidatesTokenCount: ai.google.dev/gemini-api/docs/thinking "thoughtsTokenCount"). Quotas are
 * per model like Google's (requests and input tokens per window, requests
 * per day), counted over a sliding window; exceeding one answers 429
 * RESOURCE_EXHAUSTED with `google.rpc.QuotaFailure` (metric, quota id, model)
 * and `google.rpc.RetryInfo.retryDelay` in the body, as Google does.
 * Every request is logged, with its arrival time and the answer's status.
 */
import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import {
  describeGenerate,
  ERROR_INFO,
  errorBody,
  estimateTextTokens,
  fileNameOfUri,
  formatDuration,
  headerOf,
  isRecord,
  parseJson,
  quotaErrorBody,
  readBody,
  referencedFiles,
  RETRY_INFO,
  sendJson,
  sleep,
  type GeminiGenerateRequest,
  type GeminiStoredFile,
} from "./gemini-test-protocol.ts";
import { geminiTestFiles } from "./gemini-test-files.ts";
import { quotaCounter, type GeminiModelQuota } from "./gemini-test-quotas.ts";

export type { GeminiModelQuota } from "./gemini-test-quotas.ts";

export { GEMINI_TEST_TOKENS_PER_IMAGE, estimateTextTokens, type GeminiGenerateRequest, type GeminiStoredFile } from "./gemini-test-protocol.ts";


/** A scripted answer: the model's text, or an HTTP error to answer instead. */
export type GeminiScriptedReply =
  | string
  | { readonly text: string; readonly candidatesTokenCount?: number; readonly finishReason?: string; readonly thoughtsTokenCount?: number }
  | {
      readonly error: {
        readonly code: number;
        readonly message?: string;
        readonly status?: string;
        readonly retryDelay?: string;
        /** An ErrorInfo detail with this reason (e.g. API_KEY_INVALID). */
        readonly reason?: string;
        /** No `details` at all, as Google often sends a 429 (the daily quota included). */
        readonly noDetails?: boolean;
      };
    };

export type GeminiResponder = (request: GeminiGenerateRequest) => GeminiScriptedReply | Promise<GeminiScriptedReply>;



export type GeminiRequestKind =
  | "generateContent"
  | "countTokens"
  | "upload.start"
  | "upload.chunk"
  | "upload.finalize"
  | "files.get"
  | "files.delete"
  | "models.get"
  | "unknown";

export interface GeminiLoggedRequest {
  readonly kind: GeminiRequestKind;
  readonly method: string;
  readonly path: string;
  readonly model: string | undefined;
  /** When the request arrived (ms since epoch). */
  readonly receivedAt: number;
  /** When the answer was sent (ms since epoch). */
  readonly answeredAt: number;
  readonly status: number;
  /** Input tokens counted (generateContent, countTokens). */
  readonly promptTokenCount: number;
  readonly candidatesTokenCount: number;
  /** The 429's retryDelay, when this request was refused by a quota. */
  readonly retryDelay: string | undefined;
  /** The file a files.* request named (`files/{id}`). */
  readonly fileName: string | undefined;
  /** The x-goog-api-key header was present. */
  readonly hadApiKey: boolean;
  /** generateContent: the request as the responder saw it. */
  readonly generate: GeminiGenerateRequest | undefined;
}


export interface GeminiTestServerOptions {
  /** @default a free port */
  readonly port?: number;
  /** Delay before each generateContent/countTokens answer, ms (a number, or per request). @default 0 */
  readonly latencyMs?: number | ((request: GeminiGenerateRequest | undefined, kind: GeminiRequestKind) => number);
  /** Quotas per model name; "*" applies to any model without its own entry. @default none */
  readonly quotas?: Readonly<Record<string, GeminiModelQuota>>;
  /** Length of the rpm/tpm window, ms. @default 60_000 */
  readonly windowMs?: number;
  /** Length of the rpd "day", ms. @default 86_400_000 */
  readonly dayMs?: number;
  /**
   * The retryDelay a quota 429 carries. @default the time until the sliding
   * window has room for the request again, in seconds with ms precision
   */
  readonly retryDelay?: string;
  /** The model's answers. @default echoes "OK" */
  readonly respond?: GeminiResponder;
  /** How long an uploaded file stays PROCESSING before it is ACTIVE, ms. @default 0 */
  readonly fileProcessingMs?: number;
  /** Answer 403 to requests without `x-goog-api-key`. @default true */
  readonly requireApiKey?: boolean;
  /** The keys Google accepts; any other answers 400 API_KEY_INVALID. @default any key */
  readonly validApiKeys?: readonly string[];
  /** Tokens per image / PDF page whatever the model, where Google counts otherwise than our estimate. @default the documented budgets */
  readonly mediaTokens?: { readonly image: number; readonly pdfPage: number };
  /** The models the server serves; any other answers 404 NOT_FOUND. @default every model */
  readonly models?: readonly string[];
}

export interface GeminiTestServer {
  /** Pass as `httpOptions.baseUrl` (GEMINI_BASE_URL). */
  readonly url: string;
  /** Every request received, in arrival order. */
  readonly requests: readonly GeminiLoggedRequest[];
  /** Uploaded files by name (`files/{id}`), deleted ones included (flagged). */
  readonly files: ReadonlyMap<string, GeminiStoredFile>;
  /** Replaces the scripted answers. */
  setResponder(respond: GeminiResponder): void;
  setLatency(latencyMs: NonNullable<GeminiTestServerOptions["latencyMs"]>): void;
  setQuota(model: string, quota: GeminiModelQuota | undefined): void;
  /** The next `count` uploaded files end FAILED instead of ACTIVE, as a PDF Google cannot process does. */
  failNextUploads(count: number): void;
  /** The next `count` uploaded files a generateContent names are treated as expired (deleted, 403), as a file past its 48 h is. */
  expireNextUsedFiles(count: number): void;
  /** Replaces the served models (undefined: every model). */
  setModels(models: readonly string[] | undefined): void;
  /** Requests answered 429 because of a quota or a scripted 429. */
  rateLimitedCount(): number;
  /** Forgets the request log (files and quota counters stay). */
  clearLog(): void;
  close(): Promise<void>;
}



export async function startGeminiTestServer(options: GeminiTestServerOptions = {}): Promise<GeminiTestServer> {
  const windowMs = options.windowMs ?? 60_000;
  const dayMs = options.dayMs ?? 86_400_000;
  const requireApiKey = options.requireApiKey ?? true;
  let servedModels = options.models === undefined ? undefined : new Set(options.models);
  const validKeys = options.validApiKeys === undefined ? undefined : new Set(options.validApiKeys);
  const fileProcessingMs = options.fileProcessingMs ?? 0;
  let respond: GeminiResponder = options.respond ?? (() => "OK");
  let latency = options.latencyMs ?? 0;
  const quotas = new Map<string, GeminiModelQuota>(Object.entries(options.quotas ?? {}));
  const requests: GeminiLoggedRequest[] = [];
  const fileApi = geminiTestFiles({ fileProcessingMs, baseUrl: () => url });
  const files = fileApi.files;
  let url = "";

  const admit = quotaCounter({ quotas, windowMs, dayMs });

  const server = createServer((req, res) => {
    void handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) sendJson(res, 500, errorBody(500, `test server bug: ${String(error)}`, "INTERNAL"));
      else res.destroy();
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const receivedAt = Date.now();
    const method = req.method ?? "GET";
    const parsedUrl = new URL(req.url ?? "/", "http://localhost");
    const path = parsedUrl.pathname;
    const body = await readBody(req);
    const hadApiKey = typeof req.headers["x-goog-api-key"] === "string" && req.headers["x-goog-api-key"] !== "";
    const log = (entry: Partial<GeminiLoggedRequest> & { kind: GeminiRequestKind; status: number }) => {
      requests.push({
        method,
        path,
        model: undefined,
        receivedAt,
        answeredAt: Date.now(),
        promptTokenCount: 0,
        candidatesTokenCount: 0,
        retryDelay: undefined,
        fileName: undefined,
        hadApiKey,
        generate: undefined,
        ...entry,
      });
    };

    if (requireApiKey && !hadApiKey) {
      sendJson(res, 403, errorBody(403, "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.", "PERMISSION_DENIED"));
      log({ kind: "unknown", status: 403 });
      return;
    }
    const apiKey = headerOf(req, "x-goog-api-key");
    if (validKeys !== undefined && hadApiKey && (apiKey === undefined || !validKeys.has(apiKey))) {
      sendJson(res, 400, {
        error: {
          code: 400,
          message: "API key not valid. Please pass a valid API key.",
          status: "INVALID_ARGUMENT",
          details: [
            { "@type": ERROR_INFO, reason: "API_KEY_INVALID", domain: "googleapis.com", metadata: { service: "generativelanguage.googleapis.com" } },
            { "@type": "type.googleapis.com/google.rpc.LocalizedMessage", locale: "en-US", message: "API key not valid. Please pass a valid API key." },
          ],
        },
      });
      log({ kind: "unknown", status: 400 });
      return;
    }
    const notServed = (model: string) => servedModels !== undefined && !servedModels.has(model);
    const modelNotFound = (model: string) =>
      errorBody(404, `models/${model} is not found for API version v1beta, or is not supported for generateContent. Call ListModels to see the list of available models and their supported methods.`, "NOT_FOUND");

    const modelGet = /^\/v1beta\/models\/([^/:]+)$/.exec(path);
    if (method === "GET" && modelGet) {
      const model = decodeURIComponent(modelGet[1] ?? "");
      if (notServed(model)) {
        sendJson(res, 404, modelNotFound(model));
        log({ kind: "models.get", model, status: 404 });
        return;
      }
      sendJson(res, 200, {
        name: `models/${model}`,
        version: "001",
        displayName: model,
        inputTokenLimit: 1_048_576,
        outputTokenLimit: 65_536,
        supportedGenerationMethods: ["generateContent", "countTokens"],
        thinking: true,
      });
      log({ kind: "models.get", model, status: 200 });
      return;
    }

    const modelCall = /^\/v1beta\/models\/([^/:]+):(generateContent|countTokens)$/.exec(path);
    if (method === "POST" && modelCall) {
      const model = decodeURIComponent(modelCall[1] ?? "");
      const kind = modelCall[2] === "generateContent" ? "generateContent" : "countTokens";
      if (notServed(model)) {
        sendJson(res, 404, modelNotFound(model));
        log({ kind, model, status: 404 });
        return;
      }
      const json = parseJson(body);
      if (json === undefined) {
        sendJson(res, 400, errorBody(400, "Invalid JSON payload received.", "INVALID_ARGUMENT"));
        log({ kind, model, status: 400 });
        return;
      }
      // countTokens wraps the request as { generateContentRequest } or sends { contents }.
      const inner = kind === "countTokens" && isRecord(json["generateContentRequest"]) ? json["generateContentRequest"] : json;
      for (const uri of referencedFiles(inner)) fileApi.useFile(fileNameOfUri(uri));
      const missingFile = referencedFiles(inner).find((uri) => {
        const file = files.get(fileNameOfUri(uri));
        return file === undefined || file.deleted;
      });
      if (missingFile !== undefined) {
        sendJson(res, 403, errorBody(403, `You do not have permission to access the File ${fileNameOfUri(missingFile).replace(/^files\//, "")} or it may not exist.`, "PERMISSION_DENIED"));
        log({ kind, model, status: 403 });
        return;
      }
      const generate = await describeGenerate(model, inner, files, options.mediaTokens);
      const wait = typeof latency === "function" ? latency(generate, kind) : latency;
      if (kind === "countTokens") {
        if (wait > 0) await sleep(wait);
        sendJson(res, 200, { totalTokens: generate.promptTokenCount });
        log({ kind, model, status: 200, promptTokenCount: generate.promptTokenCount });
        return;
      }
      const verdict = admit(model, generate.promptTokenCount, receivedAt);
      if (!verdict.ok) {
        const retryDelay = options.retryDelay ?? formatDuration(verdict.retryInMs);
        sendJson(res, 429, quotaErrorBody(model, verdict, retryDelay));
        log({ kind, model, status: 429, promptTokenCount: generate.promptTokenCount, retryDelay, generate });
        return;
      }
      if (wait > 0) await sleep(wait);
      const reply = await respond(generate);
      if (typeof reply === "object" && "error" in reply) {
        const { code, message = "scripted error", status = code === 429 ? "RESOURCE_EXHAUSTED" : code >= 500 ? "UNAVAILABLE" : "INVALID_ARGUMENT", retryDelay, reason, noDetails } = reply.error;
        const details = [
          ...(reason === undefined ? [] : [{ "@type": ERROR_INFO, reason, domain: "googleapis.com", metadata: { service: "generativelanguage.googleapis.com" } }]),
          ...(retryDelay === undefined ? [] : [{ "@type": RETRY_INFO, retryDelay }]),
        ];
        sendJson(res, code, { error: { code, message, status, ...(noDetails === true ? {} : { details }) } });
        log({ kind, model, status: code, promptTokenCount: generate.promptTokenCount, retryDelay, generate });
        return;
      }
      const text = typeof reply === "string" ? reply : reply.text;
      const candidatesTokenCount = typeof reply === "string" || reply.candidatesTokenCount === undefined ? estimateTextTokens(text) : reply.candidatesTokenCount;
      const finishReason = typeof reply === "string" ? "STOP" : (reply.finishReason ?? "STOP");
      const thoughtsTokenCount = typeof reply === "string" ? 0 : (reply.thoughtsTokenCount ?? 0);
      sendJson(res, 200, {
        // A SAFETY/RECITATION stop may carry no content at all (the candidate is withheld).
        candidates: [{ ...(text === "" ? {} : { content: { parts: [{ text }], role: "model" } }), finishReason, index: 0 }],
        usageMetadata: {
          promptTokenCount: generate.promptTokenCount,
          candidatesTokenCount,
          ...(thoughtsTokenCount > 0 ? { thoughtsTokenCount } : {}),
          promptTokensDetails: generate.promptTokensDetails,
          totalTokenCount: generate.promptTokenCount + candidatesTokenCount + thoughtsTokenCount,
        },
        modelVersion: model,
        responseId: randomBytes(8).toString("hex"),
      });
      log({ kind, model, status: 200, promptTokenCount: generate.promptTokenCount, candidatesTokenCount, generate });
      return;
    }

    if (fileApi.handle(req, res, method, path, parsedUrl, body, log)) return;

    sendJson(res, 404, errorBody(404, `no route ${method} ${path} on the Gemini test server`, "NOT_FOUND"));
    log({ kind: "unknown", status: 404 });
  }

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  url = `http://127.0.0.1:${port}`;

  return {
    url,
    requests,
    files,
    setResponder(next) {
      respond = next;
    },
    setLatency(next) {
      latency = next;
    },
    failNextUploads: (count) => fileApi.failNextUploads(count),
    expireNextUsedFiles: (count) => fileApi.expireNextUsedFiles(count),
    setModels(models) {
      servedModels = models === undefined ? undefined : new Set(models);
    },
    setQuota(model, quota) {
      if (quota === undefined) quotas.delete(model);
      else quotas.set(model, quota);
    },
    rateLimitedCount: () => requests.filter((request) => request.status === 429).length,
    clearLog() {
      requests.length = 0;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

