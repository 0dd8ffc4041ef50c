// The README's "Where things live" names only what is in the tree (issue 21's check), and the check catches a stale entry.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { mapLines, missingFromMap } from "./readme-map.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

describe("the README's map", () => {
  const readme = readFileSync(path.join(ROOT, "README.md"), "utf8");

  it("is found (a missing map would pass everything)", () => {
    expect(mapLines(readme).length).toBeGreaterThan(30);
  });

  it("names only folders and files that exist", () => {
    expect(missingFromMap(readme, ROOT)).toEqual([]);
  });
});

describe("the map check, on a made-up tree", () => {
  const root = mkdtempSync(path.join(tmpdir(), "readme-map-"));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  for (const file of ["a/kept.ts", "a/deep/named.ts", "m/0001_create_x.sql", "r/one/Dockerfile", "r/two/Dockerfile", "b/x.ts", "top.ts"]) {
    mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
    writeFileSync(path.join(root, file), "");
  }
  const readme = (map: string) => `# x\n\n## Where things live\n\n\`\`\`\n${map}\n\`\`\`\n\n## Next\n\n\`\`\`\nghost/  not the map\n\`\`\`\n`;
  const pad = (name: string) => name.padEnd(30);

  it("accepts entries that exist: folders, files, braces, globs, …suffixes, files named in descriptions", () => {
    const map = [
      `${pad("a/")}a folder (named.ts, kept.ts)`,
      `${pad("  kept.ts")}a file`,
      `${pad("m/")}migrations`,
      `${pad("  …_create_x.sql")}one of them`,
      `${pad("r/{one,two}/")}two folders`,
      `${pad("b/*.ts, top.ts")}a glob and a file`,
      `${" ".repeat(30)}continued, naming x.ts`,
    ].join("\n");
    expect(missingFromMap(readme(map), root)).toEqual([]);
  });

  it("names each stale entry", () => {
    const map = [
      `${pad("a/")}a folder (gone.ts)`,
      `${pad("  moved.ts")}a file no longer here`,
      `${pad("m/")}migrations`,
      `${pad("  …_create_y.sql")}none ends so`,
      `${pad("r/{one,three}/")}one of two gone`,
      `${pad("c/*.ts")}no such folder`,
    ].join("\n");
    expect(missingFromMap(readme(map), root)).toEqual([
      "gone.ts (named in the description of a/)",
      "a/moved.ts (under a/)",
      "m/…_create_y.sql (under m/)",
      "r/three/ (a top-level entry)",
      "c/*.ts (a top-level entry)",
    ]);
  });
});
