import { existsSync, readFileSync } from "node:fs";
import { builtinModules } from "node:module";
import { dirname, join, relative, resolve } from "node:path";
import ts from "typescript";
import { describe, expect, it } from "vitest";
import { RUNNER_FAMILIES, type RunnerFamily } from "../../supabase/functions/_shared/ecs-client.ts";

/**
 * What each runner image needs to start its real entry point, checked
 * offline (there is no Docker engine here): the Dockerfiles infra/tasks.ts
 * builds, read as Docker would, and the entry's import graph walked as Node
 * would, against what the image copies, .dockerignore and `npm ci --omit=dev`.
 */
const root = join(import.meta.dirname, "..", "..");

interface Instruction {
  readonly keyword: string;
  readonly args: string;
}

/** Dockerfile instructions with continuation lines joined and comments dropped. */
function instructions(dockerfile: string): Instruction[] {
  const logical: string[] = [];
  let current = "";
  for (const line of readFileSync(dockerfile, "utf8").split("\n")) {
    if (/^\s*#/.test(line) && current === "") continue;
    const continued = /\\\s*$/.test(line);
    current += `${line.replace(/\\\s*$/, "")} `;
    if (!continued) {
      if (current.trim() !== "") logical.push(current.trim());
      current = "";
    }
  }
  return logical.map((text) => {
    const [keyword = "", ...rest] = text.split(/\s+/);
    return { keyword: keyword.toUpperCase(), args: rest.join(" ") };
  });
}

/** .dockerignore as Docker reads it for these simple patterns: a path, a folder, or `*.ext`. */
function dockerIgnored(): (path: string) => boolean {
  const patterns = readFileSync(join(root, ".dockerignore"), "utf8")
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "" && !line.startsWith("#"));
  return (path) =>
    patterns.some((pattern) =>
      pattern.startsWith("*.") ? path.endsWith(pattern.slice(1)) : path === pattern || path.startsWith(`${pattern}/`),
    );
}

const ignored = dockerIgnored();
const dependencies = Object.keys((JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { dependencies: Record<string, string> }).dependencies);

/** The package a bare specifier names (`@scope/name/sub` → `@scope/name`). */
function packageOf(specifier: string): string {
  const parts = specifier.split("/");
  return specifier.startsWith("@") ? parts.slice(0, 2).join("/") : (parts[0] ?? specifier);
}

/** Every repository file the entry reaches through relative imports, and every package it imports. */
function importGraph(entry: string): { files: string[]; packages: string[] } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const pending = [resolve(root, entry)];
  while (pending.length > 0) {
    const file = pending.pop() as string;
    if (files.has(file)) continue;
    files.add(file);
    const { importedFiles } = ts.preProcessFile(readFileSync(file, "utf8"), true, true);
    for (const { fileName } of importedFiles) {
      if (fileName.startsWith(".")) {
        const target = resolve(dirname(file), fileName);
        const candidates = [target, `${target}.ts`, join(target, "index.ts")];
        const found = candidates.find((candidate) => existsSync(candidate) && candidate.endsWith(".ts"));
        // JSON and other assets are copied with their folder; only TypeScript is followed.
        if (found !== undefined) pending.push(found);
        else if (!existsSync(target)) throw new Error(`${relative(root, file)} imports ${fileName}, which does not exist`);
      } else if (!fileName.startsWith("node:") && !builtinModules.includes(fileName)) {
        packages.add(packageOf(fileName));
      }
    }
  }
  return { files: [...files].map((file) => relative(root, file)).sort(), packages: [...packages].sort() };
}

/** What each image must install for its runner to work, and why. */
const SYSTEM_PACKAGES: Record<RunnerFamily, { apt: string[]; why: string; packages: string[] }> = {
  registre: { apt: ["chromium", "fonts-liberation", "ca-certificates"], why: "Playwright drives Debian's /usr/bin/chromium", packages: ["playwright"] },
  ocr: { apt: ["poppler-utils", "fonts-liberation", "ca-certificates"], why: "pdfinfo and pdftoppm rasterize the PDFs (runners/ocr/pdf-pages.ts)", packages: ["sharp", "@google/genai"] },
};

