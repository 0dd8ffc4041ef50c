// `npm start`: the whole pipeline on the embedded local stack, in the
// foreground, until Ctrl+C or SIGTERM.
import { existsSync } from "node:fs";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { parseArgs } from "node:util";
import postgres from "postgres";
import { isProcessAlive } from "./child-process.ts";
import { demoDecision, enqueueDemo, followDemo } from "./demo-batch.ts";
import type { LocalConnections } from "./local-connections.ts";
import { localDoctorFile } from "./doctor-file.ts";
import { rememberLocalPassword } from "./pgpass.ts";
import { DEFAULT_LOCAL_PORTS, type LocalPorts } from "./local-ports.ts";
import { LOCAL_STACK_DIR } from "./paths.ts";
import { startLocalStack, type LocalStack, type StackLog } from "./stack.ts";
import { ENVIRONMENTS, isEnvironment, type Environment } from "../../supabase/functions/_shared/environments.ts";
import { errorMessage } from "../../supabase/functions/_shared/error-message.ts";

const HELP = `Usage: npm start [-- --json] [-- --verbose] [-- --no-demo] [-- --environments dev,prod]

Starts the embedded local stack and keeps it running until Ctrl+C:
  PostgreSQL 15 + pg_cron   127.0.0.1:${DEFAULT_LOCAL_PORTS.postgres} (migrations applied)
  redis-server              127.0.0.1:${DEFAULT_LOCAL_PORTS.redis}
  Upstash REST endpoint     http://127.0.0.1:${DEFAULT_LOCAL_PORTS.upstash}
  edge functions (Deno)     http://127.0.0.1:${DEFAULT_LOCAL_PORTS.functions}/functions/v1/<name>
  pg_net stand-in           LISTEN edge_function_calls -> POST to the function

State (data, logs, generated secrets) lives in ${LOCAL_STACK_DIR}/dev.
On first start (an empty queue) it enqueues a demo batch from the local
registry replica's catalogue (an index, an acte, a plan, and one document that
does not exist) and shows each row's progress until all are terminal; then it
keeps serving. LOCAL_DEMO=off or --no-demo skips the demo.

Options:
  --json      one JSON object per line instead of readable lines
  --verbose   include debug lines (every forwarded hint)
  --no-demo   do not enqueue the demo batch
  --environments dev,prod
              one stack per environment (its own Postgres, dispatch function,
              ECS endpoint; ports 100 higher for each further one), all on the
              first one's Upstash: one shared budget, the fair share between
              environments visible in \`npm run status\` (default: dev)
  --help      this text

While it runs: \`npm run status\` shows the state, \`npm run enqueue -- …\` adds a request.
`;

