/**
 * npm run capacity -- show|set: the capacity ledger's stored limits, and
 * their replacement when the budget changes on purpose (issue 20 item 4).
 * Without `set`, a changed SERVER_MAX_CPU (or any profile) makes every
 * dispatcher and runner with the new values be refused by the ledger.
 */
import { Redis } from "@upstash/redis";
import { z } from "zod";
import { readCommandLine } from "./command-line.ts";
import { describeLimits, ledgerConfigOf, readLimits, replaceLimits, type LimitsReport } from "./capacity-limits.ts";
import { resolveStackTargets } from "./stack-targets.ts";
import { errorMessage } from "../supabase/functions/_shared/error-message.ts";
import { setValues } from "../supabase/functions/_shared/env-values.ts";

const HELP = `Usage: npm run capacity -- show|set [--local] [--dry-run] [--json]

  show   the limits stored in the Upstash ledger (capacity after the reserve,
         each kind's task size and cap), this shell's limits, the difference
         by variable, and the live leases
  set    replace the stored limits with this shell's (--dry-run: print what
         would change and write nothing)

Target: UPSTASH_REDIS_REST_URL, UPSTASH_REDIS_REST_TOKEN and REDIS_KEY_PREFIX
of the shell, with its capacity variables (SERVER_MAX_CPU, REGISTRE_VCPU, …,
as in capacity.env) billed at the Fargate sizes exactly as \`sst deploy\` and
deploy:secrets use them. --local: the stack of \`npm start\`, with its own
budget.

Order when changing the budget (docs/deploy.md, "Change a budget"): edit
capacity.env; \`npx sst deploy\` (task sizes) and \`npm run deploy:secrets\`
(dispatch) for every stage; then \`npm run capacity -- set\` once.

Exit status: 0; 1 when Upstash cannot be read or written; 2 on bad
arguments; 3 for show when the stored limits differ from this shell's.
`;

const argsSchema = z.object({
  command: z.enum(["show", "set"], { error: "the command must be show or set" }),
  local: z.boolean(),
  "dry-run": z.boolean(),
  json: z.boolean(),
  help: z.boolean(),
});

function printable(report: LimitsReport, action: string): string {
  return [
    `ledger ${report.keyPrefix}: ${report.live.leases} live lease(s) holding ${report.live.vcpu} vCPU, ${report.live.ramGb} GB`,
    "stored limits:",
    ...describeLimits(report.stored),
    "this configuration:",
    ...describeLimits(report.configured),
    report.same ? "same: dispatch and runners with this configuration are admitted" : `differs: ${report.difference ?? "nothing is stored yet"}`,
    ...(action === "" ? [] : [action]),
  ].join("\n");
}

async function main(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): Promise<number> {
  const [command, ...flags] = argv;
  const commandLine = readCommandLineWith(command, flags);
  if ("exitCode" in commandLine) return commandLine.exitCode;
  const args = commandLine.args;
  const values = setValues(env);
  let target: { url: string; token: string; prefix: string; budgetEnv: Record<string, string | undefined>; billed: boolean };
  if (args.local) {
    const local = resolveStackTargets({});
    if (local.upstash === undefined) throw new Error("no local stack found: start it with `npm start`");
    target = { ...local.upstash, prefix: local.redisKeyPrefix, budgetEnv: local.budgetEnv, billed: false };
  } else {
    const url = values["UPSTASH_REDIS_REST_URL"];
    const token = values["UPSTASH_REDIS_REST_TOKEN"];
    if (url === undefined || token === undefined) throw new Error("UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN must be set (or pass --local)");
    target = { url, token, prefix: values["REDIS_KEY_PREFIX"] ?? "", budgetEnv: env, billed: true };
  }
  const redis = new Redis({ url: target.url, token: target.token, enableTelemetry: false, retry: { retries: 1, backoff: () => 200 } });
  const config = ledgerConfigOf(target.budgetEnv, target.billed);
  const before = await readLimits(redis, config, target.prefix);
  let action = "";
  let written = false;
  if (args.command === "set") {
    if (before.same) action = "nothing to write: the stored limits are already this configuration's";
    else if (args["dry-run"]) action = "dry run: would replace the stored limits with this configuration's";
    else {
      await replaceLimits(redis, config, target.prefix);
      written = true;
      action = "replaced: the stored limits are now this configuration's";
    }
    // A smaller budget does not stop what runs: leases over it drain as their tasks finish.
    if (before.live.vcpu > config.capacity.vcpu || before.live.ramGb > config.capacity.ramGb) {
      action += `\nnote: live leases hold more than the new capacity (${config.capacity.vcpu} vCPU, ${config.capacity.ramGb} GB); nothing new starts until they finish`;
    }
  }
  const after = written ? await readLimits(redis, config, target.prefix) : before;
  process.stdout.write(args.json ? `${JSON.stringify({ command: args.command, dryRun: args["dry-run"], written, before, after })}\n` : `${printable(after, action)}\n`);
  return args.command === "show" && !after.same ? 3 : 0;
}

/** The subcommand first, then the flags. */
function readCommandLineWith(command: string | undefined, flags: readonly string[]): { args: z.output<typeof argsSchema> } | { exitCode: 0 | 2 } {
  if (command === undefined || command === "--help" || command === "-h") {
    (command === undefined ? process.stderr : process.stdout).write(HELP);
    return { exitCode: command === undefined ? 2 : 0 };
  }
  const parsed = readCommandLine(
    {
      local: { type: "boolean", default: false },
      "dry-run": { type: "boolean", default: false },
      json: { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
    z.object({ local: z.boolean(), "dry-run": z.boolean(), json: z.boolean(), help: z.boolean() }),
    HELP,
    flags,
  );
  if ("exitCode" in parsed) return parsed;
  const full = argsSchema.safeParse({ command, ...parsed.args });
  if (!full.success) {
    process.stderr.write(`${full.error.issues[0]?.message ?? "bad arguments"}\n\n${HELP}`);
    return { exitCode: 2 };
  }
  return { args: full.data };
}

main(process.argv.slice(2), process.env).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`capacity failed: ${errorMessage(error)}\n`);
    process.exit(1);
  },
);
