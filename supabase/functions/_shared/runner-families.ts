// The runner families: one container image and one task definition each, and which family runs a job kind.
import type { JobKind } from "./job-kinds.ts";

/** One container image (and one task definition) per runner family. */
export const RUNNER_FAMILIES = ["registre", "ocr"] as const;
export type RunnerFamily = (typeof RUNNER_FAMILIES)[number];

/** index-ocr and acte-ocr share the OCR image; only JOB_KIND tells them apart. */
export function runnerFamilyFor(kind: JobKind): RunnerFamily {
  switch (kind) {
    case "registre":
      return "registre";
    case "index-ocr":
    case "acte-ocr":
      return "ocr";
  }
}
