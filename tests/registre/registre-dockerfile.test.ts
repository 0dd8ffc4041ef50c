/**
 * The registre image cannot be built here (no Docker engine), so what can
 * be checked offline is: it starts the real entry point, runs as a non-root
 * user, installs Chromium, and copies only files the repository has.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { PROJECT_ROOT } from "../../infra/local/paths.ts";

const dockerfile = readFileSync(join(PROJECT_ROOT, "runners", "registre", "Dockerfile"), "utf8");
/** Instructions with their continuation lines joined, comments dropped. */
const instructions = dockerfile
  .replace(/\\\n/g, " ")
  .split("\n")
  .map((line) => line.trim())
  .filter((line) => line !== "" && !line.startsWith("#"));

describe("runners/registre/Dockerfile", () => {
  it("starts the registre runner's entry point, which exists", () => {
    const cmd = instructions.filter((line) => /^(CMD|ENTRYPOINT)\b/.test(line)).at(-1) ?? "";
    const args = JSON.parse(cmd.replace(/^(CMD|ENTRYPOINT)\s+/, "")) as string[];
    const entry = args.find((arg) => arg.endsWith(".ts"));
    expect(entry).toBe("runners/registre/main.ts");
    expect(existsSync(join(PROJECT_ROOT, entry ?? "missing"))).toBe(true);
  });

  it("runs as a user other than root", () => {
    const user = instructions.filter((line) => line.startsWith("USER ")).at(-1)?.slice(5).trim();
    expect(user).toBeDefined();
    expect(["root", "0", "0:0"]).not.toContain(user);
  });

  it("installs Debian's Chromium and points the runner at it", () => {
    expect(instructions.some((line) => line.startsWith("RUN ") && /apt-get install[^&]*\bchromium\b/.test(line))).toBe(true);
    expect(dockerfile).toContain("CHROMIUM_PATH=/usr/bin/chromium");
    expect(dockerfile).toContain("--disable-dev-shm-usage");
  });

  it("copies only files and folders the repository has", () => {
    const copies = instructions.filter((line) => line.startsWith("COPY ") && !line.includes("--from="));
    expect(copies.length).toBeGreaterThan(0);
    for (const copy of copies) {
      const parts = copy.split(/\s+/).slice(1).filter((part) => !part.startsWith("--"));
      for (const source of parts.slice(0, -1)) expect(existsSync(join(PROJECT_ROOT, source)), `${copy}: ${source}`).toBe(true);
    }
    // Every module the entry point imports is inside the copied folders.
    const copied = copies.flatMap((copy) => copy.split(/\s+/).slice(1, -1));
    for (const needed of ["runners", "supabase/functions/_shared", "package.json", "package-lock.json"]) expect(copied).toContain(needed);
  });
});
