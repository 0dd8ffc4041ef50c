/**
 * A local server speaking the Gemini REST protocol (v1beta), as far as the
 * OCR runners and the rate budget use it, so tests and benchmarks run the
 * production client (`@google/genai` with `httpOptions.baseUrl`) unchanged:
 *
 * - `POST /v1beta/models/{model}:generateContent` and `:countTokens`;
 * - the resumable File API upload: `POST /upload/v1beta/files` with
 *   `x-goog-upload-protocol: resumable` and `x-goog-upload-command: start`
 *   answers an `x-goog-upload-url`; a POST there with
 *   `x-goog-upload-command: upload, finalize` stores the bytes and answers
 *   `{ file }` with `x-goog-upload-status: final`;
 * - `GET /v1beta/files/{id}` (state PROCESSING, then ACTIVE after
 *   `fileProcessingMs`) and `DELETE /v1beta/files/{id}`.
 *
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
  /** Input tokens the server counted for the request (what TPM quotas count). */
  readonly promptTokenCount: number;
  /** The raw JSON body. */
  readonly body: Record<string, unknown>;
}

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

export interface GeminiModelQuota {
  /** Requests per window. */
  readonly rpm?: number;
  /** Input (prompt) tokens per window, as Google counts TPM. */
  readonly tpm?: number;
  /** Requests per day (per server lifetime here; "day" is `dayMs`). */
  readonly rpd?: number;
}

export type GeminiRequestKind =
  | "generateContent"
  | "countTokens"
  | "upload.start"
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

