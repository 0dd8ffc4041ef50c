// Reads the checkout's TypeScript sources and their relative imports, for the structure checks (issue 21): sizes, imports of the local stack, circles.
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import ts from "typescript";

/** The house's size rule: no source file over this many lines. */
export const MAX_SOURCE_LINES = 400;

/**
 * Folders never walked: installed packages and coverage output. Every folder
 * whose name starts with a dot is skipped too (git's, the stack's state in
 * .local, SST's .sst, the Supabase CLI's .temp).
 */
const SKIPPED_FOLDERS = new Set(["node_modules", "coverage"]);

/** A generated file says so near its top (house style: "Generated files say DO NOT EDIT"). */
const GENERATED_MARKERS = ["DO NOT EDIT", "@generated"];

export interface SourceFile {
  /** Relative to the root, with forward slashes. */
  readonly path: string;
  readonly lines: number;
  readonly generated: boolean;
  /** Every module specifier the file names: static and dynamic imports, `import type`, `export … from`. */
  readonly specifiers: readonly string[];
  /** The specifiers that resolve to a .ts file inside the root, as root-relative paths. */
  readonly imports: readonly string[];
}

/** Every .ts file under `root`, read once. */
export function readSourceTree(root: string): SourceFile[] {
  const files: SourceFile[] = [];
  for (const relative of walk(root, "")) {
    const text = readFileSync(path.join(root, relative), "utf8");
    // TypeScript's own scanner: comments and strings are not imports; `true, true` adds `import()` and `require()`.
    const specifiers = ts.preProcessFile(text, true, true).importedFiles.map((file) => file.fileName);
    files.push({
      path: relative,
      lines: lineCount(text),
      generated: GENERATED_MARKERS.some((marker) => text.split("\n", 5).join("\n").includes(marker)),
      specifiers,
      imports: specifiers.flatMap((specifier) => {
        const target = resolveRelative(root, relative, specifier);
        return target === undefined ? [] : [target];
      }),
    });
  }
  return files.sort((a, b) => (a.path < b.path ? -1 : 1));
}

/** Lines as `wc -l` counts them for a file ending in a newline, and one more when the last line has none. */
export function lineCount(text: string): number {
  if (text.length === 0) return 0;
  const breaks = text.split("\n").length - 1;
  return text.endsWith("\n") ? breaks : breaks + 1;
}

/** Non-generated files over the limit, SQL migrations aside (they are .sql, never walked), minus the named exceptions. */
export function oversizedFiles(files: readonly SourceFile[], allowed: ReadonlySet<string> = new Set()): SourceFile[] {
  return files.filter((file) => !file.generated && file.lines > MAX_SOURCE_LINES && !allowed.has(file.path));
}

/** `from → to` for every import of the local stack (infra/local/) by a file under runners/. */
export function runnerImportsOfLocalStack(files: readonly SourceFile[]): string[] {
  const found: string[] = [];
  for (const file of files.filter((f) => f.path.startsWith("runners/"))) {
    for (const target of file.imports) if (target.startsWith("infra/local/")) found.push(`${file.path} → ${target}`);
    // A path alias or a package-style specifier would not resolve above; its text still names the folder.
    for (const specifier of file.specifiers) {
      if (!specifier.startsWith(".") && specifier.includes("infra/local/")) found.push(`${file.path} → ${specifier}`);
    }
  }
  return found;
}

/**
 * The import circles among the files whose path starts with one of
 * `folders` (type-only imports count: they tie the files' meaning as much),
 * each as one concrete path `a → b → … → a`, one per strongly connected group.
 */
export function importCircles(files: readonly SourceFile[], folders: readonly string[]): string[][] {
  const inScope = (p: string) => folders.some((folder) => (folder.endsWith("/") ? p.startsWith(folder) : p === folder));
  const graph = new Map<string, string[]>();
  for (const file of files) if (inScope(file.path)) graph.set(file.path, []);
  for (const file of files) {
    const edges = graph.get(file.path);
    if (edges !== undefined) edges.push(...new Set(file.imports.filter((target) => graph.has(target))));
  }
  return stronglyConnected(graph)
    .filter((group) => group.length > 1 || (graph.get(group[0] ?? "") ?? []).includes(group[0] ?? ""))
    .map((group) => circleThrough(graph, new Set(group)))
    .sort((a, b) => ((a[0] ?? "") < (b[0] ?? "") ? -1 : 1));
}

function* walk(root: string, relative: string): Generator<string> {
  const entries = readdirSync(path.join(root, relative), { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1));
  for (const entry of entries) {
    const child = relative === "" ? entry.name : `${relative}/${entry.name}`;
    if (entry.isDirectory()) {
      if (entry.name.startsWith(".") || SKIPPED_FOLDERS.has(entry.name)) continue;
      yield* walk(root, child);
    } else if (entry.isFile() && entry.name.endsWith(".ts")) {
      yield child;
    }
  }
}

/** `./x.ts`, `../y` (→ y.ts or y/index.ts), `./z.js` (→ z.ts); anything not relative or not a .ts file in the root is undefined. */
function resolveRelative(root: string, from: string, specifier: string): string | undefined {
  if (!specifier.startsWith("./") && !specifier.startsWith("../")) return undefined;
  const base = path.posix.normalize(path.posix.join(path.posix.dirname(from), specifier));
  if (base.startsWith("../")) return undefined;
  const candidates = [base, `${base}.ts`, `${base}/index.ts`, base.replace(/\.js$/, ".ts")];
  for (const candidate of candidates) {
    if (!candidate.endsWith(".ts")) continue;
    const absolute = path.join(root, candidate);
    if (existsSync(absolute) && statSync(absolute).isFile()) return candidate;
  }
  return undefined;
}

/** Tarjan's algorithm, iterative enough for a few hundred files (recursion depth is the longest import chain). */
function stronglyConnected(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const groups: string[][] = [];
  const visit = (node: string): void => {
    index.set(node, counter);
    low.set(node, counter);
    counter += 1;
    stack.push(node);
    onStack.add(node);
    for (const next of graph.get(node) ?? []) {
      if (!index.has(next)) {
        visit(next);
        low.set(node, Math.min(low.get(node) ?? 0, low.get(next) ?? 0));
      } else if (onStack.has(next)) {
        low.set(node, Math.min(low.get(node) ?? 0, index.get(next) ?? 0));
      }
    }
    if (low.get(node) === index.get(node)) {
      const group: string[] = [];
      let member: string | undefined;
      do {
        member = stack.pop();
        if (member === undefined) break;
        onStack.delete(member);
        group.push(member);
      } while (member !== node);
      groups.push(group.sort());
    }
  };
  for (const node of [...graph.keys()].sort()) if (!index.has(node)) visit(node);
  return groups;
}

/** One circle inside a strongly connected group, from its first file back to it (breadth-first, so the shortest). */
function circleThrough(graph: ReadonlyMap<string, readonly string[]>, group: ReadonlySet<string>): string[] {
  const start = [...group].sort()[0] ?? "";
  const cameFrom = new Map<string, string>();
  const queue = [start];
  while (queue.length > 0) {
    const node = queue.shift() ?? start;
    for (const next of graph.get(node) ?? []) {
      if (!group.has(next)) continue;
      if (next === start) {
        const circle = [start];
        for (let at: string | undefined = node; at !== undefined && at !== start; at = cameFrom.get(at)) circle.splice(1, 0, at);
        return [...circle, start];
      }
      if (!cameFrom.has(next)) {
        cameFrom.set(next, node);
        queue.push(next);
      }
    }
  }
  return [...group];
}
