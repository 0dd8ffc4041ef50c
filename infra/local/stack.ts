import { createWriteStream, type WriteStream } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import postgres from "postgres";
import { Redis as UpstashRedis } from "@upstash/redis";
import { parseCapacityConfig } from "../../supabase/functions/_shared/capacity-config.ts";
import { CapacityLedger } from "../../supabase/functions/_shared/capacity-ledger.ts";
import { redisKeyPrefixes } from "../../supabase/functions/_shared/redis-keys.ts";
import { RUNNER_FAMILIES, type RunnerFamily } from "../../supabase/functions/_shared/ecs-client.ts";
import type { Environment } from "../../supabase/functions/_shared/environments.ts";
import { startEcsTaskServer, type EcsTaskServer, type LocalTaskCommand } from "./ecs-task-server.ts";
import { startEdgeRuntime } from "./edge-runtime.ts";
import { isListening } from "./free-port.ts";
import { startFunctionHintBridge } from "./function-hint-bridge.ts";
import { localEcsEnvironment } from "./local-ecs-environment.ts";
import { loadLocalSecrets, type LocalSecrets } from "./local-secrets.ts";
import type { LocalPorts } from "./local-ports.ts";
import { applyMigrations } from "./migrations.ts";
import { PROJECT_ROOT } from "./paths.ts";
import { runnerEntryCommand } from "./runner-command.ts";
import { startPostgresCluster, type PostgresCluster } from "./postgres-cluster.ts";
import { startRedisServer, type RedisServer } from "./redis-server.ts";
import { ensureSystemPackages } from "./system-packages.ts";
import { seedLocalRegistryAccounts } from "./registry-replica/local-registry-accounts.ts";
import { startRegistryReplica, type RegistryReplica, type ReplicaBehaviour } from "./registry-replica/replica-server.ts";
import { startUpstashRestServer } from "./upstash-rest-server.ts";

export type StackLog = (entry: { level: "debug" | "info" | "warn" | "error"; msg: string } & Record<string, unknown>) => void;

export interface LocalStackOptions {
  /** Folder for the cluster's data, storage, logs and generated secrets. */
  stateDir: string;
  ports: LocalPorts;
  log: StackLog;
  /**
   * What a task of each runner family runs.
   * @default the runner entry points under runners/ (see defaultTaskCommand)
   */
  taskCommand?: (family: RunnerFamily) => LocalTaskCommand;
  /** Capacity and budget variables (SERVER_MAX_CPU, …) for the dispatcher and runners. @default {} (their documented defaults) */
  budgetEnv?: Record<string, string>;
  /** The local registry replica registre tasks fetch from. @default a free port, the site's 20-minute session timeout, no delays */
  registry?: { port?: number; sessionIdleMs?: number; behaviour?: Partial<ReplicaBehaviour> };
  /** The environment this stack plays (its dispatch function's ENVIRONMENT). @default "dev" */
  environment?: Environment;
  /**
   * Another stack's Redis and Upstash endpoint, used instead of starting
   * them: every environment shares one capacity and Gemini budget, as in
   * production. @default start a private redis-server and endpoint
   */
  sharedUpstash?: { redis: RedisServer; url: string; token: string };
}

export interface LocalStack {
  readonly secrets: LocalSecrets;
  readonly urls: {
    /** Superuser URL of the `postgres` database (the one with pg_cron). */
    database: string;
    /** The same database as the least-privileged `runner` role. */
    runnerDatabase: string;
    functions: string;
    redis: string;
    upstash: string;
    ecs: string;
  };
  /** The private cluster and redis-server, so a test can stop one to play an outage. */
  readonly postgres: PostgresCluster;
  readonly redis: RedisServer;
  /** The local ECS endpoint: tasks started, and failure injection for tests. */
  readonly ecs: EcsTaskServer;
  /** The registry replica (tests slow it, hang it, stop and restart it). */
  readonly registry: RegistryReplica;
  /** Process ids of every long-running child, for checks that nothing is left behind. */
  pids(): number[];
  stop(): Promise<void>;
}

/**
 * Starts the embedded local stack in dependency order; on any failure stops
 * what already started, so a failed start leaves nothing running.
 */
