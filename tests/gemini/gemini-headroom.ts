import type { GeminiGateInput, GeminiModelHeadroom } from "../../supabase/functions/_shared/gemini-gate.ts";

/** The seed's per-task estimates (dispatch-config.ts defaults). */
export const TOKENS_PER_TASK = { "index-ocr": 54_000, "acte-ocr": 243_000 } as const;

const FAST = "gemini-3.5-flash-lite";
const BOOST = "gemini-3.8-flash";

/**
 * The plan's Gemini input for the default models: both OCR kinds extract with
 * the fast model and boost with the strong one; each starts with the default
 * limits' headroom and takes what the test overrides.
 */
export function geminiHeadroom(fast: Partial<GeminiModelHeadroom> = {}, boost: Partial<GeminiModelHeadroom> = {}): GeminiGateInput {
  const dayResetsAt = Date.UTC(2026, 10, 30, 8);
  return {
    models: {
      [FAST]: { cooldownMs: 0, tokensLeft: 6_400_000, requestsLeftToday: 80_000, dayResetsAt, ...fast },
      [BOOST]: { cooldownMs: 0, tokensLeft: 6_400_000, requestsLeftToday: 40_000, dayResetsAt, ...boost },
    },
    kindModels: { "index-ocr": [FAST, BOOST], "acte-ocr": [FAST, BOOST] },
    tokensPerTask: TOKENS_PER_TASK,
  };
}
