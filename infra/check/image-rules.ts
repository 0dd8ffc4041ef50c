/**
 * infra:check's rules on the runner images themselves, read from the
 * Dockerfiles the task definitions build (no Docker engine needed):
 *
 * - Node: the base image is the official `node:<x.y.z>-…` image at exactly
 *   the version package.json pins for the test suite (devDependencies.node),
 *   inside package.json's `engines.node`, so what runs in AWS is what the
 *   suite ran on. Node 20 reached its end of life on 2026-04-30; 26 is the
 *   Active LTS line (https://github.com/nodejs/Release, release schedule).
 * - Production marker: a RUN writes PRODUCTION_MARKER, so the runner ignores
 *   endpoint overrides (runners/lifecycle/production-endpoints.ts).
 * - Entry point: the runner starts from ENTRYPOINT in exec form with no CMD
 *   after it, so a RunTask `command` override can only append arguments and
 *   never replace the program (issue 19 item 3; RunTask offers no IAM
 *   condition key on container overrides, see dispatch-access.ts).
 *
 * Plain TypeScript without SST globals: the scripts and tests import it.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { PRODUCTION_MARKER } from "../../runners/lifecycle/production-endpoints.ts";

export interface ImageSummary {
  readonly dockerfile: string;
  /** The `node:` tag's version, e.g. "26.10.0"; undefined when the base is not the official image at a full version. */
  readonly nodeVersion: string | undefined;
  /** ENTRYPOINT in exec form, or undefined. */
  readonly entrypoint: readonly string[] | undefined;
  /** Whether a CMD follows the last FROM (it would become the runner's arguments). */
  readonly hasCmd: boolean;
  /** Whether a RUN writes the production marker the runner checks (production-endpoints.ts). */
  readonly writesProductionMarker: boolean;
}

interface Instruction {
  readonly keyword: string;
  readonly args: string;
}

/** Dockerfile instructions with continuation lines joined and comments dropped. */
function instructions(text: string): Instruction[] {
  const logical: string[] = [];
  let current = "";
  for (const line of text.split("\n")) {
    if (/^\s*#/.test(line) && current === "") continue;
    const continued = /\\\s*$/.test(line);
    current += `${line.replace(/\\\s*$/, "")} `;
    if (!continued) {
      if (current.trim() !== "") logical.push(current.trim());
      current = "";
    }
  }
  return logical.map((line) => {
    const [keyword = "", ...rest] = line.split(/\s+/);
    return { keyword: keyword.toUpperCase(), args: rest.join(" ") };
  });
}

function execForm(args: string): string[] | undefined {
  if (!args.startsWith("[")) return undefined;
  try {
    const parsed: unknown = JSON.parse(args);
    return Array.isArray(parsed) && parsed.every((item) => typeof item === "string") ? parsed : undefined;
  } catch {
    return undefined;
  }
}

export function summarizeImage(root: string, dockerfile: string): ImageSummary {
  const steps = instructions(readFileSync(join(root, dockerfile), "utf8"));
  const lastFrom = steps.map((step) => step.keyword).lastIndexOf("FROM");
  const lastStage = steps.slice(Math.max(lastFrom, 0));
  const base = lastStage[0]?.args.split(/\s+/).find((word) => !word.startsWith("--")) ?? "";
  const nodeVersion = /^(?:docker\.io\/(?:library\/)?)?node:(\d+\.\d+\.\d+)(?:-[a-z0-9.-]+)?(?:@sha256:[0-9a-f]{64})?$/.exec(base)?.[1];
  const entry = lastStage.filter((step) => step.keyword === "ENTRYPOINT").at(-1);
  return {
    dockerfile,
    nodeVersion,
    entrypoint: entry ? execForm(entry.args) : undefined,
    hasCmd: lastStage.some((step) => step.keyword === "CMD"),
    writesProductionMarker: lastStage.some((step) => step.keyword === "RUN" && step.args.includes(`> ${PRODUCTION_MARKER}`)),
  };
}

interface PackageManifest {
  readonly engines?: { readonly node?: string };
  readonly devDependencies?: Record<string, string>;
}

/** The Node version package.json pins for npm scripts (devDependencies.node, an exact version). */
export function pinnedNodeVersion(root: string): string | undefined {
  const manifest = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as PackageManifest;
  const pinned = manifest.devDependencies?.["node"];
  return pinned !== undefined && /^\d+\.\d+\.\d+$/.test(pinned) ? pinned : undefined;
}

/** Every rule one runner image breaks, in words. */
export function checkImage(family: string, image: ImageSummary, pinned: string | undefined, problems: string[]): void {
  if (pinned === undefined) problems.push(`package.json pins no exact Node version (devDependencies.node), so the suite's Node is unknown`);
  if (image.nodeVersion === undefined) {
    problems.push(`${family}: ${image.dockerfile} does not start FROM the official node:<x.y.z>-… image at a full version`);
  } else if (pinned !== undefined && image.nodeVersion !== pinned) {
    problems.push(`${family}: ${image.dockerfile} runs Node ${image.nodeVersion}, the suite runs on ${pinned} (package.json devDependencies.node)`);
  }
  if (image.entrypoint === undefined) {
    problems.push(`${family}: ${image.dockerfile} has no ENTRYPOINT in exec form; with CMD a RunTask command override replaces the runner`);
  } else if (image.entrypoint.slice(0, 3).join(" ") !== "node --import tsx" || !image.entrypoint.some((argument) => argument.endsWith("/main.ts"))) {
    problems.push(`${family}: ENTRYPOINT ${JSON.stringify(image.entrypoint)} does not start the runner (node --import tsx runners/<family>/main.ts)`);
  }
  if (!image.writesProductionMarker) problems.push(`${family}: ${image.dockerfile} does not write ${PRODUCTION_MARKER}, so the runner would honour endpoint overrides (REGISTRY_BASE_URL, GEMINI_BASE_URL, …) in AWS`);
  if (image.hasCmd) problems.push(`${family}: ${image.dockerfile} has a CMD, whose words would reach the runner as arguments`);
}
