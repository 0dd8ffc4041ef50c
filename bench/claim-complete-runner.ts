// One benchmark runner process: claims and completes registre jobs through
// the runner's own JobQueue until none is left. Started by bench/dispatch.ts,
// one process per runner, as each runner is its own container in production.
import { connectJobDatabase, JobQueue } from "../runners/lifecycle/job-queue.ts";

const databaseUrl = process.env["BENCH_DATABASE_URL"];
const workerId = process.env["BENCH_WORKER_ID"] ?? `bench-${process.pid}`;
if (!databaseUrl || !process.send) throw new Error("started by bench/dispatch.ts with BENCH_DATABASE_URL and an IPC channel");

const sql = connectJobDatabase(databaseUrl, { max: 1 });
const queue = new JobQueue(sql, { kind: "registre", workerId, leaseSeconds: 300 });
await sql`select 1`;
process.send({ ready: true });
process.once("message", async () => {
  let completed = 0;
  // As the runner lifecycle does: each completion claims the next job.
  for (let job = await queue.claim(); job; completed += 1) {
    job = (await queue.completeExtractionAndClaimNext(job, `actes/bench-${job.id}.pdf`)).next;
  }
  await sql.end();
  process.send?.({ completed }, () => process.exit(0));
});