export interface GeminiStoredFile {
  readonly name: string;
  readonly displayName: string | undefined;
  readonly mimeType: string;
  readonly bytes: Uint8Array;
  readonly createdAt: number;
  deleted: boolean;
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

const RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo";
const ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo";
const QUOTA_FAILURE = "type.googleapis.com/google.rpc.QuotaFailure";
/** Tokens one image or one PDF page costs as input, as Gemini counts them at default resolution. */
export const GEMINI_TEST_TOKENS_PER_IMAGE = 258;

interface Admitted {
  readonly at: number;
  readonly tokens: number;
}

export async function startGeminiTestServer(options: GeminiTestServerOptions = {}): Promise<GeminiTestServer> {
  const windowMs = options.windowMs ?? 60_000;
  const dayMs = options.dayMs ?? 86_400_000;
  const requireApiKey = options.requireApiKey ?? true;
  let filesToExpire = 0;
  let servedModels = options.models === undefined ? undefined : new Set(options.models);
  const validKeys = options.validApiKeys === undefined ? undefined : new Set(options.validApiKeys);
  const fileProcessingMs = options.fileProcessingMs ?? 0;
  let respond: GeminiResponder = options.respond ?? (() => "OK");
  let latency = options.latencyMs ?? 0;
  const quotas = new Map<string, GeminiModelQuota>(Object.entries(options.quotas ?? {}));
  const admittedByModel = new Map<string, Admitted[]>();
  const dailyByModel = new Map<string, number[]>();
  const requests: GeminiLoggedRequest[] = [];
  const files = new Map<string, GeminiStoredFile>();
  const uploads = new Map<string, { displayName: string | undefined; mimeType: string; size: number }>();
  let url = "";

  const quotaOf = (model: string) => quotas.get(model) ?? quotas.get("*");

  /** Checks the model's quotas for one request of `tokens` input tokens; counts it when admitted. */
  const admit = (model: string, tokens: number, now: number): { ok: true } | { ok: false; metric: string; quotaId: string; value: number; retryInMs: number } => {
    const quota = quotaOf(model);
    const window = (admittedByModel.get(model) ?? []).filter((entry) => entry.at > now - windowMs);
    admittedByModel.set(model, window);
    const day = (dailyByModel.get(model) ?? []).filter((at) => at > now - dayMs);
    dailyByModel.set(model, day);
    if (quota?.rpd !== undefined && day.length + 1 > quota.rpd) {
      const oldest = day[0] ?? now;
      return { ok: false, metric: "generate_content_paid_tier_requests_per_day", quotaId: "GenerateRequestsPerDayPerProjectPerModel", value: quota.rpd, retryInMs: oldest + dayMs - now };
    }
    if (quota?.rpm !== undefined && window.length + 1 > quota.rpm) {
      // Room again when the oldest request that keeps the window full leaves it.
      const blocking = window[window.length - quota.rpm];
      return { ok: false, metric: "generate_content_paid_tier_requests", quotaId: "GenerateRequestsPerMinutePerProjectPerModel", value: quota.rpm, retryInMs: (blocking?.at ?? now) + windowMs - now };
    }
    if (quota?.tpm !== undefined) {
      const used = window.reduce((sum, entry) => sum + entry.tokens, 0);
      if (used + tokens > quota.tpm) {
        let freed = 0;
        let until = now;
        for (const entry of window) {
          freed += entry.tokens;
          until = entry.at + windowMs;
          if (used - freed + tokens <= quota.tpm) break;
        }
        return { ok: false, metric: "generate_content_paid_tier_input_token_count", quotaId: "GenerateContentPaidTierInputTokensPerModelPerMinute", value: quota.tpm, retryInMs: until - now };
      }
    }
    window.push({ at: now, tokens });
    day.push(now);
    return { ok: true };
  };

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
      for (const uri of referencedFiles(inner)) {
        const file = files.get(fileNameOfUri(uri));
        if (filesToExpire > 0 && file !== undefined && !file.deleted) {
          filesToExpire -= 1;
          file.deleted = true;
        }
      }
      const missingFile = referencedFiles(inner).find((uri) => {
        const file = files.get(fileNameOfUri(uri));
        return file === undefined || file.deleted;
      });
      if (missingFile !== undefined) {
        sendJson(res, 403, errorBody(403, `You do not have permission to access the File ${fileNameOfUri(missingFile).replace(/^files\//, "")} or it may not exist.`, "PERMISSION_DENIED"));
        log({ kind, model, status: 403 });
        return;
      }
      const generate = await describeGenerate(model, inner, files);
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
          totalTokenCount: generate.promptTokenCount + candidatesTokenCount + thoughtsTokenCount,
        },
        modelVersion: model,
        responseId: randomBytes(8).toString("hex"),
      });
      log({ kind, model, status: 200, promptTokenCount: generate.promptTokenCount, candidatesTokenCount, generate });
      return;
    }

    if (method === "POST" && path === "/upload/v1beta/files") {
      const command = headerOf(req, "x-goog-upload-command");
      const uploadId = parsedUrl.searchParams.get("upload_id");
      if (uploadId === null) {
        if (headerOf(req, "x-goog-upload-protocol") !== "resumable" || command !== "start") {
          sendJson(res, 400, errorBody(400, "expected x-goog-upload-protocol: resumable and x-goog-upload-command: start", "INVALID_ARGUMENT"));
          log({ kind: "upload.start", status: 400 });
          return;
        }
        const meta = parseJson(body);
        const file = isRecord(meta?.["file"]) ? meta["file"] : {};
        const id = randomBytes(6).toString("hex");
        uploads.set(id, {
          displayName: typeof file["displayName"] === "string" ? file["displayName"] : undefined,
          mimeType: headerOf(req, "x-goog-upload-header-content-type") ?? "application/octet-stream",
          size: Number(headerOf(req, "x-goog-upload-header-content-length") ?? "0"),
        });
        res.setHeader("x-goog-upload-url", `${url}/upload/v1beta/files?upload_id=${id}&upload_protocol=resumable`);
        res.setHeader("x-goog-upload-status", "active");
        res.setHeader("x-goog-upload-chunk-granularity", "8388608");
        res.writeHead(200, { "content-type": "text/plain" }).end();
        log({ kind: "upload.start", status: 200 });
        return;
      }
      const pending = uploads.get(uploadId);
      if (pending === undefined || command !== "upload, finalize" || Number(headerOf(req, "x-goog-upload-offset") ?? "-1") !== 0) {
        // One chunk is all the runners send (documents are far below the SDK's 8 MiB chunk).
        sendJson(res, 400, errorBody(400, `unknown upload ${uploadId} or not a single 'upload, finalize' chunk at offset 0`, "INVALID_ARGUMENT"));
        log({ kind: "upload.finalize", status: 400 });
        return;
      }
      uploads.delete(uploadId);
      const name = `files/${randomBytes(6).toString("hex")}`;
      const stored: GeminiStoredFile = { name, displayName: pending.displayName, mimeType: pending.mimeType, bytes: new Uint8Array(body), createdAt: Date.now(), deleted: false };
      files.set(name, stored);
      res.setHeader("x-goog-upload-status", "final");
      sendJson(res, 200, { file: fileResource(stored) });
      log({ kind: "upload.finalize", status: 200, fileName: name });
      return;
    }

    const fileCall = /^\/v1beta\/(files\/[^/:]+)$/.exec(path);
    if (fileCall && (method === "GET" || method === "DELETE")) {
      const name = fileCall[1] ?? "";
      const kind = method === "GET" ? "files.get" : "files.delete";
      const file = files.get(name);
      if (file === undefined || file.deleted) {
        sendJson(res, 404, errorBody(404, `File ${name} not found.`, "NOT_FOUND"));
        log({ kind, status: 404, fileName: name });
        return;
      }
      if (method === "DELETE") file.deleted = true;
      sendJson(res, 200, method === "GET" ? fileResource(file) : {});
      log({ kind, status: 200, fileName: name });
      return;
    }

    sendJson(res, 404, errorBody(404, `no route ${method} ${path} on the Gemini test server`, "NOT_FOUND"));
    log({ kind: "unknown", status: 404 });
  }

  function fileResource(file: GeminiStoredFile): Record<string, unknown> {
    const active = Date.now() - file.createdAt >= fileProcessingMs;
    const created = new Date(file.createdAt).toISOString();
    return {
      name: file.name,
      ...(file.displayName === undefined ? {} : { displayName: file.displayName }),
      mimeType: file.mimeType,
      sizeBytes: String(file.bytes.byteLength),
      createTime: created,
      updateTime: created,
      expirationTime: new Date(file.createdAt + 48 * 3_600_000).toISOString(),
      sha256Hash: "",
      uri: `${url}/v1beta/${file.name}`,
      state: active ? "ACTIVE" : "PROCESSING",
      source: "UPLOADED",
    };
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
    expireNextUsedFiles(count) {
      filesToExpire = count;
    },
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

/**
 * Input tokens as Google documents them: a token per 4 characters of text,
 * 258 per PDF page, 258 per image up to 384 px on both sides and 258 per
 * 768 × 768 tile of a larger one.
 */
async function describeGenerate(model: string, body: Record<string, unknown>, files: ReadonlyMap<string, GeminiStoredFile>): Promise<GeminiGenerateRequest> {
  const texts: string[] = [];
  const inlineData: Array<{ mimeType: string; bytes: number }> = [];
  const fileUris: string[] = [];
  let mediaTokens = 0;
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
        mediaTokens += mimeType === "application/pdf" ? pdfPageCount(bytes) * GEMINI_TEST_TOKENS_PER_IMAGE : await imageTokens(bytes);
      }
      const fileData = part["fileData"];
      if (isRecord(fileData) && typeof fileData["fileUri"] === "string") {
        fileUris.push(fileData["fileUri"]);
        const file = files.get(fileNameOfUri(fileData["fileUri"]));
        if (file !== undefined) mediaTokens += file.mimeType === "application/pdf" ? pdfPageCount(file.bytes) * GEMINI_TEST_TOKENS_PER_IMAGE : GEMINI_TEST_TOKENS_PER_IMAGE;
      }
    }
  }
  const system = body["systemInstruction"];
  const systemParts = isRecord(system) && Array.isArray(system["parts"]) ? system["parts"] : [];
  const systemInstruction = systemParts.map((part) => (isRecord(part) && typeof part["text"] === "string" ? part["text"] : "")).join("\n");
  const text = texts.join("\n");
  return {
    model,
    text,
    inlineData,
    fileUris,
    generationConfig: isRecord(body["generationConfig"]) ? body["generationConfig"] : {},
    systemInstruction,
    promptTokenCount: estimateTextTokens(text) + estimateTextTokens(systemInstruction) + mediaTokens,
    body,
  };
}

