// `npm start`: the whole pipeline on the embedded local stack, in the
// foreground, until Ctrl+C or SIGTERM.
import { existsSync } from "node:fs";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { isProcessAlive } from "./child-process.ts";
import { DEFAULT_LOCAL_PORTS } from "./local-ports.ts";
import { LOCAL_STACK_DIR } from "./paths.ts";
import { startLocalStack, type StackLog } from "./stack.ts";
import { errorMessage } from "../../supabase/functions/_shared/error-message.ts";

const HELP = `Usage: npm start [-- --json] [-- --verbose]

Starts the embedded local stack and keeps it running until Ctrl+C:
  PostgreSQL 15 + pg_cron   127.0.0.1:${DEFAULT_LOCAL_PORTS.postgres} (migrations applied)
  redis-server              127.0.0.1:${DEFAULT_LOCAL_PORTS.redis}
  Upstash REST endpoint     http://127.0.0.1:${DEFAULT_LOCAL_PORTS.upstash}
  edge functions (Deno)     http://127.0.0.1:${DEFAULT_LOCAL_PORTS.functions}/functions/v1/<name>
  pg_net stand-in           LISTEN edge_function_calls -> POST to the function

State (data, logs, generated secrets) lives in ${LOCAL_STACK_DIR}/dev.
Options:
  --json      one JSON object per line instead of readable lines
  --verbose   include debug lines (every forwarded hint)
  --help      this text
`;

const { values } = parseArgs({
  options: { json: { type: "boolean", default: false }, verbose: { type: "boolean", default: false }, help: { type: "boolean", default: false } },
});
if (values.help) {
  process.stdout.write(HELP);
  process.exit(0);
}

const log: StackLog = (entry) => {
  if (entry.level === "debug" && !values.verbose) return;
  if (values.json) {
    process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), ...entry })}\n`);
    return;
  }
  const { level, msg, ...rest } = entry;
  const details = Object.entries(rest).map(([key, value]) => `${key}=${typeof value === "string" ? value : JSON.stringify(value)}`).join(" ");
  process.stdout.write(`${level === "info" ? "•" : level} ${msg}${details ? `  ${details}` : ""}\n`);
};

const stateDir = join(LOCAL_STACK_DIR, "dev");
const lockFile = join(stateDir, "stack.pid");
await mkdir(stateDir, { recursive: true });
if (existsSync(lockFile)) {
  const pid = Number((await readFile(lockFile, "utf8")).trim());
  if (Number.isInteger(pid) && isProcessAlive(pid)) {
    process.stderr.write(`the local stack is already running (pid ${pid}); stop it with Ctrl+C in its terminal or \`kill ${pid}\`\n`);
    process.exit(1);
  }
}
await writeFile(lockFile, String(process.pid));

let stopping = false;
const stack = await startLocalStack({ stateDir, ports: DEFAULT_LOCAL_PORTS, log }).catch(async (error: unknown) => {
  await rm(lockFile, { force: true });
  process.stderr.write(`local stack failed to start: ${errorMessage(error)}\n`);
  process.exit(1);
});

log({ level: "info", msg: "local stack running; Ctrl+C stops everything", psql: `psql ${stack.urls.database}`, logs: join(stateDir, "logs") });

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    log({ level: "info", msg: `${signal}: stopping the local stack` });
    void stack
      .stop()
      .then(() => rm(lockFile, { force: true }))
      .then(() => {
        log({ level: "info", msg: "stopped" });
        process.exit(0);
      });
  });
}
