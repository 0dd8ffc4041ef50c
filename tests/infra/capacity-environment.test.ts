import { describe, expect, it } from "vitest";
import { parseCapacityConfig } from "../../supabase/functions/_shared/capacity-config.ts";
import { capacityEnvironment } from "../../infra/capacity-environment.ts";

describe("capacityEnvironment", () => {
  it("writes a configuration that parses back to itself, every variable set away from its default", () => {
    const config = parseCapacityConfig({
      SERVER_MAX_CPU: "24",
      SERVER_MAX_RAM: "48.5",
      SERVER_RESERVE_CPU_PERCENT: "12.5",
      SERVER_RESERVE_RAM_PERCENT: "10",
      REGISTRE_VCPU: "4",
      REGISTRE_RAM_GB: "8",
      REGISTRE_PRIORITY: "11",
      MAX_REGISTRE_TASKS: "2",
      INDEX_OCR_VCPU: "2",
      INDEX_OCR_RAM_GB: "4",
      INDEX_OCR_PRIORITY: "6",
      MAX_INDEX_OCR_TASKS: "3",
      ACTE_OCR_VCPU: "0.5",
      ACTE_OCR_RAM_GB: "1",
      ACTE_OCR_PRIORITY: "7",
      MAX_ACTE_OCR_TASKS: "0",
      LEDGER_LEASE_TTL_SECONDS: "420.5",
      GEMINI_LIMITS: '{"gemini-x-fast":{"rpm":900,"tpm":3000000,"rpd":5000},"gemini-x-strong":{"rpm":90,"tpm":1000000,"rpd":700}}',
      GEMINI_FAST_MODEL: "gemini-x-fast",
      GEMINI_BOOST_MODEL: "gemini-x-strong",
    });
    expect(parseCapacityConfig(capacityEnvironment(config))).toEqual(config);
  });

  it("spells out the defaults, and leaves uncapped kinds unset", () => {
    const environment = capacityEnvironment(parseCapacityConfig({}));
    expect(environment).toMatchObject({ SERVER_MAX_CPU: "8", REGISTRE_VCPU: "3", INDEX_OCR_RAM_GB: "0.75", LEDGER_LEASE_TTL_SECONDS: "300" });
    expect(environment).not.toHaveProperty("MAX_REGISTRE_TASKS");
  });
});
