// Reads the README's "Where things live" map and names each entry that is not in the tree (issue 21: the map matches the tree).
import { existsSync, readdirSync } from "node:fs";
import path from "node:path";

/** Where the map sits: the fenced block right after this heading. */
const HEADING = "## Where things live";
/** Where the descriptions start: the map is two aligned columns. */
const DESCRIPTION_COLUMN = 30;
/** A file named inside a description, e.g. "(document-storage.ts)". */
const MENTIONED_FILE = /[\w.-]+\.(?:ts|sql|md)\b/g;

/** The map's lines, without its fences; empty when the README has no such section. */
export function mapLines(readme: string): string[] {
  const start = readme.indexOf(HEADING);
  if (start < 0) return [];
  const open = readme.indexOf("```\n", start);
  const close = readme.indexOf("\n```", open + 4);
  if (open < 0 || close < 0) return [];
  return readme.slice(open + 4, close).split("\n");
}

/**
 * Every entry of the map absent from `root`, as a sentence. A line at the
 * left edge names folders or files (`a/, b.ts`; `{x,y}` and `*` expand);
 * a line indented by two names an entry of the last folder (`…suffix`
 * matches a file ending so); deeper indents continue a description. Files
 * named in a description must exist somewhere under the line's folder.
 */
export function missingFromMap(readme: string, root: string): string[] {
  const missing: string[] = [];
  let folder = "";
  for (const line of mapLines(readme)) {
    if (line.trim().length === 0) continue;
    const { name, description } = splitEntry(line);
    if (!line.startsWith(" ")) {
      const paths = name.split(/,\s+/).flatMap(expandBraces);
      for (const entry of paths) if (!exists(root, entry)) missing.push(`${entry} (a top-level entry)`);
      folder = paths[0]?.endsWith("/") ? (paths[0] ?? "") : path.posix.dirname(paths[0] ?? ".") + "/";
      checkMentions(root, folder, description, missing);
    } else if (/^ {2}\S/.test(line)) {
      const entry = `${folder}${name}`;
      if (!exists(root, entry)) missing.push(`${entry} (under ${folder})`);
      checkMentions(root, folder, description, missing);
    } else {
      checkMentions(root, folder, line, missing);
    }
  }
  return missing;
}

/** Names fill the first DESCRIPTION_COLUMN characters; a longer name ends at the first run of two spaces. */
function splitEntry(line: string): { name: string; description: string } {
  if (line.length > DESCRIPTION_COLUMN && line[DESCRIPTION_COLUMN - 1] === " ") {
    return { name: line.slice(0, DESCRIPTION_COLUMN).trim(), description: line.slice(DESCRIPTION_COLUMN) };
  }
  const [name = "", ...rest] = line.trim().split(/\s{2,}/);
  return { name, description: rest.join("  ") };
}

function checkMentions(root: string, folder: string, text: string, missing: string[]): void {
  for (const mention of text.match(MENTIONED_FILE) ?? []) {
    if (!containsFileNamed(path.join(root, folder), mention)) missing.push(`${mention} (named in the description of ${folder})`);
  }
}

/** `runners/{registre,ocr}/` → both folders. */
function expandBraces(entry: string): string[] {
  const match = /^(.*)\{([^}]*)\}(.*)$/.exec(entry);
  if (!match) return [entry];
  const [, before = "", choices = "", after = ""] = match;
  return choices.split(",").flatMap((choice) => expandBraces(`${before}${choice}${after}`));
}

/** A plain path, a `*` in the last part (at least one match), or `…suffix` (a file in the folder ending so). */
function exists(root: string, entry: string): boolean {
  const clean = entry.replace(/\/$/, "");
  const base = path.posix.basename(clean);
  const dir = path.join(root, path.posix.dirname(clean));
  if (base.startsWith("…") || base.includes("*")) {
    if (!existsSync(dir)) return false;
    const pattern = new RegExp(`^${base.replace(/^…/, "*").split("*").map((part) => part.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join(".*")}$`);
    return readdirSync(dir).some((name) => pattern.test(name));
  }
  return existsSync(path.join(root, clean));
}

function containsFileNamed(dir: string, name: string): boolean {
  if (!existsSync(dir)) return false;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isFile() && entry.name === name) return true;
    if (entry.isDirectory() && entry.name !== "node_modules" && !entry.name.startsWith(".") && containsFileNamed(path.join(dir, entry.name), name)) return true;
  }
  return false;
}
