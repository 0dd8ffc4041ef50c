import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GeminiRateBudget } from "../../supabase/functions/_shared/gemini-rate-budget.ts";
import { classifyFailure } from "../../runners/lifecycle/job-errors.ts";
import { createLogger } from "../../runners/lifecycle/structured-log.ts";
import { parseOcrSettings } from "../../runners/ocr/ocr-config.ts";
import { GeminiOcrProvider } from "../../runners/ocr/providers/gemini-provider.ts";
import { classifyGeminiError } from "../../runners/ocr/providers/gemini-errors.ts";
import { startGeminiTestServer, type GeminiScriptedReply, type GeminiTestServer } from "../helpers/gemini-test-server.ts";
import { randomKeyPrefix, upstashClient } from "../helpers/upstash-client.ts";

/**
 * Gemini's failures as Google sends them (the test server speaks them), read
 * by the one classification (gemini-errors.ts) and turned into the job's
 * verdict: what staff would see on the row (disposition, error_kind, message).
 */

const FAST = "gemini-fast-answers";
const STRONG = "gemini-strong-answers";
const limits = { [FAST]: { rpm: 1000, tpm: 10_000_000, rpd: 100_000 }, [STRONG]: { rpm: 1000, tpm: 10_000_000, rpd: 100_000 } };
const log = createLogger({ base: { test: "gemini-answers" }, level: "error" });

