/**
 * Type-checks sst.config.ts and infra/*.ts against the types `sst install`
 * generated in `.sst/platform` (the `$config`, `sst`, `aws` and `$` globals
 * and the component arguments), which the project's own tsc cannot see:
 * `npm run typecheck` leaves these files out because a fresh clone has no
 * `.sst/`. Also checks infra/check/mocked-stack.ts, which imports the
 * platform's @pulumi/pulumi.
 *
 * Plain TypeScript without SST globals: the scripts and tests import it.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import ts from "typescript";
import type { SstPlatformPaths } from "./sst-platform.ts";

export interface TypecheckResult {
  readonly files: string[];
  /** tsc's messages, one per diagnostic, with file:line:column. */
  readonly errors: string[];
}

export function infraSourceFiles(root: string): string[] {
  const infra = join(root, "infra");
  const components = readdirSync(infra)
    .filter((name) => name.endsWith(".ts"))
    .map((name) => join(infra, name));
  return [join(root, "sst.config.ts"), ...components, join(infra, "check", "mocked-stack.ts")];
}

/**
 * Everything a result depends on that can change in the repository: the
 * infrastructure files and the shared code they import, the platform's
 * version and the compiler's. The platform and node_modules only change with
 * those versions.
 */
function cacheKey(paths: SstPlatformPaths, files: readonly string[]): string {
  const hash = createHash("sha256");
  hash.update(`typescript ${ts.version}\n`);
  hash.update(readFileSync(join(paths.platform, "version")));
  const shared = join(paths.root, "supabase", "functions", "_shared");
  const sharedFiles = readdirSync(shared)
    .filter((name) => name.endsWith(".ts"))
    .sort()
    .map((name) => join(shared, name));
  for (const file of [...files, ...sharedFiles]) {
    hash.update(`\n${relative(paths.root, file)}\n`);
    hash.update(readFileSync(file));
  }
  return hash.digest("hex");
}

/**
 * Type-checks unless the same files already passed (the check takes most of
 * infra:check's time: @pulumi/aws's types are large). Only a clean result is
 * remembered, in `.sst/infra-check/typecheck.json`.
 */
export function typecheckInfra(paths: SstPlatformPaths): TypecheckResult & { cached: boolean } {
  const files = infraSourceFiles(paths.root);
  const cacheFile = join(paths.platform, "infra-check", "typecheck.json");
  const key = cacheKey(paths, files);
  if (existsSync(cacheFile) && (JSON.parse(readFileSync(cacheFile, "utf8")) as { key?: unknown }).key === key) {
    return { files: files.map((file) => relative(paths.root, file)), errors: [], cached: true };
  }
  const result = typecheckFiles(paths, files);
  if (result.errors.length === 0) {
    mkdirSync(dirname(cacheFile), { recursive: true });
    writeFileSync(cacheFile, JSON.stringify({ key }));
  }
  return { ...result, cached: false };
}

function typecheckFiles(paths: SstPlatformPaths, files: string[]): TypecheckResult {
  const options: ts.CompilerOptions = {
    target: ts.ScriptTarget.ES2022,
    lib: ["lib.es2023.d.ts", "lib.dom.d.ts"],
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    allowImportingTsExtensions: true,
    noEmit: true,
    strict: true,
    noUncheckedIndexedAccess: true,
    noImplicitOverride: true,
    skipLibCheck: true,
    esModuleInterop: true,
    isolatedModules: true,
    types: ["node"],
    baseUrl: paths.root,
    // mocked-stack.ts imports the Pulumi SDK the platform installed.
    paths: { "@pulumi/*": [relative(paths.root, join(paths.platform, "node_modules", "@pulumi", "*"))] },
  };
  const program = ts.createProgram(files, options);
  // Only our files: SST's component sources are TypeScript too, written for
  // looser settings, and checking only what our files use is much faster.
  const ours = files.map((file) => program.getSourceFile(file)).filter((file): file is ts.SourceFile => file !== undefined);
  const diagnostics = [
    ...program.getOptionsDiagnostics(),
    ...program.getGlobalDiagnostics(),
    ...ours.flatMap((file) => [...program.getSyntacticDiagnostics(file), ...program.getSemanticDiagnostics(file)]),
  ];
  if (ours.length !== files.length) throw new Error("the TypeScript program is missing some of the infrastructure files");
  const errors = diagnostics.map((diagnostic) => {
    const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, "\n");
    if (diagnostic.file === undefined || diagnostic.start === undefined) return message;
    const { line, character } = diagnostic.file.getLineAndCharacterOfPosition(diagnostic.start);
    return `${relative(paths.root, diagnostic.file.fileName)}:${line + 1}:${character + 1}: ${message}`;
  });
  return { files: files.map((file) => relative(paths.root, file)), errors };
}
