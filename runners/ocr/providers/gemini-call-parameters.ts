/**
 * Every OCR call's generation parameters, by model generation, as Google
 * recommends them (read 2026-12-05):
 *
 * - Gemini 3 (ai.google.dev/gemini-api/docs/gemini-3, "Temperature" and
 *   "Thinking level"): keep the default temperature (1.0): lower values "may
 *   lead to unexpected behavior, such as looping or degraded performance",
 *   which on a verbatim transcription is exactly the MAX_TOKENS loop we must
 *   not store. Thinking is dynamic by default; `thinkingLevel: LOW` "for
 *   high-throughput tasks" where complex reasoning is not needed:
 *   transcription, line counting and the rule-driven boost all are.
 *   `thinkingLevel` and `thinkingBudget` must not both be set.
 * - Gemini 2.5 (older configurations still allowed): the temperature the
 *   domain asks for transcription (≈0.1, 0 for the JSON count) and a thinking
 *   budget, which 2.5 takes instead of a level.
 * - Every call sets `maxOutputTokens`, so a runaway reply ends as a
 *   MAX_TOKENS stop we detect (finishReason) instead of a call that outlasts
 *   its timeout; the caps are per purpose, sized on the longest real outputs
 *   (a 30-line ledger page ≈ 2.5K tokens, a 10-page deed ≈ 12K).
 * - `mediaResolution` (media-resolution docs, "global for a whole
 *   generateContent request, all multimodal models"): HIGH for a ledger
 *   page image (Gemini 3 counts 1,120 tokens per image at HIGH, its image
 *   default), left unset for a PDF (560 tokens per page, the PDF default).
 *
 * The request's `config` is built here and nowhere else.
 */
import { MediaResolution, ThinkingLevel, type GenerateContentConfig } from "@google/genai";

/** What a call is for. */
export type GeminiCallPurpose = "line-count" | "page-extraction" | "acte-extraction" | "boost";

/** The generation a model name belongs to: what decides its parameters. */
export function modelGeneration(model: string): "gemini-3" | "gemini-2" | "other" {
  if (/^gemini-(3|[4-9])([.-]|$)/.test(model)) return "gemini-3"; // Later generations take the Gemini 3 parameters until Google says otherwise.
  if (/^gemini-2([.-]|$)/.test(model)) return "gemini-2";
  return "other";
}

/** Output-token caps per purpose (see above). */
export const MAX_OUTPUT_TOKENS: Readonly<Record<GeminiCallPurpose, number>> = {
  "line-count": 1_024,
  "page-extraction": 8_192,
  "acte-extraction": 32_768,
  boost: 16_384,
};

/** The `config` of one generateContent call of `purpose` on `model`. */
export function callParameters(model: string, purpose: GeminiCallPurpose): GenerateContentConfig {
  const json = purpose === "line-count" ? { responseMimeType: "application/json" } : {};
  const media = purpose === "line-count" || purpose === "page-extraction" ? { mediaResolution: MediaResolution.MEDIA_RESOLUTION_HIGH } : {};
  const base = { maxOutputTokens: MAX_OUTPUT_TOKENS[purpose], ...json, ...media };
  switch (modelGeneration(model)) {
    case "gemini-3":
      return { ...base, thinkingConfig: { thinkingLevel: ThinkingLevel.LOW } };
    case "gemini-2":
      // 2.5 Flash may think 0 tokens; a small budget keeps 2.5 Pro (which cannot) valid too.
      return { ...base, temperature: purpose === "line-count" ? 0 : 0.1, thinkingConfig: { thinkingBudget: 128 } };
    case "other":
      return { ...base, temperature: purpose === "line-count" ? 0 : 0.1 };
  }
}