describe("Gemini's answers, classified once", () => {
  let server: GeminiTestServer;
  beforeAll(async () => {
    server = await startGeminiTestServer({ models: [FAST, STRONG], validApiKeys: ["good-key"] });
  });
  afterAll(async () => {
    await server?.close();
  });

  function provider(options: { key?: string; fast?: string; faults?: string[] } = {}): GeminiOcrProvider {
    const settings = parseOcrSettings({ GEMINI_API_KEY: options.key ?? "good-key", GEMINI_BASE_URL: server.url, GEMINI_BACKOFF_BASE_MS: "20", GEMINI_TRANSIENT_RETRIES: "2" });
    if (settings.gemini === undefined) throw new Error("gemini settings expected");
    const budget = new GeminiRateBudget(upstashClient(), { limits: { ...limits, ...(options.fast === undefined ? {} : { [options.fast]: limits[FAST] }) } }, { keyPrefix: randomKeyPrefix("answers") });
    return new GeminiOcrProvider(settings.gemini, { fast: options.fast ?? FAST, boost: STRONG }, budget, {
      onConfigurationFault: async (reason) => {
        options.faults?.push(reason);
      },
    });
  }
  const context = () => ({ signal: new AbortController().signal, log });
  const boostFailure = async (reply: GeminiScriptedReply, options: Parameters<typeof provider>[0] = {}) => {
    server.setResponder(() => reply);
    return classifyFailure(await provider(options).boostActe("texte", context()).then(() => undefined, (error: unknown) => error));
  };

  it("models.get at start: both served models pass; a retired model is a configuration fault, recorded, naming the variable", async () => {
    await expect(provider().checkModels(context())).resolves.toBeUndefined();
    const faults: string[] = [];
    const failure = classifyFailure(await provider({ fast: "gemini-2.5-flash", faults }).checkModels(context()).catch((error: unknown) => error));
    expect(failure).toMatchObject({ disposition: "configuration", kind: "configuration" });
    expect(failure.message).toContain("models/gemini-2.5-flash is not found for API version v1beta");
    expect(failure.message).toContain("GEMINI_FAST_MODEL");
    expect(faults).toHaveLength(1);
    expect(server.requests.filter((request) => request.kind === "models.get").map((request) => request.status)).toEqual([200, 200, 404]);
  });

  it("a bad or expired key (400 INVALID_ARGUMENT, API_KEY_INVALID) is a configuration fault, not the document's", async () => {
    const faults: string[] = [];
    const failure = classifyFailure(await provider({ key: "expired-key", faults }).checkModels(context()).catch((error: unknown) => error));
    expect(failure).toMatchObject({ disposition: "configuration", kind: "configuration" });
    expect(failure.message).toMatch(/API_KEY_INVALID.*check GEMINI_API_KEY/);
    expect(faults).toHaveLength(1);
  });

  it("generateContent on a model Google stopped serving: configuration, no attempt spent", async () => {
    server.setResponder(() => "OK");
    const failure = classifyFailure(await provider({ fast: "gemini-2.5-pro" }).extractIndexPage({ pageNumber: 1, bytes: new Uint8Array([1]), mimeType: "image/png", width: 1, height: 1 }, 1, context()).catch((error: unknown) => error));
    expect(failure).toMatchObject({ disposition: "configuration", kind: "configuration" });
  });

  it("billing off (400 FAILED_PRECONDITION) is a configuration fault", async () => {
    const failure = await boostFailure({ error: { code: 400, status: "FAILED_PRECONDITION", message: "User location is not supported for the API use without a billing account linked." } });
    expect(failure).toMatchObject({ disposition: "configuration", kind: "configuration" });
    expect(failure.message).toContain("enable billing");
  });

  it("a 429 without any details is quota: released without spending an attempt", async () => {
    const settings = parseOcrSettings({ GEMINI_API_KEY: "good-key", GEMINI_BASE_URL: server.url, GEMINI_BUDGET_MAX_WAIT_MS: "100" });
    if (settings.gemini === undefined) throw new Error("gemini settings expected");
    server.setResponder(() => ({ error: { code: 429, message: "Resource has been exhausted (e.g. check quota).", noDetails: true } }));
    const gemini = new GeminiOcrProvider(settings.gemini, { fast: FAST, boost: STRONG }, new GeminiRateBudget(upstashClient(), { limits }, { keyPrefix: randomKeyPrefix("answers") }));
    const failure = classifyFailure(await gemini.boostActe("texte", context()).catch((error: unknown) => error));
    expect(failure).toMatchObject({ disposition: "infrastructure", kind: "quota" });
  });

  it("an overload burst (503) is retried with backoff; a burst that outlasts the retries is released as infrastructure", async () => {
    let answered = 0;
    server.setResponder(() => (answered++ < 2 ? { error: { code: 503, message: "The model is overloaded. Please try again later." } } : "Texte corrigé"));
    await expect(provider().boostActe("texte", context())).resolves.toBe("Texte corrigé");
    server.setResponder(() => ({ error: { code: 500, status: "INTERNAL", message: "An internal error has occurred." } }));
    const failure = classifyFailure(await provider().boostActe("texte", context()).catch((error: unknown) => error));
    expect(failure).toMatchObject({ disposition: "infrastructure", kind: "infrastructure" });
    expect(failure.message).toMatch(/failed 3 times \(server\)/);
  });

  it("an uploaded file that is gone (403 PERMISSION_DENIED) is uploaded again, then the acte is read", async () => {
    server.setResponder(() => "Texte de l'acte");
    server.clearLog();
    server.expireNextUsedFiles(1);
    const pdfBytes = new TextEncoder().encode("%PDF-1.4\n1 0 obj << /Type /Page >> endobj\n%%EOF");
    const text = await provider().extractActe({ path: "", pageCount: 1, bytes: pdfBytes, dispose: async () => {} }, context());
    expect(text).toBe("Texte de l'acte");
    const generates = server.requests.filter((request) => request.kind === "generateContent").map((request) => request.status);
    expect(generates).toEqual([403, 200]);
    expect(server.requests.filter((request) => request.kind === "upload.finalize")).toHaveLength(2);
    const fault = classifyGeminiError(Object.assign(new Error(JSON.stringify({ error: { code: 403, message: "You do not have permission to access the File abc or it may not exist.", status: "PERMISSION_DENIED" } })), { status: 403 }), { target: "model" });
    expect(fault.kind).toBe("file");
  });

  it("an upload that ends FAILED is a failed attempt naming Google's reason, and the file is deleted", async () => {
    server.setResponder(() => "Texte");
    server.clearLog();
    server.failNextUploads(1);
    const pdfBytes = new TextEncoder().encode("%PDF-1.4\n%%EOF");
    const failure = classifyFailure(await provider().extractActe({ path: "", pageCount: 1, bytes: pdfBytes, dispose: async () => {} }, context()).catch((error: unknown) => error));
    expect(failure).toMatchObject({ disposition: "retryable", kind: "document_retryable" });
    expect(failure.message).toContain("The document could not be processed.");
    expect(server.requests.filter((request) => request.kind === "files.delete").map((request) => request.status)).toEqual([200]);
  });

  it("a connection refused is a network fault, retried then released", () => {
    const refused = Object.assign(new TypeError("fetch failed"), { cause: Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:1"), { code: "ECONNREFUSED" }) });
    expect(classifyGeminiError(refused, { target: "model" })).toMatchObject({ kind: "transient", transient: "network" });
  });
});
