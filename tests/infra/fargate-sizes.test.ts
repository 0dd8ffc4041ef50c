import { describe, expect, it } from "vitest";
import { parseCapacityConfig } from "../../supabase/functions/_shared/capacity-config.ts";
import { FARGATE_CPU_OPTIONS, fargateSizeCovering } from "../../infra/fargate-sizes.ts";

describe("fargateSizeCovering", () => {
  it("sizes the runner tasks from the default ledger profiles: registre 4 vCPU / 8 GB, OCR 2 vCPU / 4 GB", () => {
    const { profiles } = parseCapacityConfig({});
    expect(fargateSizeCovering(profiles.registre)).toEqual({ cpu: "4 vCPU", memory: "8 GB" });
    // The OCR task serves both OCR kinds, so it covers the larger of the two.
    expect(fargateSizeCovering(profiles["index-ocr"])).toEqual({ cpu: "2 vCPU", memory: "4 GB" });
    expect(fargateSizeCovering(profiles["acte-ocr"])).toEqual({ cpu: "1 vCPU", memory: "2 GB" });
  });

  it.each([
    [{ vcpu: 0.1, ramGb: 0.2 }, { cpu: "0.25 vCPU", memory: "0.5 GB" }],
    [{ vcpu: 1, ramGb: 2 }, { cpu: "1 vCPU", memory: "2 GB" }],
    [{ vcpu: 1, ramGb: 2.5 }, { cpu: "1 vCPU", memory: "3 GB" }],
    // 1 vCPU stops at 8 GB: more memory takes the next CPU up.
    [{ vcpu: 1, ramGb: 9 }, { cpu: "2 vCPU", memory: "9 GB" }],
    [{ vcpu: 0.25, ramGb: 3 }, { cpu: "0.5 vCPU", memory: "3 GB" }],
    // 8 vCPU comes in 4 GB steps.
    [{ vcpu: 5, ramGb: 17 }, { cpu: "8 vCPU", memory: "20 GB" }],
    [{ vcpu: 16, ramGb: 120 }, { cpu: "16 vCPU", memory: "120 GB" }],
  ])("covers %j with %j", (need, size) => {
    expect(fargateSizeCovering(need)).toEqual(size);
  });

  it("only ever answers a pair Fargate accepts, at least as large as asked", () => {
    for (const vcpu of [0.1, 0.25, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 4, 6, 8, 12, 16]) {
      for (const ramGb of [0.25, 0.5, 0.75, 1, 1.5, 3, 7.5, 8, 16, 31, 60, 61, 100]) {
        let size;
        try {
          size = fargateSizeCovering({ vcpu, ramGb });
        } catch {
          continue;
        }
        const option = FARGATE_CPU_OPTIONS.find((candidate) => candidate.cpu === size.cpu);
        const memoryGb = Number.parseFloat(size.memory);
        expect(option?.memoryGb, `${vcpu} vCPU / ${ramGb} GB → ${size.cpu} / ${size.memory}`).toContain(memoryGb);
        expect(option?.vcpu).toBeGreaterThanOrEqual(vcpu);
        expect(memoryGb).toBeGreaterThanOrEqual(ramGb);
      }
    }
  });

  it("refuses a need no Fargate size covers, and a need of nothing", () => {
    expect(() => fargateSizeCovering({ vcpu: 17, ramGb: 1 })).toThrow("no Fargate size covers 17 vCPU / 1 GB");
    expect(() => fargateSizeCovering({ vcpu: 16, ramGb: 121 })).toThrow("no Fargate size covers 16 vCPU / 121 GB");
    expect(() => fargateSizeCovering({ vcpu: 0, ramGb: 1 })).toThrow(RangeError);
  });
});
