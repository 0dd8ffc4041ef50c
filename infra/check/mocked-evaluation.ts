/**
 * Evaluates `run()` of sst.config.ts for one stage the way `sst deploy` would
 * build it, but against Pulumi's runtime mocks (mocked-stack.ts) instead of
 * the engine and AWS.
 *
 * The build copies what the SST CLI does before a deploy: esbuild bundles
 * sst.config.ts with `$app`, `$cli` and `$dev` defined, SST's shim injected
 * (`$config`, `$interpolate`, …) and `aws` / `sst` bound to the provider and
 * the components, into `.sst/platform/` so the `@pulumi/*` packages resolve
 * from the platform's node_modules. The bundle runs in a child process: the
 * mocks are process-wide state.
 *
 * Plain TypeScript without SST globals: the tests import it directly.
 */
import { spawn } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { build, type BuildOptions } from "esbuild";
import type { SstPlatformPaths } from "./sst-platform.ts";

/** What the child prints before its result, so stray log lines cannot be mistaken for it. */
const RESULT_MARKER = "INFRA_CHECK_RESULT ";

export interface RecordedResource {
  readonly type: string;
  readonly name: string;
  readonly inputs: Record<string, unknown>;
  readonly state: Record<string, unknown>;
}

/** What mocked-stack.ts returns (the same shape; this side is plain TypeScript). */
export interface MockedStackResult {
  readonly stage: string;
  readonly region: string;
  readonly resources: RecordedResource[];
  readonly invokes: string[];
  readonly secrets: string[];
  readonly outputs: Record<string, unknown>;
}

interface AppConfig {
  name: string;
  removal?: string;
  home: string;
  providers?: Record<string, unknown>;
  protect?: boolean;
}

const SHARED_BUILD: BuildOptions = {
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  write: true,
  logLevel: "silent",
  mainFields: ["module", "main"],
  // The platform's packages stay where `sst install` put them, as for a deploy.
  external: ["@pulumi/*", "@aws-sdk/*", "@smithy/*", "esbuild", "archiver", "glob", "prettier", "typescript", "ts-node", "undici"],
  banner: { js: "import { createRequire as topLevelCreateRequire } from 'module';\nconst require = topLevelCreateRequire(import.meta.url);" },
};

/** `app()` of sst.config.ts for `stage`, evaluated alone as the CLI does before anything else. */
export async function evaluateAppConfig(paths: SstPlatformPaths, stage: string): Promise<AppConfig> {
  const workDir = join(paths.platform, "infra-check");
  mkdirSync(workDir, { recursive: true });
  const shim = join(workDir, "config-shim.mjs");
  writeFileSync(shim, "export const $config = (config) => config;\n");
  const outfile = join(paths.platform, `infra-check.app.${process.pid}.mjs`);
  try {
    await build({ ...SHARED_BUILD, entryPoints: [join(paths.root, "sst.config.ts")], inject: [shim], outfile });
    const module = (await import(`${pathToFileURL(outfile).href}?${Date.now()}`)) as { default: { app(input: { stage: string }): AppConfig } };
    return module.default.app({ stage });
  } finally {
    rmSync(outfile, { force: true });
  }
}

/** Bundles and runs `run()` under the mocks; resolves to everything it registered. */
export async function evaluateStageMocked(paths: SstPlatformPaths, stage: string, env: NodeJS.ProcessEnv = process.env): Promise<MockedStackResult> {
  const program = await buildMockedProgram(paths, stage);
  return program.run(env);
}

/**
 * Builds the bundle; `run` starts it at once in a child process (so the
 * caller may do synchronous work meanwhile) and removes it when done.
 */
export async function buildMockedProgram(paths: SstPlatformPaths, stage: string): Promise<{ run(env: NodeJS.ProcessEnv): Promise<MockedStackResult> }> {
  const app = await evaluateAppConfig(paths, stage);
  const region = regionOf(app);
  const outfile = join(paths.platform, `infra-check.${stage}.${process.pid}.${Date.now()}.mjs`);
  const appDefine = { ...app, stage, protect: app.protect ?? false };
  const cliDefine = {
    command: "deploy",
    dev: false,
    paths: { home: join(homedir(), ".config", "sst"), root: paths.root, work: join(paths.root, ".sst"), platform: paths.platform },
    state: { version: {} },
  };
  try {
    await build({
      ...SHARED_BUILD,
      stdin: {
        contents: [
          `import * as aws from "@pulumi/aws";`,
          `import * as sst from ${JSON.stringify(join(paths.platform, "src", "components"))};`,
          `import { startMockedStack } from ${JSON.stringify(join(paths.root, "infra", "check", "mocked-stack.ts"))};`,
          // The CLI binds these two globals for the program (the shim binds the `$` ones).
          `globalThis.aws = aws;`,
          `globalThis.sst = sst;`,
          `const { run } = await import(${JSON.stringify(join(paths.platform, "src", "auto", "run.ts"))});`,
          `const { default: mod } = await import(${JSON.stringify(join(paths.root, "sst.config.ts"))});`,
          `const stack = await startMockedStack(${JSON.stringify({ project: app.name, stage, region })});`,
          `const result = await stack.evaluate(() => run(mod.run));`,
          `process.stdout.write("\\n" + ${JSON.stringify(RESULT_MARKER)} + JSON.stringify(result) + "\\n");`,
        ].join("\n"),
        resolveDir: paths.root,
        sourcefile: "infra-check-eval.ts",
        loader: "ts",
      },
      define: { $app: JSON.stringify(appDefine), $cli: JSON.stringify(cliDefine), $dev: "false" },
      inject: [join(paths.platform, "src", "shim", "run.js")],
      nodePaths: [join(paths.platform, "node_modules")],
      outfile,
    });
  } catch (error) {
    rmSync(outfile, { force: true });
    throw error;
  }
  return {
    async run(env) {
      try {
        const output = await runNode(outfile, paths.root, {
          ...env,
          // What the SST CLI sets for a deploy; nothing here reaches AWS.
          SST_AWS_REGION: region,
          PULUMI_CONFIG_PASSPHRASE: "",
          NODE_OPTIONS: "--enable-source-maps --no-deprecation --no-warnings",
        });
        const line = output.stdout.split("\n").find((candidate) => candidate.startsWith(RESULT_MARKER));
        if (line === undefined) throw new Error(`the mocked evaluation printed no result:\n${output.stdout}\n${output.stderr}`.trim());
        return JSON.parse(line.slice(RESULT_MARKER.length)) as MockedStackResult;
      } finally {
        rmSync(outfile, { force: true });
      }
    },
  };
}

function regionOf(app: AppConfig): string {
  const aws = app.providers?.aws;
  if (typeof aws === "object" && aws !== null && "region" in aws && typeof aws.region === "string") return aws.region;
  throw new Error("sst.config.ts must set providers.aws.region");
}

function runNode(file: string, cwd: string, env: NodeJS.ProcessEnv): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [file], { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.on("error", reject);
    child.on("close", (code) => {
      if (code === 0) resolve({ stdout, stderr });
      else reject(new Error(`the mocked evaluation of sst.config.ts failed (exit ${code}):\n${stderr.trim() || stdout.trim()}`));
    });
  });
}
