/**
 * infra:check's work, shared by the command (scripts/infra-check.ts) and the
 * test that keeps it green (tests/infra/infra-check.test.ts): install SST's
 * platform if `.sst/` lacks it, type-check the infrastructure against it,
 * evaluate `run()` for a stage under Pulumi's mocks, summarize what it
 * registered and check the rules.
 *
 * Plain TypeScript without SST globals.
 */
import { buildMockedProgram, evaluateAppConfig } from "./mocked-evaluation.ts";
import { checkDatabaseTls, type DatabaseTlsSummary } from "./database-tls-rules.ts";
import { checkImage, pinnedNodeVersion, summarizeImage, type ImageSummary } from "./image-rules.ts";
import { checkInfra } from "./infra-rules.ts";
import { checkRunTaskGuards, type RunTaskGuards } from "./run-task-rules.ts";
import { checkSpotFallback, type SpotFallbackSummary } from "./spot-fallback-rules.ts";
import { summarizeInfra, type InfraSummary } from "./infra-summary.ts";
import { ensureSstPlatform, sstPlatformPaths } from "./sst-platform.ts";
import { typecheckInfra } from "./typecheck-infra.ts";

export interface InfraCheckReport extends InfraSummary {
  readonly ok: boolean;
  readonly platform: { readonly installed: boolean; readonly reason?: string };
  readonly typeErrors: string[];
  readonly typecheckCached: boolean;
  readonly problems: string[];
  /** The Node version package.json pins for the suite (devDependencies.node). */
  readonly suiteNode: string | undefined;
  /** Each runner family's image as its Dockerfile says: Node version, ENTRYPOINT. */
  readonly images: readonly (ImageSummary & { readonly family: string })[];
  /** TLS on the runners' database URLs: root certificate per task, the shell's URL's mode. */
  readonly databaseTls: DatabaseTlsSummary;
  /** Families on Fargate Spot and their on-demand fallback. */
  readonly spotFallback: SpotFallbackSummary;
  /** What a RunTask by the dispatch key may ask for: sizes, capacity providers, no ECS Exec. */
  readonly runTaskGuards: RunTaskGuards;
}

/** The provider versions `app()` pins (`providers: { aws: { version } }`), for the install's staleness check. */
function pinnedProviders(providers: Record<string, unknown> | undefined): Record<string, string> {
  const pinned: Record<string, string> = {};
  for (const [name, settings] of Object.entries(providers ?? {})) {
    if (typeof settings === "object" && settings !== null && "version" in settings && typeof settings.version === "string") pinned[name] = settings.version;
  }
  return pinned;
}

export async function runInfraCheck(options: {
  root: string;
  stage: string;
  env?: NodeJS.ProcessEnv;
  progress?: (line: string) => void;
}): Promise<InfraCheckReport> {
  const progress = options.progress ?? (() => {});
  const env = options.env ?? process.env;
  const paths = sstPlatformPaths(options.root);

  progress("reading app() of sst.config.ts");
  const app = await evaluateAppConfig(paths, options.stage);
  const pinned = pinnedProviders(app.providers);
  if (Object.keys(pinned).length === 0) throw new Error("sst.config.ts pins no provider version (providers.aws.version), so `sst install` would take the latest");

  progress("installing SST's platform in .sst/platform (skipped when current)");
  const platform = await ensureSstPlatform(paths, options.stage, pinned);
  progress(platform.installed ? `installed SST's platform (${platform.reason})` : "SST's platform is current");

  progress(`evaluating run() for stage ${options.stage} under Pulumi's mocks, and type-checking sst.config.ts and infra/*.ts`);
  const program = await buildMockedProgram(paths, options.stage);
  // The evaluation runs in a child process, so the (synchronous) type check overlaps it.
  const evaluation = program.run(env);
  const types = typecheckInfra(paths);
  progress(types.cached ? "type check: unchanged since the last clean check" : `type check: ${types.errors.length} error(s)`);
  const result = await evaluation;
  progress(`evaluated: ${result.resources.length} resources registered`);

  const summary = summarizeInfra(result, options.root);
  const problems = checkInfra(summary, { root: options.root, env });
  const suiteNode = pinnedNodeVersion(options.root);
  const images = summary.tasks.flatMap((task) => (task.runnerFamily === undefined ? [] : [{ family: task.runnerFamily, ...summarizeImage(options.root, task.dockerfile) }]));
  for (const image of images) checkImage(image.family, image, suiteNode, problems);
  const databaseTls = checkDatabaseTls(summary.tasks, env, problems);
  const spotFallback = checkSpotFallback(summary, problems);
  const runTaskGuards = checkRunTaskGuards(summary, problems);
  return { ok: types.errors.length === 0 && problems.length === 0, platform, typeErrors: types.errors, typecheckCached: types.cached, problems, suiteNode, images, databaseTls, spotFallback, runTaskGuards, ...summary };
}
