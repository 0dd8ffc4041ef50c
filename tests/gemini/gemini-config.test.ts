import { describe, expect, it } from "vitest";
import { parseCapacityConfig } from "../../supabase/functions/_shared/capacity-config.ts";
import { geminiEnvironment, ocrKindModels, parseGeminiConfig } from "../../supabase/functions/_shared/gemini-config.ts";

describe("parseGeminiConfig", () => {
  it("with nothing set: flash extracts, pro boosts, each at 80 % of a Tier 3 project", () => {
    const config = parseGeminiConfig({});
    expect(config.models).toEqual({ fast: "gemini-3.5-flash-lite", boost: "gemini-3.8-flash" });
    expect(config.limits).toEqual({
      "gemini-3.5-flash-lite": { rpm: 8_000, tpm: 6_400_000, rpd: 80_000 },
      "gemini-3.8-flash": { rpm: 1_600, tpm: 6_400_000, rpd: 40_000 },
    });
    expect(ocrKindModels(config)).toEqual({ "index-ocr": ["gemini-3.5-flash-lite", "gemini-3.8-flash"], "acte-ocr": ["gemini-3.5-flash-lite", "gemini-3.8-flash"] });
  });

  it("GEMINI_LIMITS is the whole table, and the models named must be in it; one model may do both jobs", () => {
    const config = parseGeminiConfig({
      GEMINI_LIMITS: ' {"gemini-3-flash":{"rpm":100,"tpm":2000,"rpd":30}} ',
      GEMINI_FAST_MODEL: "gemini-3-flash",
      GEMINI_BOOST_MODEL: "gemini-3-flash",
    });
    expect(config.limits).toEqual({ "gemini-3-flash": { rpm: 100, tpm: 2_000, rpd: 30 } });
    expect(ocrKindModels(config)["acte-ocr"]).toEqual(["gemini-3-flash"]);
    expect(parseGeminiConfig(geminiEnvironment(config))).toEqual(config);
  });

  it.each([
    [{ GEMINI_LIMITS: "{flash: 1}" }, /GEMINI_LIMITS="\{flash: 1\}" is not JSON/],
    [{ GEMINI_LIMITS: '{"gemini-3.5-flash-lite":{"rpm":10,"tpm":0,"rpd":1}}' }, /GEMINI_LIMITS at gemini-3.5-flash-lite.tpm must be greater than 0/],
    [{ GEMINI_LIMITS: '{"gemini-3.5-flash-lite":{"rpm":10.5,"tpm":10,"rpd":1}}' }, /GEMINI_LIMITS at gemini-3.5-flash-lite.rpm must be a whole number/],
    [{ GEMINI_LIMITS: '{"gemini-3.5-flash-lite":{"rpm":10,"tpm":10,"rpd":1,"tpd":5}}' }, /GEMINI_LIMITS at gemini-3.5-flash-lite/],
    [{ GEMINI_LIMITS: "{}" }, /GEMINI_LIMITS lists no model/],
    [{ GEMINI_FAST_MODEL: "gemini-9-ultra" }, /GEMINI_FAST_MODEL=gemini-9-ultra has no limits in GEMINI_LIMITS \(configured: gemini-3.5-flash-lite, gemini-3.8-flash\)/],
    [{ GEMINI_LIMITS: '{"gemini-3.5-flash-lite":{"rpm":1,"tpm":1,"rpd":1}}' }, /GEMINI_BOOST_MODEL=gemini-3.8-flash has no limits in GEMINI_LIMITS/],
    [{ GEMINI_TPM_LIMIT: "6400000" }, /GEMINI_TPM_LIMIT is no longer read: Gemini limits are per model now, set them in GEMINI_LIMITS/],
  ])("fails naming the variable: %j", (env, message) => {
    expect(() => parseGeminiConfig(env)).toThrow(message);
  });

  it("is part of the capacity configuration every runner and the dispatcher parse", () => {
    expect(parseCapacityConfig({ GEMINI_BOOST_MODEL: "gemini-3.5-flash-lite" }).gemini.models).toEqual({ fast: "gemini-3.5-flash-lite", boost: "gemini-3.5-flash-lite" });
    expect(() => parseCapacityConfig({ SERVER_MAX_CPU: "x", GEMINI_FAST_MODEL: "nope" })).toThrow(/SERVER_MAX_CPU="x" .*; .*GEMINI_FAST_MODEL=nope has no limits/);
  });
});
