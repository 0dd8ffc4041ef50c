/**
 * The checks of `npm run doctor` (issue 20, "Deliver" 2): each answers one
 * question about a deployed stage (or the local stack) with a line an
 * operator can act on: what is wrong and the fix. A check that cannot run
 * for want of an input is "skipped", naming the input. Run by
 * scripts/doctor.ts against a DoctorTarget (scripts/doctor-target.ts).
 */
import { signHint } from "../supabase/functions/_shared/hint-signature.ts";
import { access, mkdir, readFile, writeFile } from "node:fs/promises";
import { constants } from "node:fs";
import { join } from "node:path";
import { Redis } from "@upstash/redis";
import postgres from "postgres";
import { EcsClient } from "../supabase/functions/_shared/ecs-client.ts";
import { errorMessage } from "../supabase/functions/_shared/error-message.ts";
import { connectJobDatabase } from "../runners/lifecycle/job-queue.ts";
import { DOCUMENT_BUCKETS } from "../runners/storage/document-storage.ts";
import { StorageSession } from "../runners/storage/storage-session.ts";
import { ledgerConfigOf, readLimits } from "./capacity-limits.ts";
import { awsResourceProblems } from "./doctor-aws.ts";
import type { DoctorTarget } from "./doctor-target.ts";

export interface CheckResult {
  readonly name: string;
  readonly status: "ok" | "failed" | "skipped";
  readonly detail: string;
  /** What to do, for a failure or a skip. */
  readonly fix?: string;
}

type Check = (target: DoctorTarget) => Promise<Omit<CheckResult, "name">>;

const ok = (detail: string) => ({ status: "ok" as const, detail });
const failed = (detail: string, fix: string) => ({ status: "failed" as const, detail, fix });
const skipped = (detail: string, fix: string) => ({ status: "skipped" as const, detail, fix });

const database: Check = async (target) => {
  const sql = connectJobDatabase(target.runnerDatabaseUrl, { max: 1, connectTimeoutSeconds: 10, tls: target.databaseTls });
  try {
    const [row] = await sql<{ user: string; ssl: boolean | null }[]>`select current_user as user, (select ssl from pg_stat_ssl where pid = pg_backend_pid()) as ssl`;
    if (row?.user !== "runner") return failed(`connected as ${row?.user ?? "?"}, not runner`, "RUNNER_DATABASE_URL must log in as the runner role (runner.<ref> on the pooler)");
    if (target.databaseTls.mode === "disable") return ok("runner role; loopback, no TLS (local stack)");
    if (row.ssl !== true) return failed("the session is not encrypted", "use the pooler host with sslmode=require or verify-full");
    return target.databaseTls.mode === "verify-full" ? ok("runner role over TLS, server verified (verify-full)") : ok("runner role over TLS, server NOT verified: export RUNNER_DATABASE_ROOT_CERT to verify");
  } catch (error) {
    return failed(errorMessage(error), "check RUNNER_DATABASE_URL (pooler host from Connect → Transaction pooler, the runner role's password) and RUNNER_DATABASE_ROOT_CERT");
  } finally {
    await sql.end({ timeout: 2 });
  }
};

/** Writes, reads and tries to delete one probe per bucket with the runners' own credentials. */
const storage: Check = async (target) => {
  const probe = new TextEncoder().encode("%PDF-1.7\n% npm run doctor probe\n%%EOF\n");
  if (target.storage.kind === "local-directory") {
    const root = target.storage.root;
    for (const bucket of DOCUMENT_BUCKETS) {
      await mkdir(join(root, bucket), { recursive: true });
      await writeFile(join(root, bucket, "_doctor-probe.pdf"), probe);
      if ((await readFile(join(root, bucket, "_doctor-probe.pdf"))).length !== probe.length) return failed(`${bucket}: the probe read back differs`, `check ${root}`);
    }
    await access(root, constants.W_OK);
    return ok(`local directory ${root}: write and read in ${DOCUMENT_BUCKETS.join(", ")} (a local directory cannot refuse a delete)`);
  }
  const { url, publishableKey, users } = target.storage;
  if (users.registre === undefined || users.ocr === undefined) return skipped("no runner user credentials", "export RUNNER_STORAGE_EMAIL_/PASSWORD_REGISTRE and _OCR (npm run storage-users -- ensure)");
  const session = (user: { email: string; password: string }) => new StorageSession({ url, publishableKey, ...user });
  const registre = session(users.registre);
  const ocr = session(users.ocr);
  const object = async (who: StorageSession, method: string, bucket: string, extra: RequestInit = {}) =>
    fetch(`${url.replace(/\/+$/, "")}/storage/v1/object/${bucket}/_doctor-probe.pdf`, {
      method,
      ...extra,
      headers: { apikey: publishableKey, authorization: `Bearer ${await who.accessToken()}`, ...(extra.headers as Record<string, string> | undefined) },
    });
  const problems: string[] = [];
  for (const bucket of DOCUMENT_BUCKETS) {
    const put = await object(registre, "POST", bucket, { body: probe, headers: { "content-type": "application/pdf", "x-upsert": "false" } });
    const putText = await put.text();
    if (!put.ok && !/already exists|Duplicate|409/.test(putText)) problems.push(`${bucket}: registre cannot insert (${put.status} ${putText.slice(0, 80)})`);
    const get = await object(ocr, "GET", bucket);
    await get.body?.cancel();
    if (!get.ok) problems.push(`${bucket}: ocr cannot read (${get.status})`);
    for (const [name, who] of [["registre", registre], ["ocr", ocr]] as const) {
      const deleted = await object(who, "DELETE", bucket);
      await deleted.body?.cancel();
      const still = await object(ocr, "GET", bucket);
      await still.body?.cancel();
      if (!still.ok) problems.push(`${bucket}: ${name} could delete the probe`);
    }
  }
  return problems.length === 0
    ? ok(`registre inserts, ocr reads, neither deletes, in ${DOCUMENT_BUCKETS.join(", ")}`)
    : failed(problems.join("; "), "apply the migrations (supabase db push --remote), create the buckets, run npm run storage-users -- ensure");
};