const { values } = parseArgs({
  options: {
    json: { type: "boolean", default: false },
    verbose: { type: "boolean", default: false },
    "no-demo": { type: "boolean", default: false },
    environments: { type: "string", default: "dev" },
    help: { type: "boolean", default: false },
  },
});
if (values.help) {
  process.stdout.write(HELP);
  process.exit(0);
}
const environments = [...new Set(values.environments.split(",").map((name) => name.trim()).filter((name) => name !== ""))];
const unknownEnvironments = environments.filter((name) => !isEnvironment(name));
if (environments.length === 0 || unknownEnvironments.length > 0) {
  process.stderr.write(`--environments: use a comma-separated list of ${ENVIRONMENTS.join(", ")}${unknownEnvironments.length > 0 ? `; unknown: ${unknownEnvironments.join(", ")}` : ""}\n`);
  process.exit(2);
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
// One stack per environment, as two Supabase projects and two SST stages
// would be: its own Postgres (and pg_cron), dispatch function, ECS endpoint
// and registry replica. The first environment's Redis and Upstash endpoint
// are everyone's: one capacity and Gemini budget for all, as in production.
const stacks: { environment: Environment; stack: LocalStack }[] = [];
const stopAll = async () => {
  for (const { stack } of [...stacks].reverse()) await stack.stop();
};
try {
  for (const [position, name] of environments.entries()) {
    const environment = name as Environment;
    const envLog: StackLog = environments.length === 1 ? log : (entry) => log({ ...entry, msg: `[${environment}] ${entry.msg}` });
    const first = stacks[0]?.stack;
    const stack = await startLocalStack({
      stateDir: stateDirFor(position, environment),
      ports: portsFor(position),
      log: envLog,
      environment,
      ...(first === undefined ? {} : { sharedUpstash: { redis: first.redis, url: first.urls.upstash, token: first.secrets.upstashToken } }),
    });
    stacks.push({ environment, stack });
  }
} catch (error) {
  await stopAll();
  await rm(lockFile, { force: true });
  process.stderr.write(`local stack failed to start: ${errorMessage(error)}\n`);
  process.exit(1);
}
const shared = stacks[0]?.stack;
if (shared === undefined) process.exit(1);

// Where `npm run status` and `npm run enqueue` find this stack (secret: the Upstash token).
const connectionsFile = join(stateDir, "connections.json");
const connections: LocalConnections = {
  databases: stacks.map(({ environment, stack }) => ({ environment, url: stack.urls.database })),
  upstash: { url: shared.urls.upstash, token: shared.secrets.upstashToken },
  redisKeyPrefix: "",
  budgetEnv: {},
};
await writeFile(connectionsFile, JSON.stringify(connections, null, 2), { mode: 0o600 });
// What `npm run doctor -- --local` checks (secret: the dispatch secret and the Upstash token).
await writeFile(join(stateDir, "doctor.json"), JSON.stringify(localDoctorFile(shared, stateDirFor(0, stacks[0]?.environment ?? "dev")), null, 2), { mode: 0o600 });

for (const [position, { environment, stack }] of stacks.entries()) {
  // psql with the plain URL, for whoever started the stack (pgpass.ts); the password never reaches the log.
  const pgpass = await rememberLocalPassword(stack.urls.database).catch((error: unknown) => {
    log({ level: "warn", msg: `could not record the cluster's password in ~/.pgpass: psql will ask for it (${String(error)})` });
    return undefined;
  });
  log({
    level: "info",
    msg: `local stack running (${environment}); Ctrl+C stops everything`,
    psql: pgpass === undefined ? psqlCommand(stack.urls.database, join(stateDirFor(position, environment), "postgres.superuser-password")) : `psql ${withoutPassword(stack.urls.database)}`,
    logs: join(stateDirFor(position, environment), "logs"),
  });
}
log({ level: "info", msg: "watch it with `npm run status -- --watch`; add a request with `npm run enqueue -- acte --circonscription Montréal --number '12 345 678' --type Acte`" });

const demoStop = new AbortController();
for (const { environment, stack } of stacks) {
  void runDemo(stack.urls.database, stacks.length === 1 ? log : (entry) => log({ ...entry, msg: `[${environment}] ${entry.msg}` })).catch((error: unknown) =>
    log({ level: "warn", msg: "demo stopped", environment, error: errorMessage(error) }),
  );
}

/** The first environment keeps the usual state folder (and its lock file); each further one has its own. */
function stateDirFor(position: number, environment: Environment): string {
  return position === 0 ? stateDir : join(LOCAL_STACK_DIR, environment);
}

/** Ports of the n-th environment: the defaults, then 100 higher for each further one. */
function portsFor(position: number): LocalPorts {
  const offset = position * 100;
  return {
    functions: DEFAULT_LOCAL_PORTS.functions + offset,
    postgres: DEFAULT_LOCAL_PORTS.postgres + offset,
    redis: DEFAULT_LOCAL_PORTS.redis + offset,
    upstash: DEFAULT_LOCAL_PORTS.upstash + offset,
    ecs: DEFAULT_LOCAL_PORTS.ecs + offset,
  };
}

/** The first-run demo, in the background: the stack serves (and Ctrl+C works) meanwhile. */
async function runDemo(databaseUrl: string, log: StackLog): Promise<void> {
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {} });
  try {
    const decision = await demoDecision(sql, process.env, values["no-demo"]);
    if (!decision.run) {
      log({ level: "info", msg: "demo batch skipped", reason: decision.reason });
      return;
    }
    const rows = await enqueueDemo(sql);
    log({ level: "info", msg: `demo: enqueued ${rows.length} requests from the registry replica's catalogue (the last one does not exist, to show the failure path); following them`, rows: rows.map((row) => row.label) });
    const outcome = await followDemo(sql, rows, log, { signal: demoStop.signal });
    if (demoStop.signal.aborted) return;
    const done = [...outcome.values()].filter((row) => row.status_id === 5).length;
    log({ level: "info", msg: `demo finished: ${done} complete, ${rows.length - done} failed; the stack keeps serving new rows` });
  } finally {
    await sql.end({ timeout: 2 });
  }
}

// npm does not pass SIGTERM on to the script it runs: `kill <npm pid>`, a
// `timeout npm start` or a service manager stopping npm would leave the stack
// running with no parent. Orphaned, the stack stops as on SIGTERM.
const parentPid = process.ppid;
setInterval(() => {
  if (process.ppid !== parentPid) process.kill(process.pid, "SIGTERM");
}, 1_000).unref();

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    demoStop.abort();
    log({ level: "info", msg: `${signal}: stopping the local stack` });
    void stopAll()
      .then(() => rm(lockFile, { force: true }))
      .then(() => rm(connectionsFile, { force: true }))
      .then(() => {
        log({ level: "info", msg: "stopped" });
        process.exit(0);
      });
  });
}

/** How to open psql on a stack without printing its password: it is read from the file beside the data directory. */
function psqlCommand(databaseUrl: string, passwordFile: string): string {
  return `PGPASSWORD="$(cat ${passwordFile})" psql ${withoutPassword(databaseUrl)}`;
}

function withoutPassword(databaseUrl: string): string {
  const url = new URL(databaseUrl);
  url.password = "";
  return url.toString();
}
