import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { checkImage, pinnedNodeVersion, summarizeImage } from "../../infra/check/image-rules.ts";

const root = join(import.meta.dirname, "..", "..");

/** A Dockerfile in a scratch folder, summarized as infra:check reads it. */
function image(text: string) {
  const folder = mkdtempSync(join(tmpdir(), "image-rules-"));
  writeFileSync(join(folder, "Dockerfile"), text);
  return summarizeImage(folder, "Dockerfile");
}

function problemsOf(text: string, pinned = "26.10.0"): string[] {
  const problems: string[] = [];
  checkImage("ocr", image(text), pinned, problems);
  return problems;
}

const GOOD = 'FROM node:26.10.0-bookworm-slim\nRUN mkdir -p /etc/registre-extraction && echo x > /etc/registre-extraction/production-image\nUSER node\nENTRYPOINT ["node", "--import", "tsx", "runners/ocr/main.ts"]\n';

describe("infra:check's image rules", () => {
  it("pass both runner Dockerfiles of the repository against package.json's pinned Node", () => {
    const pinned = pinnedNodeVersion(root);
    expect(pinned).toMatch(/^26\.\d+\.\d+$/);
    for (const family of ["registre", "ocr"]) {
      const problems: string[] = [];
      const summary = summarizeImage(root, `runners/${family}/Dockerfile`);
      checkImage(family, summary, pinned, problems);
      expect(problems).toEqual([]);
      expect(summary.nodeVersion).toBe(pinned);
      expect(summary.entrypoint).toEqual(["node", "--import", "tsx", `runners/${family}/main.ts`]);
    }
  });

  it("accept an image on the suite's Node started by ENTRYPOINT", () => {
    expect(problemsOf(GOOD)).toEqual([]);
  });

  it.each<[string, string, RegExp]>([
    ["Node 20 (past its end of life)", GOOD.replace("26.10.0", "20.19.0"), /runs Node 20\.19\.0, the suite runs on 26\.10\.0/],
    ["a floating major tag", GOOD.replace("26.10.0-bookworm-slim", "26-bookworm-slim"), /official node:<x\.y\.z>/],
    ["another base image", GOOD.replace("node:26.10.0-bookworm-slim", "debian:bookworm-slim"), /official node:<x\.y\.z>/],
    ["CMD instead of ENTRYPOINT", GOOD.replace("ENTRYPOINT", "CMD"), /no ENTRYPOINT in exec form[\s\S]*has a CMD/],
    ["ENTRYPOINT in shell form", GOOD.replace(/ENTRYPOINT .*/, "ENTRYPOINT node --import tsx runners/ocr/main.ts"), /no ENTRYPOINT in exec form/],
    ["a shell as entry point", GOOD.replace(/ENTRYPOINT .*/, 'ENTRYPOINT ["sh", "-c"]'), /does not start the runner/],
    ["a CMD after the ENTRYPOINT", `${GOOD}CMD ["--help"]\n`, /has a CMD/],
    ["no production marker", GOOD.replace(/RUN .*\n/, ""), /does not write \/etc\/registre-extraction\/production-image/],
  ])("refuse %s", (_name, text, message) => {
    expect(problemsOf(text).join("\n")).toMatch(message);
  });

  it("refuse a package.json that pins no exact Node", () => {
    const problems: string[] = [];
    checkImage("ocr", image(GOOD), undefined, problems);
    expect(problems.join("\n")).toMatch(/pins no exact Node version/);
  });
});