async function imageTokens(bytes: Buffer): Promise<number> {
  try {
    const { width, height } = await sharp(bytes).metadata();
    if (width <= 384 && height <= 384) return GEMINI_TEST_TOKENS_PER_IMAGE;
    return Math.ceil(width / 768) * Math.ceil(height / 768) * GEMINI_TEST_TOKENS_PER_IMAGE;
  } catch {
    return GEMINI_TEST_TOKENS_PER_IMAGE; // Not an image sharp can read: counted as a small one.
  }
}

function referencedFiles(body: Record<string, unknown>): string[] {
  const contents = Array.isArray(body["contents"]) ? body["contents"] : [];
  return contents.flatMap((content) =>
    (isRecord(content) && Array.isArray(content["parts"]) ? content["parts"] : []).flatMap((part) =>
      isRecord(part) && isRecord(part["fileData"]) && typeof part["fileData"]["fileUri"] === "string" ? [part["fileData"]["fileUri"]] : [],
    ),
  );
}

/** `files/{id}` from `…/v1beta/files/{id}` or `files/{id}`. */
function fileNameOfUri(uri: string): string {
  const match = /(files\/[^/?#]+)$/.exec(uri);
  return match?.[1] ?? uri;
}

/** Pages of a PDF by its page objects; 1 when none is found (a bad file still costs a page). */
function pdfPageCount(bytes: Uint8Array): number {
  const text = Buffer.from(bytes).toString("latin1");
  return Math.max(1, (text.match(/\/Type\s*\/Page(?![s\w])/g) ?? []).length);
}

export function estimateTextTokens(text: string): number {
  return Math.ceil(text.length / 4);
}

/** A protobuf Duration in JSON: seconds with up to ms precision ("1.234s"), never below 1 ms. */
function formatDuration(ms: number): string {
  const seconds = Math.max(1, Math.ceil(ms)) / 1000;
  return `${Number(seconds.toFixed(3))}s`;
}

function quotaErrorBody(model: string, verdict: { metric: string; quotaId: string; value: number }, retryDelay: string) {
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

function errorBody(code: number, message: string, status: string) {
  return { error: { code, message, status } };
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json; charset=UTF-8", "content-length": Buffer.byteLength(text) }).end(text);
}

function headerOf(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(typeof chunk === "string" ? Buffer.from(chunk) : (chunk as Buffer));
  return Buffer.concat(chunks);
}

function parseJson(body: Buffer): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(body.toString("utf8") || "{}");
    return isRecord(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