export async function startLocalStack(options: LocalStackOptions): Promise<LocalStack> {
  const { stateDir, ports, log } = options;
  await ensureSystemPackages((line) => log({ level: "info", msg: line }));
  for (const [name, port] of Object.entries(ports)) {
    if (await isListening(port)) throw new Error(`port ${port} (${name}) is already in use; is another stack running?`);
  }
  await mkdir(join(stateDir, "logs"), { recursive: true });
  const secrets = await loadLocalSecrets(join(stateDir, "secrets.json"));

  const stops: Array<() => Promise<void>> = [];
  const logFiles: WriteStream[] = [];
  const pids: Array<() => number | undefined> = [];
  const logTo = (name: string) => {
    const file = createWriteStream(join(stateDir, "logs", `${name}.log`), { flags: "a" });
    logFiles.push(file);
    return (line: string) => file.write(`${line}\n`);
  };
  const stop = async () => {
    for (const stopOne of stops.reverse()) await stopOne().catch((error: unknown) => log({ level: "warn", msg: "stop failed", error: String(error) }));
    for (const file of logFiles) file.end();
  };

  try {
    const cluster = await startPostgresCluster({ dataDir: join(stateDir, "postgres"), port: ports.postgres, onLine: logTo("postgres") });
    stops.push(() => cluster.stop());
    pids.push(() => cluster.process.child.pid);
    const migrations = await applyMigrations(cluster.url());
    // The URL without its password: logs never carry a secret.
    log({ level: "info", msg: "postgres ready", url: cluster.url("postgres", "postgres", ""), applied: migrations.applied.length, alreadyApplied: migrations.skipped.length });

    const functionsUrl = `http://127.0.0.1:${ports.functions}`;
    await configureDatabase(cluster.url(), functionsUrl, secrets);

    const shared = options.sharedUpstash;
    const redis = shared?.redis ?? (await startRedisServer({ port: ports.redis }));
    if (shared === undefined) {
      stops.push(() => redis.stop());
      pids.push(() => redis.process.child.pid);
    }
    const upstashToken = shared?.token ?? secrets.upstashToken;
    let upstashUrl = shared?.url ?? "";
    if (shared === undefined) {
      const upstash = await startUpstashRestServer({ redisUrl: redis.url, token: upstashToken, port: ports.upstash });
      stops.push(() => upstash.close());
      upstashUrl = upstash.url;
    }
    log({ level: "info", msg: shared === undefined ? "redis ready" : "sharing redis", redis: redis.url, upstash: upstashUrl });

    const budgetEnv = options.budgetEnv ?? {};
    // No task runs yet: the budget's limits are this stack's own, with no wait
    // for tasks to re-register (that wait is for a ledger that lost its data).
    await new CapacityLedger(
      new UpstashRedis({ url: upstashUrl, token: upstashToken, enableTelemetry: false }),
      parseCapacityConfig(budgetEnv),
      { keyPrefix: redisKeyPrefixes(budgetEnv["REDIS_KEY_PREFIX"] ?? "").ledger },
    ).setLimits("replace");
    const runnerDatabaseUrl = cluster.url("postgres", "runner", secrets.runnerPassword);
    const registry = await startRegistryReplica({
      accounts: await seedLocalRegistryAccounts(cluster.url()),
      port: options.registry?.port ?? 0,
      ...(options.registry?.sessionIdleMs === undefined ? {} : { sessionIdleMs: options.registry.sessionIdleMs }),
      ...(options.registry?.behaviour === undefined ? {} : { behaviour: options.registry.behaviour }),
    });
    stops.push(() => registry.stop());
    log({ level: "info", msg: "registry replica ready", url: `${registry.url}/Sirf/` });
    const taskCommand = options.taskCommand ?? defaultTaskCommand;
    const ecs = await startEcsTaskServer({
      port: ports.ecs,
      commandFor: (taskDefinition) => {
        const family = RUNNER_FAMILIES.find((name) => taskDefinition === `${name}-runner` || taskDefinition.startsWith(`${name}-runner:`));
        return family ? taskCommand(family) : undefined;
      },
      // What the task definitions carry on AWS (SST secrets and variables).
      baseEnv: {
        PATH: process.env["PATH"] ?? "/usr/bin:/bin",
        HOME: process.env["HOME"] ?? "/tmp",
        DATABASE_URL: runnerDatabaseUrl,
        UPSTASH_REDIS_REST_URL: upstashUrl,
        UPSTASH_REDIS_REST_TOKEN: upstashToken,
        REGISTRY_BASE_URL: registry.url,
        STORAGE_LOCAL_DIR: join(stateDir, "storage"),
        REGISTRE_DEBUG_DIR: join(stateDir, "registre-debug"),
        ...budgetEnv,
      },
      stopTimeoutMs: 10_000,
      onEvent: (event) => {
        if (event.type === "task-output") log(taskLogEntry(event.arn, event.line));
        if (event.type === "task-started") log({ level: "info", msg: "task started", definition: event.task.taskDefinition, kind: event.task.environment["JOB_KIND"] });
        if (event.type === "task-stopped") log({ level: "info", msg: "task stopped", definition: event.task.taskDefinition, exitCode: event.task.exitCode });
      },
    });
    stops.push(() => ecs.close());
    log({ level: "info", msg: "ECS endpoint ready", url: ecs.url });

    const edge = await startEdgeRuntime({
      port: ports.functions,
      env: {
        SUPABASE_URL: functionsUrl,
        SUPABASE_DB_URL: cluster.url(),
        UPSTASH_REDIS_REST_URL: upstashUrl,
        UPSTASH_REDIS_REST_TOKEN: upstashToken,
        DISPATCH_SECRET: secrets.dispatchSecret,
        ENVIRONMENT: options.environment ?? "dev",
        ...localEcsEnvironment(ecs.url, secrets.dispatchSecret),
        ...budgetEnv,
      },
      onLine: logTo("edge-runtime"),
    });
    stops.push(() => edge.stop());
    pids.push(() => edge.process.child.pid);
    log({ level: "info", msg: "edge runtime ready", functions: `${edge.url}/functions/v1/` });

    const bridge = startFunctionHintBridge({
      databaseUrl: cluster.url(),
      functionsUrl,
      dispatchSecret: secrets.dispatchSecret,
      log: (entry) => log({ level: "debug", msg: "bridge", ...entry }),
    });
    stops.push(() => bridge.stop());
    await bridge.ready;
    log({ level: "info", msg: "pg_net stand-in listening" });

    return {
      secrets,
      urls: {
        database: cluster.url(),
        runnerDatabase: cluster.url("postgres", "runner", secrets.runnerPassword),
        functions: functionsUrl,
        redis: redis.url,
        upstash: upstashUrl,
        ecs: ecs.url,
      },
      postgres: cluster,
      redis,
      ecs,
      registry,
      pids: () => pids.map((pid) => pid()).filter((pid): pid is number => pid !== undefined),
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** A runner's JSON log line as a stack log entry; any other line as text. */
function taskLogEntry(arn: string, line: string): Parameters<StackLog>[0] {
  const task = arn.slice(-8);
  try {
    const parsed: unknown = JSON.parse(line);
    if (parsed && typeof parsed === "object" && "msg" in parsed && typeof parsed.msg === "string") {
      const { msg, level, time, ...fields } = parsed as Record<string, unknown>;
      const known = level === "debug" || level === "warn" || level === "error" ? level : "info";
      return { level: known, msg: `task ${task}: ${String(msg)}`, ...fields };
    }
  } catch {
    // Not JSON: shown as it is.
  }
  return { level: "info", msg: `task ${task}: ${line}` };
}

/**
 * What a task of each family runs locally: the production runner entries,
 * as the images start them (the lifecycle test handler stays for tests that
 * pass their own `taskCommand`).
 */
export function defaultTaskCommand(family: RunnerFamily): LocalTaskCommand {
  // The registre runner: Chromium against the registry replica.
  if (family === "registre") return runnerEntryCommand("runners", "registre", "main.ts");
  // The OCR runner (index-ocr and acte-ocr): the offline engine unless the task's environment has GEMINI_API_KEY.
  return runnerEntryCommand("runners", "ocr", "main.ts");
}

/**
 * What `supabase secrets`/Vault hold on a hosted project, as database
 * settings here: where the functions live and the dispatch secret, plus a
 * login for the runner role (the migration creates it without one).
 */
async function configureDatabase(url: string, functionsUrl: string, secrets: LocalSecrets): Promise<void> {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    await sql.unsafe(`alter database postgres set app.functions_url = '${functionsUrl}'`);
    await sql.unsafe(`alter database postgres set app.dispatch_secret = '${secrets.dispatchSecret}'`);
    const [runner] = await sql`select 1 from pg_roles where rolname = 'runner'`;
    if (runner) await sql.unsafe(`alter role runner with login password '${secrets.runnerPassword}'`);
  } finally {
    await sql.end({ timeout: 2 });
  }
}
