/**
 * The one place that reads what Gemini answered when a call failed, from the
 * HTTP status, the body's `error.status` and the `google.rpc.ErrorInfo`
 * `reason`, and says what it means for us. Everything in the OCR runner that
 * catches a Gemini failure (generateContent, models.get, the File API) asks
 * here; gemini-calls.ts turns the verdict into a job error (job-errors.ts).
 *
 * Sources (read 2026-12-05):
 * - `@google/genai` 2.32 (googleapis/js-genai, src/_api_client.ts
 *   throwErrorIfNotOK): a non-2xx answer becomes `ApiError { status }` whose
 *   `message` is the JSON body `{"error":{"code","message","status","details"}}`
 *   (a non-JSON body is wrapped the same way with statusText as `status`).
 * - ai.google.dev/gemini-api/docs/troubleshooting (backend error codes): 400
 *   INVALID_ARGUMENT malformed request; 400 FAILED_PRECONDITION free tier not
 *   available, enable billing; 403 PERMISSION_DENIED the key lacks
 *   permission; 404 NOT_FOUND a referenced resource was not found; 429
 *   RESOURCE_EXHAUSTED; 500 INTERNAL; 503 UNAVAILABLE (overloaded); 504
 *   DEADLINE_EXCEEDED.
 * - A bad or expired key is `400 INVALID_ARGUMENT` with ErrorInfo reason
 *   `API_KEY_INVALID` (public reports, e.g. continuedev/continue#8516,
 *   google-gemini/gemini-cli#25198, google/timesketch#3703), never a 401.
 * - A retired model: `404 NOT_FOUND "models/… is not found for API version
 *   v1beta"` (deprecations page: once shut down "the endpoint is no longer
 *   available").
 * - A file past its 48 h, deleted, or uploaded with another key:
 *   `403 PERMISSION_DENIED "You do not have permission to access the File …
 *   or it may not exist"` (issue 18, domain.md §3); files.get of a missing
 *   file may also say 404. Either way the cure is a new upload.
 * - 429: details may be absent altogether (the daily quota included); the
 *   budget wrapper (gemini-call.ts) reads QuotaFailure/RetryInfo when present.
 * Where the sources are silent (a 403 whose reason is unknown, a 401 from a
 * proxy) the verdict is the one that spends no attempt of the document's.
 */

/** What a failed Gemini call means. */
export type GeminiFault =
  /** The deployment cannot work: key, model, billing. No job can succeed until someone fixes it. */
  | { readonly kind: "configuration"; readonly message: string }
  /** A quota answered 429 (with or without details). */
  | { readonly kind: "quota"; readonly message: string }
  /** The uploaded file is gone or not ours any more: upload it again. */
  | { readonly kind: "file"; readonly message: string }
  /** Google or the network failed this time (500/503/504, timeouts, resets): retry with backoff. */
  | { readonly kind: "transient"; readonly transient: "server" | "timeout" | "network"; readonly message: string }
  /** Google refused this request as such (another 4xx): one attempt of the document's. */
  | { readonly kind: "refused"; readonly message: string };

/** What the caller knows about the call that failed. */
export interface GeminiCallKind {
  /** "model" (generateContent, models.get) or "file" (upload, files.get, files.delete, or a generateContent naming a file). */
  readonly target: "model" | "file";
}

/** ErrorInfo reasons that say the key or project cannot use the API at all. */
const CONFIGURATION_REASONS = new Set([
  "API_KEY_INVALID",
  "API_KEY_EXPIRED",
  "API_KEY_SERVICE_BLOCKED",
  "API_KEY_HTTP_REFERRER_BLOCKED",
  "API_KEY_IP_ADDRESS_BLOCKED",
  "SERVICE_DISABLED",
  "BILLING_DISABLED",
  "CONSUMER_INVALID",
  "CONSUMER_SUSPENDED",
  "ACCESS_TOKEN_TYPE_UNSUPPORTED",
]);

/** Node and undici codes of a connection that broke or never was. */
const NETWORK_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "ENOTFOUND", "EAI_AGAIN", "ETIMEDOUT", "EPIPE", "UND_ERR_SOCKET", "UND_ERR_CONNECT_TIMEOUT", "UND_ERR_CLOSED"]);

export interface GeminiErrorBody {
  /** HTTP status. */
  readonly httpStatus: number;
  /** `error.status` (a google.rpc.Code name such as INVALID_ARGUMENT), when given. */
  readonly status: string | undefined;
  /** `error.message`, Google's sentence. */
  readonly message: string;
  /** Every ErrorInfo `reason` in `error.details`. */
  readonly reasons: readonly string[];
}