const dispatchFunction: Check = async (target) => {
  if (target.dispatchSecret === undefined) return skipped("DISPATCH_SECRET not set", "export DISPATCH_SECRET (the value deploy:secrets set)");
  try {
    // Dispatch takes no bearer secret: a hint is signed as the database signs it (hint-signature.ts).
    const body = JSON.stringify({ reason: "doctor" });
    const signature = await signHint(target.dispatchSecret, Math.floor(Date.now() / 1000), body);
    const response = await fetch(`${target.functionsUrl}/dispatch`, {
      method: "POST",
      headers: { ...signature, "content-type": "application/json" },
      body,
      signal: AbortSignal.timeout(30_000),
    });
    const text = await response.text();
    if (response.status === 401) return failed("the function refuses DISPATCH_SECRET", "npm run deploy:secrets -- --stage <stage> (the function's and Vault's secret must be this value)");
    if (!response.ok) return failed(`${response.status}: ${text.slice(0, 160)}`, "npx supabase functions deploy dispatch --no-verify-jwt, then npm run deploy:secrets; the function log names a missing secret");
    return ok(`answers 200 (${text.slice(0, 80)})`);
  } catch (error) {
    return failed(errorMessage(error), "npx supabase functions deploy dispatch --no-verify-jwt");
  }
};

/** Needs a privileged connection (Vault and cron are not the runner role's). */
function adminCheck(name: string, query: (sql: postgres.Sql) => Promise<Omit<CheckResult, "name">>): Check {
  return async (target) => {
    if (target.adminDatabaseUrl === undefined) return skipped(`no privileged database URL for ${name}`, "export DATABASE_URL (the postgres role's pooler URL) to check it");
    const sql = postgres(target.adminDatabaseUrl, { max: 1, prepare: false, connect_timeout: 10, onnotice: () => {} });
    try {
      return await query(sql);
    } catch (error) {
      return failed(errorMessage(error), "check DATABASE_URL");
    } finally {
      await sql.end({ timeout: 2 });
    }
  };
}

const vault = adminCheck("Vault", async (sql) => {
  // Read as the hints and the tick read them: Vault on Supabase, app.* settings on the local stack.
  const [row] = await sql<{ functions_url: boolean; dispatch_secret: boolean }[]>`
    select private.edge_function_setting('functions_url') is not null as functions_url,
           private.edge_function_setting('dispatch_secret') is not null as dispatch_secret`;
  const missing = (["functions_url", "dispatch_secret"] as const).filter((name) => row?.[name] !== true);
  return missing.length === 0 ? ok("functions_url and dispatch_secret exist") : failed(`missing ${missing.join(", ")}`, "npm run deploy:secrets -- --stage <stage>");
});

const cron = adminCheck("pg_cron", async (sql) => {
  const rows = await sql<{ jobname: string; active: boolean }[]>`select jobname, active from cron.job`;
  const missing = ["dispatch-tick", "reap-expired-leases"].filter((name) => !rows.some((row) => row.jobname === name && row.active));
  return missing.length === 0 ? ok(`scheduled: ${rows.map((row) => row.jobname).sort().join(", ")}`) : failed(`not scheduled: ${missing.join(", ")}`, "enable pg_cron, then npx supabase db push --remote");
});

