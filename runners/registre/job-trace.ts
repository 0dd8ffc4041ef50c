/**
 * A Playwright trace of one registre job (every frame's DOM snapshots,
 * screenshots and the network), kept only when the job fails: scrubbed of
 * the account's credentials and the session's cookies (trace-scrub.ts),
 * then stored by job id (trace-store.ts). Tracing trouble never fails a job.
 */
import { readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import type { BrowserContext } from "playwright";
import type { Logger } from "../lifecycle/structured-log.ts";
import { scrubTraceZip } from "./trace-scrub.ts";
import type { TraceStore } from "./trace-store.ts";

export interface JobTrace {
  /** The job succeeded: nothing is kept. */
  discard(): Promise<void>;
  /** The job failed: the scrubbed trace is stored; returns its `bucket/name`, or undefined when it could not be. */
  keep(target: { store: TraceStore; jobId: string; attempt: number; secrets: readonly string[] }): Promise<string | undefined>;
}

export async function startJobTrace(context: BrowserContext, log: Logger): Promise<JobTrace | undefined> {
  try {
    await context.tracing.start({ screenshots: true, snapshots: true, sources: false });
  } catch (error) {
    log.warn("could not start the job's trace", { error: error instanceof Error ? error.message.split("\n")[0] : String(error) });
    return undefined;
  }
  return {
    async discard() {
      await context.tracing.stop().catch(() => {});
    },
    async keep({ store, jobId, attempt, secrets }) {
      const file = join(tmpdir(), `registre-trace-${randomBytes(6).toString("hex")}.zip`);
      try {
        await context.tracing.stop({ path: file });
        const scrubbed = scrubTraceZip(await readFile(file), secrets);
        const path = await store.save(jobId, attempt, scrubbed, new Date());
        log.info("failed job's trace kept", { trace: path, bytes: scrubbed.length });
        return path;
      } catch (error) {
        log.warn("could not keep the failed job's trace", { error: error instanceof Error ? error.message.split("\n")[0] : String(error) });
        return undefined;
      } finally {
        await rm(file, { force: true });
      }
    },
  };
}
