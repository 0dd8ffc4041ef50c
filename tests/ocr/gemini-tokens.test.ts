import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { estimateInputTokens } from "../../supabase/functions/_shared/gemini-call.ts";
import { GeminiRateBudget } from "../../supabase/functions/_shared/gemini-rate-budget.ts";
import { GeminiTokenCalibration } from "../../supabase/functions/_shared/gemini-token-calibration.ts";
import { createLogger } from "../../runners/lifecycle/structured-log.ts";
import { parseOcrSettings } from "../../runners/ocr/ocr-config.ts";
import { openPdf, rasterizePage, type PdfFile } from "../../runners/ocr/pdf-pages.ts";
import { GeminiOcrProvider } from "../../runners/ocr/providers/gemini-provider.ts";
import { startGeminiTestServer, type GeminiTestServer } from "../helpers/gemini-test-server.ts";
import { textPagesPdf } from "../helpers/text-page-pdf.ts";
import { randomKeyPrefix, upstashClient } from "../helpers/upstash-client.ts";
import { scriptedModel } from "./scripted-model.ts";

/**
 * Input tokens as Google counts them: a Gemini 3 page image costs its
 * media-resolution budget (1,120 at HIGH), not ≈16K by 768-px tiles of an
 * upscaled page; where Google counts otherwise, the figure measured from
 * promptTokensDetails is kept in Upstash and the next estimate uses it.
 */

const FAST = "gemini-3.5-flash-lite";
const STRONG = "gemini-3.8-flash";
const limits = { [FAST]: { rpm: 1000, tpm: 10_000_000, rpd: 100_000 }, [STRONG]: { rpm: 1000, tpm: 10_000_000, rpd: 100_000 } };
const PAGE = ["Côté, Élise ; Caisse Desjardins | Hypothèque | 1998-03-12 | 1 234 567 |  | 95 000,00 $"];
const context = { signal: new AbortController().signal, log: createLogger({ base: { test: "gemini-tokens" }, level: "error" }) };

describe("tokens as Google counts them", () => {
  let server: GeminiTestServer;
  let pdf: PdfFile;
  beforeAll(async () => {
    pdf = await openPdf(await textPagesPdf([{ lines: PAGE, fontSizePx: 30 }]));
  });
  afterAll(async () => {
    await pdf?.dispose();
    await server?.close();
  });

  function provider(prefix: string, calibration?: GeminiTokenCalibration): GeminiOcrProvider {
    const settings = parseOcrSettings({ GEMINI_API_KEY: "k", GEMINI_BASE_URL: server.url });
    if (settings.gemini === undefined) throw new Error("gemini settings expected");
    return new GeminiOcrProvider(settings.gemini, { fast: FAST, boost: STRONG }, new GeminiRateBudget(upstashClient(), { limits }, { keyPrefix: prefix }), calibration === undefined ? {} : { calibration });
  }

  it("estimates a page image at Google's Gemini 3 budget, within the 10 % margin of what the server counted", async () => {
    server = await startGeminiTestServer({ respond: scriptedModel({ indexPages: [PAGE], acteText: "" }) });
    const gemini = provider(randomKeyPrefix("tokens"));
    const image = await rasterizePage(pdf, 1, { dpi: 300, ...gemini.raster });
    await gemini.extractIndexPage(image, 1, context);
    const call = server.requests.find((request) => request.kind === "generateContent");
    const counted = call?.promptTokenCount ?? 0;
    expect(call?.generate?.promptTokensDetails.find((detail) => detail.modality === "IMAGE")?.tokenCount).toBe(1_120);
    const estimate = estimateInputTokens({ textChars: call?.generate?.text.length ?? 0, images: [image], model: FAST, mediaResolution: "MEDIA_RESOLUTION_HIGH" });
    expect(estimate / counted).toBeGreaterThanOrEqual(1);
    expect(estimate / counted).toBeLessThanOrEqual(1.11);
    // The old tile formula on the same page image: many times the 1,120 Google counts (20 tiles of 258).
    expect(estimateInputTokens({ images: [image] }) / 1_120).toBeGreaterThan(4);
  });

  it("keeps the figure Google counted when it differs from the documented one, and the next estimate (any runner) uses it", async () => {
    await server.close();
    server = await startGeminiTestServer({ respond: scriptedModel({ indexPages: [PAGE], acteText: "" }), mediaTokens: { image: 1_450, pdfPage: 700 } });
    const prefix = randomKeyPrefix("tokens");
    const calibration = new GeminiTokenCalibration(upstashClient(), prefix);
    const gemini = provider(prefix, calibration);
    const image = await rasterizePage(pdf, 1, { dpi: 300, ...gemini.raster });
    await gemini.countIndexLines(image, 1, context);
    const another = new GeminiTokenCalibration(upstashClient(), prefix);
    await another.load();
    expect(another.mediaTokens(FAST, "MEDIA_RESOLUTION_HIGH")).toEqual({ image: 1_450 });
    const next = estimateInputTokens({ textChars: 400, images: [image], model: FAST, mediaResolution: "MEDIA_RESOLUTION_HIGH", mediaTokens: another.mediaTokens(FAST, "MEDIA_RESOLUTION_HIGH") });
    expect(next).toBe(Math.ceil((100 + 1_450) * 1.1));
  });
});
