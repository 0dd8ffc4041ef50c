import { ApiError, GoogleGenAI, MediaResolution } from "@google/genai";
import sharp from "sharp";
import { afterEach, describe, expect, it } from "vitest";
import { retryDelayOf } from "../../supabase/functions/_shared/gemini-call.ts";
import { startGeminiTestServer, type GeminiTestServer } from "../helpers/gemini-test-server.ts";

/** The production client, pointed at the test server the way the runners point it (GEMINI_BASE_URL). */
const clientFor = (server: GeminiTestServer) => new GoogleGenAI({ apiKey: "test-key", httpOptions: { baseUrl: server.url } });

describe("the Gemini test server, through @google/genai", () => {
  let server: GeminiTestServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it("answers generateContent with the scripted text and usageMetadata, and countTokens with the same count", async () => {
    server = await startGeminiTestServer({ respond: (request) => `modèle ${request.model}: ${request.text.length} caractères` });
    const ai = clientFor(server);
    const contents = [{ role: "user", parts: [{ text: "Bonjour, Québec" }, { inlineData: { mimeType: "image/png", data: Buffer.from("png").toString("base64") } }] }];
    const reply = await ai.models.generateContent({ model: "gemini-fast", contents, config: { temperature: 0.1, systemInstruction: "Réponds en français." } });
    expect(reply.text).toBe("modèle gemini-fast: 15 caractères");
    const usage = reply.usageMetadata;
    expect(usage?.promptTokenCount).toBe(Math.ceil(15 / 4) + Math.ceil("Réponds en français.".length / 4) + 258);
    expect(usage?.totalTokenCount).toBe((usage?.promptTokenCount ?? 0) + (usage?.candidatesTokenCount ?? 0));
    const counted = await ai.models.countTokens({ model: "gemini-fast", contents });
    expect(counted.totalTokens).toBe(Math.ceil(15 / 4) + 258);
    const [generate] = server.requests;
    expect(generate).toMatchObject({ kind: "generateContent", model: "gemini-fast", status: 200, hadApiKey: true, path: "/v1beta/models/gemini-fast:generateContent" });
    expect(generate?.generate?.generationConfig).toMatchObject({ temperature: 0.1 });
    expect(server.requests[1]).toMatchObject({ kind: "countTokens", status: 200 });
  });

  it("runs the resumable upload, PROCESSING then ACTIVE, a call on the file, and delete", async () => {
    server = await startGeminiTestServer({ fileProcessingMs: 150, respond: (request) => `fichiers: ${request.fileUris.length}` });
    const ai = clientFor(server);
    const pdf = new Blob([Buffer.from("%PDF-1.4\n1 0 obj << /Type /Page >> endobj\n2 0 obj << /Type /Page >> endobj\n%%EOF")], { type: "application/pdf" });
    const uploaded = await ai.files.upload({ file: pdf, config: { mimeType: "application/pdf", displayName: "acte.pdf" } });
    expect(uploaded.state).toBe("PROCESSING");
    expect(uploaded.name).toMatch(/^files\//);
    const name = uploaded.name ?? "";
    let state = uploaded.state;
    while (state !== "ACTIVE") state = (await ai.files.get({ name })).state;
    const reply = await ai.models.generateContent({
      model: "gemini-fast",
      contents: [{ role: "user", parts: [{ fileData: { fileUri: uploaded.uri ?? "", mimeType: "application/pdf" } }, { text: "Lis." }] }],
    });
    expect(reply.text).toBe("fichiers: 1");
    // Two pages: 2 × 258 input tokens for the document, plus the text.
    expect(reply.usageMetadata?.promptTokenCount).toBe(2 * 258 + 1);
    await ai.files.delete({ name });
    expect(server.files.get(name)?.deleted).toBe(true);
    await expect(ai.files.get({ name })).rejects.toMatchObject({ status: 404 });
    const kinds = server.requests.map((request) => request.kind);
    expect(kinds.slice(0, 2)).toEqual(["upload.start", "upload.finalize"]);
    expect(kinds).toContain("files.get");
    expect(kinds.slice(-2)).toEqual(["files.delete", "files.get"]);
    expect(server.files.get(name)?.displayName).toBe("acte.pdf");
  });

  it("answers 429 past a model's quota with QuotaFailure and a RetryInfo.retryDelay, per model", async () => {
    server = await startGeminiTestServer({ quotas: { "gemini-fast": { rpm: 2 } }, windowMs: 10_000 });
    const ai = clientFor(server);
    const ask = (model: string) => ai.models.generateContent({ model, contents: "Bonjour" });
    await ask("gemini-fast");
    await ask("gemini-fast");
    const refused = await ask("gemini-fast").catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(ApiError);
    expect(refused).toMatchObject({ status: 429 });
    const delay = retryDelayOf(refused);
    expect(delay).toMatch(/^\d+(\.\d+)?s$/);
    expect(Number(delay?.slice(0, -1))).toBeGreaterThan(9);
    const body: unknown = JSON.parse((refused as ApiError).message);
    expect(body).toMatchObject({
      error: {
        code: 429,
        status: "RESOURCE_EXHAUSTED",
        details: expect.arrayContaining([
          expect.objectContaining({
            "@type": "type.googleapis.com/google.rpc.QuotaFailure",
            violations: [expect.objectContaining({ quotaId: "GenerateRequestsPerMinutePerProjectPerModel", quotaDimensions: { location: "global", model: "gemini-fast" } })],
          }),
        ]),
      },
    });
    // Another model has its own quota.
    await expect(ask("gemini-strong")).resolves.toBeDefined();
    expect(server.rateLimitedCount()).toBe(1);
  });

  it("counts input tokens against a TPM quota and plays scripted errors", async () => {
    server = await startGeminiTestServer({ quotas: { "*": { tpm: 30 } }, retryDelay: "2s" });
    const ai = clientFor(server);
    const long = "x".repeat(100); // 25 input tokens
    await ai.models.generateContent({ model: "m", contents: long });
    const refused = await ai.models.generateContent({ model: "m", contents: long }).catch((error: unknown) => error);
    expect(retryDelayOf(refused)).toBe("2s");
    expect((refused as ApiError).message).toContain("GenerateContentPaidTierInputTokensPerModelPerMinute");
    server.setResponder(() => ({ error: { code: 503, message: "The model is overloaded." } }));
    await expect(ai.models.generateContent({ model: "other", contents: "a" })).rejects.toMatchObject({ status: 503 });
  });

  it("refuses a request without an API key as Google does (403 PERMISSION_DENIED)", async () => {
    server = await startGeminiTestServer();
    const response = await fetch(`${server.url}/v1beta/models/m:generateContent`, { method: "POST", body: "{}" });
    expect(response.status).toBe(403);
  });
});

describe("the Gemini test server speaks like Google: files, tokens", () => {
  let server: GeminiTestServer;
  afterEach(async () => {
    await server?.close();
  });

  it("takes an upload over 8 MiB in the SDK's chunks, and a file Google cannot process ends FAILED", async () => {
    server = await startGeminiTestServer();
    const ai = new GoogleGenAI({ apiKey: "k", httpOptions: { baseUrl: server.url } });
    const bytes = new Uint8Array(9 * 1024 * 1024 + 17).fill(7);
    const file = await ai.files.upload({ file: new Blob([bytes], { type: "application/pdf" }), config: { mimeType: "application/pdf" } });
    const stored = server.files.get(file.name ?? "");
    expect([stored?.chunks, stored?.bytes.byteLength]).toEqual([2, bytes.byteLength]);
    expect(server.requests.filter((request) => request.kind === "upload.chunk")).toHaveLength(1);
    server.failNextUploads(1);
    const failing = await ai.files.upload({ file: new Blob([new Uint8Array(10)], { type: "application/pdf" }), config: { mimeType: "application/pdf" } });
    expect(await ai.files.get({ name: failing.name ?? "" })).toMatchObject({ state: "FAILED", error: { message: "The document could not be processed." } });
  });

  it("counts a Gemini 3 image at its media-resolution budget (not by 768-px tiles), reports promptTokensDetails and thoughtsTokenCount", async () => {
    server = await startGeminiTestServer({ respond: () => ({ text: "ok", thoughtsTokenCount: 42 }) });
    const ai = new GoogleGenAI({ apiKey: "k", httpOptions: { baseUrl: server.url } });
    const page = await sharp({ create: { width: 5100, height: 6600, channels: 3, background: "white" } }).jpeg().toBuffer();
    const image = { inlineData: { mimeType: "image/jpeg", data: page.toString("base64") } };
    const prompt = "x".repeat(400);
    const high = await ai.models.generateContent({ model: "gemini-3.5-flash-lite", contents: [{ role: "user", parts: [image, { text: prompt }] }], config: { mediaResolution: MediaResolution.MEDIA_RESOLUTION_HIGH } });
    expect(high.usageMetadata).toMatchObject({ promptTokenCount: 1_220, thoughtsTokenCount: 42, promptTokensDetails: [{ modality: "TEXT", tokenCount: 100 }, { modality: "IMAGE", tokenCount: 1_120 }] });
    const low = await ai.models.generateContent({ model: "gemini-3.5-flash-lite", contents: [{ role: "user", parts: [image, { text: prompt }] }], config: { mediaResolution: MediaResolution.MEDIA_RESOLUTION_LOW } });
    expect(low.usageMetadata?.promptTokenCount).toBe(380);
    // An older model still counts tiles: 7 × 9 tiles of 258.
    const tiled = await ai.models.generateContent({ model: "gemini-2.0-flash", contents: [{ role: "user", parts: [image, { text: prompt }] }] });
    expect(tiled.usageMetadata?.promptTokenCount).toBe(100 + 63 * 258);
  });

  it("answers a 429 without details, as Google often does", async () => {
    server = await startGeminiTestServer({ respond: () => ({ error: { code: 429, message: "Resource has been exhausted (e.g. check quota).", noDetails: true } }) });
    const response = await fetch(`${server.url}/v1beta/models/m:generateContent`, { method: "POST", headers: { "x-goog-api-key": "k" }, body: JSON.stringify({ contents: [] }) });
    expect(response.status).toBe(429);
    expect(await response.json()).toEqual({ error: { code: 429, message: "Resource has been exhausted (e.g. check quota).", status: "RESOURCE_EXHAUSTED" } });
  });
});