describe.each(RUNNER_FAMILIES.map((family) => [family]))("the %s runner image", (family) => {
  const dockerfile = join(root, "runners", family, "Dockerfile");
  const steps = instructions(dockerfile);
  const lastStage = steps.slice(steps.map((step) => step.keyword).lastIndexOf("FROM"));
  const cmd = lastStage.filter((step) => step.keyword === "CMD" || step.keyword === "ENTRYPOINT").at(-1);
  const command = cmd ? (JSON.parse(cmd.args) as string[]) : [];
  const entry = command.find((argument) => argument.endsWith(".ts")) ?? "";
  const copied = lastStage
    .filter((step) => step.keyword === "COPY" || step.keyword === "ADD")
    .filter((step) => !step.args.includes("--from="))
    .flatMap((step) => {
      const parts = step.args.split(/\s+/).filter((part) => !part.startsWith("--"));
      return parts.slice(0, -1);
    });

  it("starts the runner's real entry point, a TypeScript file in the repository, in exec form", () => {
    expect(cmd, "a CMD or ENTRYPOINT").toBeDefined();
    expect(cmd?.args.startsWith("[")).toBe(true);
    expect(entry).toBe(`runners/${family}/main.ts`);
    expect(existsSync(join(root, entry))).toBe(true);
    expect(command.slice(0, 3)).toEqual(["node", "--import", "tsx"]);
    expect(dependencies).toContain("tsx");
  });

  it("runs as a user other than root", () => {
    const user = lastStage.filter((step) => step.keyword === "USER").at(-1)?.args;
    expect(user, "a USER instruction").toBeDefined();
    expect(["root", "0", "0:0", "root:root"]).not.toContain(user);
    // USER comes before CMD, so the entry point runs as that user.
    expect(lastStage.findIndex((step) => step.keyword === "USER")).toBeLessThan(lastStage.indexOf(cmd as Instruction));
  });

  it("copies only sources that exist in the repository and that .dockerignore lets into the context", () => {
    expect(copied.length).toBeGreaterThan(0);
    for (const source of copied) {
      expect(existsSync(join(root, source)), `${source} exists`).toBe(true);
      expect(ignored(source), `${source} is not in .dockerignore`).toBe(false);
    }
  });

  it("carries every file the entry imports, and installs every package it imports with npm ci --omit=dev", () => {
    const graph = importGraph(entry);
    expect(graph.files.length).toBeGreaterThan(1);
    expect(graph.packages).toEqual(expect.arrayContaining(SYSTEM_PACKAGES[family].packages));
    const outside = graph.files.filter((file) => !copied.some((source) => file === source || file.startsWith(`${source.replace(/\/$/, "")}/`)) || ignored(file));
    expect(outside, "imported files the image does not contain").toEqual([]);
    expect(graph.packages.filter((name) => !dependencies.includes(name)), "imported packages missing from dependencies").toEqual([]);
    expect(steps.some((step) => step.keyword === "RUN" && /npm ci --omit=dev/.test(step.args))).toBe(true);
  });

  it(`installs its system packages (${SYSTEM_PACKAGES[family].why})`, () => {
    const installs = lastStage.filter((step) => step.keyword === "RUN" && step.args.includes("apt-get install")).map((step) => step.args).join(" ");
    for (const name of SYSTEM_PACKAGES[family].apt) expect(installs.split(/\s+/)).toContain(name);
    for (const other of RUNNER_FAMILIES.filter((candidate) => candidate !== family)) {
      // Each image carries only its own heavy dependency.
      const foreign = SYSTEM_PACKAGES[other].apt.filter((name) => !SYSTEM_PACKAGES[family].apt.includes(name));
      for (const name of foreign) expect(installs.split(/\s+/)).not.toContain(name);
    }
  });

  it("is the Dockerfile the task definition builds, from the repository root", () => {
    const tasks = readFileSync(join(root, "infra", "tasks.ts"), "utf8");
    expect(tasks).toContain(`image: { context: ".", dockerfile: "runners/${family}/Dockerfile" }`);
  });
});

describe("the registre image's browser", () => {
  it("points the runner at the Chromium Debian installs, with the Fargate /dev/shm flag", () => {
    const steps = instructions(join(root, "runners", "registre", "Dockerfile"));
    const env = steps.filter((step) => step.keyword === "ENV").map((step) => step.args).join(" ");
    const configured = /CHROMIUM_PATH=(\S+)/.exec(env)?.[1] ?? "/usr/bin/chromium";
    expect(configured).toBe("/usr/bin/chromium");
    expect(steps.some((step) => step.keyword === "RUN" && step.args.includes("--disable-dev-shm-usage"))).toBe(true);
  });
});
