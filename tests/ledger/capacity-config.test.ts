import { describe, expect, it } from "vitest";
import { parseCapacityConfig } from "../../supabase/functions/_shared/capacity-config.ts";

describe("parseCapacityConfig", () => {
  it("with nothing set, uses the seed's profiles, an 8 vCPU / 16 GB budget and a 20 % reserve", () => {
    const config = parseCapacityConfig({});
    expect(config.capacity).toEqual({ vcpu: 6.4, ramGb: 12.8 });
    expect(config.profiles).toEqual({
      registre: { vcpu: 3, ramGb: 1, priority: 10, maxTasks: null },
      "index-ocr": { vcpu: 1.5, ramGb: 0.75, priority: 5, maxTasks: null },
      "acte-ocr": { vcpu: 1, ramGb: 0.5, priority: 5, maxTasks: null },
    });
    expect(config.leaseTtlMs).toBe(300_000);
    expect(config.gemini.models).toEqual({ fast: "gemini-3.5-flash-lite", boost: "gemini-3.8-flash" });
  });

  it("reads every variable, and treats a blank one as unset", () => {
    const config = parseCapacityConfig({
      SERVER_MAX_CPU: "16",
      SERVER_MAX_RAM: " 32 ",
      SERVER_RESERVE_CPU_PERCENT: "12.5",
      SERVER_RESERVE_RAM_PERCENT: "",
      INDEX_OCR_VCPU: "2",
      MAX_ACTE_OCR_TASKS: "4",
      LEDGER_LEASE_TTL_SECONDS: "1.5",
      GEMINI_LIMITS: '{"gemini-3.5-flash-lite":{"rpm":10,"tpm":1000,"rpd":100},"gemini-3.8-flash":{"rpm":1,"tpm":500,"rpd":10}}',
    });
    expect(config.capacity).toEqual({ vcpu: 14, ramGb: 25.6 });
    expect(config.profiles["index-ocr"].vcpu).toBe(2);
    expect(config.profiles["acte-ocr"].maxTasks).toBe(4);
    expect(config.leaseTtlMs).toBe(1500);
    expect(config.gemini.limits["gemini-3.5-flash-lite"]).toEqual({ rpm: 10, tpm: 1000, rpd: 100 });
  });

  it.each([
    ["SERVER_MAX_CPU", "eight", /SERVER_MAX_CPU="eight" must be a plain decimal number/],
    ["SERVER_MAX_RAM", "0", /SERVER_MAX_RAM="0" must be greater than 0/],
    ["SERVER_RESERVE_CPU_PERCENT", "120", /SERVER_RESERVE_CPU_PERCENT="120" must be at most 95/],
    ["ACTE_OCR_RAM_GB", "-1", /ACTE_OCR_RAM_GB="-1" must be a plain decimal number/],
    ["MAX_REGISTRE_TASKS", "1.5", /MAX_REGISTRE_TASKS="1.5" must be a whole number/],
    ["GEMINI_LIMITS", '{"gemini-3.5-flash-lite":{"rpm":1e3}}', /GEMINI_LIMITS at gemini-3.5-flash-lite.tpm /],
    ["LEDGER_LEASE_TTL_SECONDS", "5m", /LEDGER_LEASE_TTL_SECONDS="5m" must be a plain decimal number/],
  ])("fails naming %s when it is %j", (name, value, message) => {
    expect(() => parseCapacityConfig({ [name]: value })).toThrow(message);
  });

  it("names every bad variable at once", () => {
    expect(() => parseCapacityConfig({ SERVER_MAX_CPU: "x", REGISTRE_PRIORITY: "high" })).toThrow(
      /SERVER_MAX_CPU="x" .*; REGISTRE_PRIORITY="high" /,
    );
  });

  it("refuses a budget in which a kind could never run, unless that kind is switched off", () => {
    expect(() => parseCapacityConfig({ SERVER_MAX_CPU: "2" })).toThrow(
      "REGISTRE_VCPU=3 exceeds the 1.6 vCPU left after the reserve (SERVER_MAX_CPU=2, SERVER_RESERVE_CPU_PERCENT=20) (or set MAX_REGISTRE_TASKS=0 to switch registre off)",
    );
    expect(parseCapacityConfig({ SERVER_MAX_CPU: "2", MAX_REGISTRE_TASKS: "0" }).profiles.registre.maxTasks).toBe(0);
  });
});
