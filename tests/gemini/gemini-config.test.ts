import { describe, expect, it } from "vitest";
import { parseCapacityConfig } from "../../supabase/functions/_shared/capacity-config.ts";
import { geminiEnvironment, ocrKindModels, parseGeminiConfig } from "../../supabase/functions/_shared/gemini-config.ts";

describe("parseGeminiConfig", () => {
  it("with nothing set: flash extracts, pro boosts, each at 80 % of a Tier 3 project", () => {
    const config = parseGeminiConfig({});
    expect(config.models).toEqual({ fast: "gemini-2.5-flash", boost: "gemini-2.5-pro" });
    expect(config.limits).toEqual({
      "gemini-2.5-flash": { rpm: 8_000, tpm: 6_400_000, rpd: 80_000 },
      "gemini-2.5-pro": { rpm: 1_600, tpm: 6_400_000, rpd: 40_000 },
    });
    expect(ocrKindModels(config)).toEqual({ "index-ocr": ["gemini-2.5-flash", "gemini-2.5-pro"], "acte-ocr": ["gemini-2.5-flash", "gemini-2.5-pro"] });
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
    [{ GEMINI_LIMITS: '{"gemini-2.5-flash":{"rpm":10,"tpm":0,"rpd":1}}' }, /GEMINI_LIMITS at gemini-2.5-flash.tpm must be greater than 0/],
    [{ GEMINI_LIMITS: '{"gemini-2.5-flash":{"rpm":10.5,"tpm":10,"rpd":1}}' }, /GEMINI_LIMITS at gemini-2.5-flash.rpm must be a whole number/],
    [{ GEMINI_LIMITS: '{"gemini-2.5-flash":{"rpm":10,"tpm":10,"rpd":1,"tpd":5}}' }, /GEMINI_LIMITS at gemini-2.5-flash/],
    [{ GEMINI_LIMITS: "{}" }, /GEMINI_LIMITS lists no model/],
    [{ GEMINI_FAST_MODEL: "gemini-9-ultra" }, /GEMINI_FAST_MODEL=gemini-9-ultra has no limits in GEMINI_LIMITS \(configured: gemini-2.5-flash, gemini-2.5-pro\)/],
    [{ GEMINI_LIMITS: '{"gemini-2.5-flash":{"rpm":1,"tpm":1,"rpd":1}}' }, /GEMINI_BOOST_MODEL=gemini-2.5-pro has no limits in GEMINI_LIMITS/],
    [{ GEMINI_TPM_LIMIT: "6400000" }, /GEMINI_TPM_LIMIT is no longer read: Gemini limits are per model now, set them in GEMINI_LIMITS/],
  ])("fails naming the variable: %j", (env, message) => {
    expect(() => parseGeminiConfig(env)).toThrow(message);
  });

  it("is part of the capacity configuration every runner and the dispatcher parse", () => {
    expect(parseCapacityConfig({ GEMINI_BOOST_MODEL: "gemini-2.5-flash" }).gemini.models).toEqual({ fast: "gemini-2.5-flash", boost: "gemini-2.5-flash" });
    expect(() => parseCapacityConfig({ SERVER_MAX_CPU: "x", GEMINI_FAST_MODEL: "nope" })).toThrow(/SERVER_MAX_CPU="x" .*; .*GEMINI_FAST_MODEL=nope has no limits/);
  });
});