const ledger: Check = async (target) => {
  const { url, token, prefix, budgetEnv, billed } = target.upstash;
  try {
    const report = await readLimits(new Redis({ url, token, enableTelemetry: false, retry: { retries: 1, backoff: () => 200 } }), ledgerConfigOf(budgetEnv, billed), prefix);
    if (report.stored === undefined) return ok("reachable; no limits stored yet (the first dispatcher stores them)");
    return report.same ? ok(`reachable; stored limits equal this configuration's (${report.live.leases} live lease(s))`) : failed(report.difference ?? "the stored limits differ", "npm run capacity -- show, then npm run capacity -- set (docs/deploy.md, Change a budget)");
  } catch (error) {
    return failed(errorMessage(error), "check UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN");
  }
};

const ecs: Check = async (target) => {
  if (target.ecs === undefined) return skipped("no ECS configuration", "export DISPATCH_AWS_ACCESS_KEY_ID/_SECRET_ACCESS_KEY and run after npx sst deploy (.sst/outputs.json)");
  // RunTask has no dry run; DescribeTasks of a task that does not exist proves the key, the region and the cluster.
  try {
    const probe = `${target.ecs.cluster.replace(":cluster/", ":task/")}/00000000000000000000000000000000`;
    const { failures } = await new EcsClient(target.ecs, { retries: 0, timeoutMs: 10_000 }).describeTasks([probe]);
    return ok(`the dispatch key reaches cluster ${target.ecs.cluster} (probe task: ${failures[0]?.reason ?? "found"}); task definitions ${target.ecs.taskDefinitions.registre}, ${target.ecs.taskDefinitions.ocr}; subnets ${target.ecs.subnets.join(", ")}`);
  } catch (error) {
    return failed(errorMessage(error), "npx sst deploy --stage <stage>; a new access key for the DispatchIamUser output (aws iam create-access-key)");
  }
};

const awsResources: Check = async (target) => {
  if (target.ecs === undefined || target.deployer === undefined) {
    return skipped(target.mode === "local" ? "the local stack has no AWS" : "no deployer credentials or no outputs", "run with your own AWS credentials (AWS_ACCESS_KEY_ID, …) after npx sst deploy");
  }
  try {
    const problems = await awsResourceProblems(target.ecs, target.deployer.credentials, target.deployer.endpoints);
    return problems.length === 0 ? ok(`cluster ACTIVE with FARGATE and FARGATE_SPOT, both task definitions ACTIVE, subnets ${target.ecs.subnets.join(", ")} exist`) : failed(problems.join("; "), "npx sst deploy --stage <stage>, then npm run deploy:secrets (outputs and function secrets must agree)");
  } catch (error) {
    return failed(errorMessage(error), "check your AWS credentials and region (ca-central-1)");
  }
};

const gemini: Check = async (target) => {
  if (target.gemini === undefined) return skipped("GEMINI_API_KEY not set (the local stack's OCR uses the offline engine)", "export GEMINI_API_KEY to check the models");
  const missing: string[] = [];
  for (const model of target.gemini.models) {
    const response = await fetch(`${target.gemini.baseUrl}/v1beta/models/${encodeURIComponent(model)}`, { headers: { "x-goog-api-key": target.gemini.apiKey }, signal: AbortSignal.timeout(10_000) }).catch(() => undefined);
    await response?.body?.cancel();
    if (response?.ok !== true) missing.push(`${model} (${response?.status ?? "unreachable"})`);
  }
  return missing.length === 0 ? ok(`models exist for the key: ${target.gemini.models.join(", ")}`) : failed(`not available: ${missing.join(", ")}`, "set GEMINI_FAST_MODEL / GEMINI_BOOST_MODEL to models the key lists, or check the key");
};

const registry: Check = async (target) => {
  const response = await fetch(target.registryUrl, { signal: AbortSignal.timeout(15_000), redirect: "manual" }).catch((error: unknown) => error);
  if (!(response instanceof Response)) return failed(`unreachable: ${errorMessage(response)}`, "the registry may be down or in maintenance; retry later (runners treat this as infrastructure)");
  await response.body?.cancel();
  return response.status < 500 ? ok(`answers ${response.status} at ${target.registryUrl}`) : failed(`answers ${response.status}`, "the registry is down or in maintenance; nothing to fix here, runners wait");
};

export const CHECKS: readonly { readonly name: string; readonly run: Check }[] = [
  { name: "database (runner role, TLS)", run: database },
  { name: "storage (probe per bucket)", run: storage },
  { name: "dispatch function", run: dispatchFunction },
  { name: "vault secrets", run: vault },
  { name: "cron jobs", run: cron },
  { name: "upstash and ledger limits", run: ledger },
  { name: "ecs (cluster, task definitions, dispatch key)", run: ecs },
  { name: "aws resources (cluster, task definitions, subnets)", run: awsResources },
  { name: "gemini models", run: gemini },
  { name: "registry", run: registry },
];

export async function runChecks(target: DoctorTarget): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  for (const check of CHECKS) {
    try {
      results.push({ name: check.name, ...(await check.run(target)) });
    } catch (error) {
      results.push({ name: check.name, status: "failed", detail: errorMessage(error), fix: "see the message" });
    }
  }
  return results;
}
