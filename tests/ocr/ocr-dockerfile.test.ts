import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { PROJECT_ROOT } from "../../infra/local/paths.ts";

/**
 * The OCR image, checked without a Docker daemon: what it installs, copies,
 * runs and as whom, and that what it copies is enough for the entry to start.
 */
describe("runners/ocr/Dockerfile", () => {
  const read = (path: string) => readFile(join(PROJECT_ROOT, path), "utf8");

  it("installs poppler, copies the runner with its prompts, runs the OCR entry as a non-root user", async () => {
    const dockerfile = await read("runners/ocr/Dockerfile");
    const instructions = dockerfile.split("\n").filter((line) => /^[A-Z]+ /.test(line));
    expect(instructions[0]).toMatch(/^FROM node:26\.\d+\.\d+-bookworm-slim$/);
    expect(dockerfile).toMatch(/apt-get install [^\n]*poppler-utils/);
    expect(dockerfile).toMatch(/npm ci --omit=dev/);
    expect(instructions).toContain("COPY runners runners");
    expect(instructions).toContain("COPY supabase/functions/_shared supabase/functions/_shared");
    const user = instructions.filter((line) => line.startsWith("USER ")).at(-1);
    expect(user).toBeDefined();
    expect(user).not.toMatch(/USER (root|0)\b/);
    expect(instructions.at(-1)).toBe('ENTRYPOINT ["node", "--import", "tsx", "runners/ocr/main.ts"]');
    // The build context keeps runners/ (prompts included) and leaves node_modules to npm ci.
    const ignored = (await read(".dockerignore")).split("\n").map((line) => line.trim());
    expect(ignored).not.toContain("runners");
    expect(ignored).toContain("node_modules");
  });

  it("gets the offline engine and its French model from production dependencies (npm ci --omit=dev installs them)", async () => {
    const manifest = JSON.parse(await read("package.json")) as { dependencies: Record<string, string> };
    for (const name of ["tesseract.js", "@tesseract.js-data/fra", "@tesseract.js-data/eng", "@google/genai", "sharp", "tsx"]) expect(Object.keys(manifest.dependencies)).toContain(name);
  });

  it("starts: the entry the image runs answers --help", async () => {
    const { stdout } = await promisify(execFile)(join(PROJECT_ROOT, "node_modules", ".bin", "tsx"), [join(PROJECT_ROOT, "runners", "ocr", "main.ts"), "--help"], { cwd: PROJECT_ROOT });
    expect(stdout).toContain("The OCR runner");
    expect(stdout).toContain("OCR_PAGE_CONCURRENCY");
  });
});
