/**
 * Where failed jobs' Playwright traces go: the private Storage bucket
 * `registre-traces` (migration 20261205010200), or the embedded stack's
 * storage folder. Objects are named `<UTC day>/<job id>-attempt-<n>.zip`, so
 * a row's error names its trace and the retention purge removes whole days:
 * traces are kept 14 days (TRACE_RETENTION_DAYS), purged by each registre
 * task when it starts.
 */
import { mkdir, readdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { StorageClient } from "@supabase/storage-js";
import type { StorageConfig } from "../storage/document-storage.ts";
import { StorageSession } from "../storage/storage-session.ts";
import { storageClientFor } from "../storage/supabase-storage.ts";

export const TRACE_BUCKET = "registre-traces";
/** How long a failed job's trace is kept. */
export const TRACE_RETENTION_DAYS = 14;

export interface TraceStore {
  /** Stores the (scrubbed) trace; returns its `bucket/name`. */
  save(jobId: string, attempt: number, zip: Uint8Array, now: Date): Promise<string>;
  /** Removes the days older than the retention; returns how many days went. */
  purge(now: Date): Promise<number>;
}

const dayOf = (date: Date) => date.toISOString().slice(0, 10);
const isDay = (name: string) => /^\d{4}-\d{2}-\d{2}$/.test(name);
const oldestKept = (now: Date) => dayOf(new Date(now.getTime() - TRACE_RETENTION_DAYS * 86_400_000));

export function createTraceStore(config: StorageConfig): TraceStore {
  switch (config.kind) {
    case "local-directory":
      return localTraceStore(join(config.root, TRACE_BUCKET));
    case "supabase":
      return supabaseTraceStore(storageClientFor(config.url, config.key));
    case "supabase-user":
      // The registre family's own Auth user: it may insert traces, list them,
      // and delete only those past the retention (migration 20261205050100).
      return supabaseTraceStore(storageClientFor(config.url, new StorageSession({ url: config.url, publishableKey: config.publishableKey, email: config.email, password: config.password })));
  }
}

function localTraceStore(folder: string): TraceStore {
  return {
    async save(jobId, attempt, zip, now) {
      const name = `${dayOf(now)}/${jobId}-attempt-${attempt}.zip`;
      await mkdir(join(folder, dayOf(now)), { recursive: true, mode: 0o700 });
      await writeFile(join(folder, name), zip, { mode: 0o600 });
      return `${TRACE_BUCKET}/${name}`;
    },
    async purge(now) {
      const days = await readdir(folder).catch(() => [] as string[]);
      const old = days.filter((day) => isDay(day) && day < oldestKept(now));
      for (const day of old) await rm(join(folder, day), { recursive: true, force: true });
      return old.length;
    },
  };
}

function supabaseTraceStore(client: StorageClient): TraceStore {
  const bucket = client.from(TRACE_BUCKET);
  return {
    async save(jobId, attempt, zip, now) {
      const name = `${dayOf(now)}/${jobId}-attempt-${attempt}.zip`;
      // Each attempt has its own name: no overwrite needed (the registre user may not update).
      const { error } = await bucket.upload(name, zip, { contentType: "application/zip", upsert: false });
      if (error) throw new Error(`storing the trace ${name} failed: ${error.message}`);
      return `${TRACE_BUCKET}/${name}`;
    },
    async purge(now) {
      const { data: days, error } = await bucket.list("", { limit: 1000 });
      if (error) throw new Error(`listing ${TRACE_BUCKET} failed: ${error.message}`);
      let purged = 0;
      for (const day of days.map((entry) => entry.name).filter((name) => isDay(name) && name < oldestKept(now))) {
        const { data: files, error: listError } = await bucket.list(day, { limit: 1000 });
        if (listError) throw new Error(`listing ${TRACE_BUCKET}/${day} failed: ${listError.message}`);
        const { error: removeError } = await bucket.remove(files.map((file) => `${day}/${file.name}`));
        if (removeError) throw new Error(`removing ${TRACE_BUCKET}/${day} failed: ${removeError.message}`);
        purged += 1;
      }
      return purged;
    },
  };
}
