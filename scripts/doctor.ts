/**
 * npm run doctor -- --stage <stage> | --local: the last step of a deploy and
 * of every change on day two. Checks a deployed stage from the operator's
 * machine (or the stack of `npm start`) and prints one line per check, with
 * the fix for each failure; `--json` for CI. See scripts/doctor-checks.ts.
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { dirname } from "node:path";
import { z } from "zod";
import { readCommandLine } from "./command-line.ts";
import { runChecks, type CheckResult } from "./doctor-checks.ts";
import { LOCAL_DOCTOR_FILE, localTarget, stageTarget } from "./doctor-target.ts";
import { ENVIRONMENTS } from "../supabase/functions/_shared/environments.ts";
import { errorMessage } from "../supabase/functions/_shared/error-message.ts";

const HELP = `Usage: npm run doctor -- --stage dev|staging|prod | --local [--target-file F] [--json]

Checks, one line each, with the fix for each failure:
  database      the runner role connects, over TLS (verified with
                RUNNER_DATABASE_ROOT_CERT)
  storage       each runner user writes (registre), reads (ocr) and cannot
                delete a probe object in each document bucket
  dispatch      the function answers DISPATCH_SECRET with 200 (its secrets set)
  vault, cron   functions_url and dispatch_secret exist; dispatch-tick and
                reap-expired-leases are scheduled (needs DATABASE_URL, the
                postgres role)
  upstash       reachable, and the ledger's stored limits equal this shell's
  ecs           the dispatch key reaches the cluster (DescribeTasks: RunTask
                has no dry run)
  aws           with your own AWS_* credentials: the cluster is ACTIVE with
                FARGATE and FARGATE_SPOT, both task definitions ACTIVE, the
                subnets exist
  gemini        the configured models exist for GEMINI_API_KEY
  registry      the registry answers

--stage reads the shell deploy:secrets reads (RUNNER_DATABASE_URL,
RUNNER_DATABASE_ROOT_CERT, SUPABASE_PROJECT_REF, SUPABASE_PUBLISHABLE_KEY,
RUNNER_STORAGE_EMAIL_/PASSWORD_REGISTRE and _OCR, DISPATCH_SECRET,
UPSTASH_REDIS_REST_URL/_TOKEN, the capacity variables,
DISPATCH_AWS_ACCESS_KEY_ID/_SECRET_ACCESS_KEY, AWS_ACCESS_KEY_ID/…,
GEMINI_API_KEY, DATABASE_URL)
and .sst/outputs.json. --local checks the stack of \`npm start\`.

Exit status: 0 when nothing failed (skipped checks name what they need),
1 when a check failed, 2 on bad arguments.
`;

const argsSchema = z
  .object({
    stage: z.enum(ENVIRONMENTS, { error: `must be one of ${ENVIRONMENTS.join(", ")}` }).optional(),
    local: z.boolean(),
    "target-file": z.string().optional(),
    json: z.boolean(),
    help: z.boolean(),
  })
  .refine((args) => args.help || (args.stage === undefined) !== !args.local, { error: "give either --stage or --local", path: ["stage"] });

const MARK = { ok: "✓", failed: "✗", skipped: "-" } as const;

function line(result: CheckResult): string {
  return `${MARK[result.status]} ${result.name}: ${result.detail}${result.fix === undefined || result.status === "ok" ? "" : ` (fix: ${result.fix})`}`;
}

async function main(): Promise<number> {
  const commandLine = readCommandLine(
    {
      stage: { type: "string" },
      local: { type: "boolean", default: false },
      "target-file": { type: "string" },
      json: { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
    argsSchema,
    HELP,
  );
  if ("exitCode" in commandLine) return commandLine.exitCode;
  const args = commandLine.args;
  const root = join(dirname(fileURLToPath(import.meta.url)), "..");
  const target = args.local
    ? localTarget(args["target-file"] ?? LOCAL_DOCTOR_FILE)
    : stageTarget(args.stage ?? "dev", process.env, join(root, ".sst", "outputs.json"));
  const results = await runChecks(target);
  const ok = results.every((result) => result.status !== "failed");
  process.stdout.write(args.json ? `${JSON.stringify({ stage: target.stage, ok, checks: results })}\n` : `${results.map(line).join("\n")}\n${ok ? "doctor: OK" : "doctor: FAILED"} (${target.stage})\n`);
  return ok ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`doctor failed: ${errorMessage(error)}\n`);
    process.exit(1);
  },
);