/** The parts of an `ApiError`-like (structural: `status` number and a JSON `message`), or undefined for anything else. */
export function geminiErrorBody(error: unknown): GeminiErrorBody | undefined {
  if (!(error instanceof Error) || !("status" in error) || typeof error.status !== "number") return undefined;
  const httpStatus = error.status;
  let body: unknown;
  try {
    body = JSON.parse(error.message);
  } catch {
    return { httpStatus, status: undefined, message: error.message.slice(0, 300), reasons: [] };
  }
  const inner = isRecord(body) && isRecord(body["error"]) ? body["error"] : {};
  const details = Array.isArray(inner["details"]) ? inner["details"] : [];
  const reasons = details.flatMap((detail) =>
    isRecord(detail) && typeof detail["@type"] === "string" && detail["@type"].endsWith("google.rpc.ErrorInfo") && typeof detail["reason"] === "string" ? [detail["reason"]] : [],
  );
  return {
    httpStatus,
    status: typeof inner["status"] === "string" ? inner["status"] : undefined,
    message: (typeof inner["message"] === "string" ? inner["message"] : error.message).slice(0, 300),
    reasons,
  };
}

/** What `error`, thrown by a Gemini call of `call`'s kind, means. */
export function classifyGeminiError(error: unknown, call: GeminiCallKind): GeminiFault {
  const body = geminiErrorBody(error);
  if (body === undefined) return classifyThrown(error);
  const said = `HTTP ${body.httpStatus}${body.status === undefined ? "" : ` ${body.status}`}${body.reasons.length > 0 ? ` (${body.reasons.join(", ")})` : ""}: ${body.message}`;
  const configurationReason = body.reasons.find((reason) => CONFIGURATION_REASONS.has(reason));
  if (configurationReason !== undefined) {
    return { kind: "configuration", message: `Gemini refused the API key or project (${said}); check GEMINI_API_KEY and the project's billing in AI Studio` };
  }
  const { httpStatus, status } = body;
  if (httpStatus === 429 || status === "RESOURCE_EXHAUSTED") return { kind: "quota", message: `Gemini quota exhausted (${said})` };
  if (httpStatus === 408 || httpStatus === 504 || status === "DEADLINE_EXCEEDED") return { kind: "transient", transient: "timeout", message: said };
  if (httpStatus >= 500) return { kind: "transient", transient: "server", message: said };
  if (httpStatus === 401 || status === "UNAUTHENTICATED") return { kind: "configuration", message: `Gemini refused the credentials (${said}); check GEMINI_API_KEY` };
  if (status === "FAILED_PRECONDITION" || /billing/i.test(body.message)) {
    return { kind: "configuration", message: `Gemini refused the project (${said}); enable billing for the project in AI Studio` };
  }
  if (httpStatus === 403 || status === "PERMISSION_DENIED") {
    // A file the key may not read is a file to upload again; any other 403 is the key's.
    if (call.target === "file" || /\bfile\b/i.test(body.message)) return { kind: "file", message: `the uploaded file is no longer readable (${said}); uploading it again` };
    return { kind: "configuration", message: `Gemini denied the API key permission (${said}); check GEMINI_API_KEY` };
  }
  if (httpStatus === 404 || status === "NOT_FOUND") {
    if (call.target === "file" || /\bfiles\//.test(body.message)) return { kind: "file", message: `the uploaded file is gone (${said}); uploading it again` };
    return { kind: "configuration", message: `a configured Gemini model does not exist (${said}); set GEMINI_FAST_MODEL / GEMINI_BOOST_MODEL to a model Google serves` };
  }
  return { kind: "refused", message: `Gemini refused the request (${said})` };
}

function classifyThrown(error: unknown): GeminiFault {
  if (!(error instanceof Error)) return { kind: "refused", message: `thrown value: ${String(error)}` };
  // The SDK's own timer aborts the fetch (an AbortError) when the call timeout passes.
  if (error.name === "AbortError" || error.name === "TimeoutError") return { kind: "transient", transient: "timeout", message: `${error.name}: ${error.message}` };
  const code = networkCode(error);
  if (code !== undefined || (error instanceof TypeError && /fetch failed|network|socket/i.test(error.message))) {
    return { kind: "transient", transient: "network", message: `${error.name}: ${error.message}${code === undefined ? "" : ` (${code})`}`.slice(0, 300) };
  }
  return { kind: "refused", message: `${error.name}: ${error.message}`.slice(0, 300) };
}

function networkCode(error: Error): string | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current instanceof Error; depth += 1) {
    const code: unknown = (current as { code?: unknown }).code;
    if (typeof code === "string" && NETWORK_CODES.has(code)) return code;
    current = current.cause;
  }
  return undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
