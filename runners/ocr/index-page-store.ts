/**
 * Index pages already read completely, kept between attempts of the same
 * job, so a retry (a quota release, a timeout, a lost task) reads only the
 * pages it still lacks instead of every page again. Kept in Upstash under
 * the job's id and the versions of the prompts that read them (a page read
 * with another prompt is read again), for a duration (never an absolute
 * expiry); forgotten when the job completes. Only complete pages are kept:
 * a short, cut or unverified page is read again by the next attempt.
 */
import type { Redis } from "@upstash/redis";
import type { ReadPage } from "./index-page.ts";

/** How long read pages wait for the job's next attempt. */
export const PAGE_STORE_TTL_MS = 24 * 3_600_000;

export interface IndexPageStore {
  /** The pages of this job read completely by an earlier attempt, by page number. */
  load(): Promise<ReadonlyMap<number, ReadPage>>;
  save(page: ReadPage): Promise<void>;
  /** The job is done: its pages are not needed any more. */
  clear(): Promise<void>;
}

export function upstashPageStore(redis: Redis, keyPrefix: string, jobId: string, promptVersions: string): IndexPageStore {
  const key = `${keyPrefix}ocr:index-pages:${jobId}:${promptVersions}`;
  return {
    async load() {
      const all = (await redis.hgetall<Record<string, unknown>>(key)) ?? {};
      const pages = new Map<number, ReadPage>();
      for (const [field, value] of Object.entries(all)) {
        const page = parseStoredPage(value);
        if (page !== undefined && String(page.outcome.pageNumber) === field) pages.set(page.outcome.pageNumber, page);
      }
      return pages;
    },
    async save(page) {
      if (page.outcome.incomplete || page.lines.length === 0) return;
      await redis.hset(key, { [String(page.outcome.pageNumber)]: JSON.stringify(page) });
      await redis.pexpire(key, PAGE_STORE_TTL_MS);
    },
    async clear() {
      await redis.del(key);
    },
  };
}

/** A stored page, checked field by field: anything else is read again. */
function parseStoredPage(value: unknown): ReadPage | undefined {
  let parsed: unknown = value;
  if (typeof value === "string") {
    try {
      parsed = JSON.parse(value);
    } catch {
      return undefined;
    }
  }
  if (typeof parsed !== "object" || parsed === null) return undefined;
  const page = parsed as Record<string, unknown>;
  const outcome = page["outcome"];
  if (typeof page["text"] !== "string" || !Array.isArray(page["lines"]) || typeof outcome !== "object" || outcome === null) return undefined;
  const fields = outcome as Record<string, unknown>;
  if (typeof fields["pageNumber"] !== "number" || fields["incomplete"] !== false || !Array.isArray(fields["flags"])) return undefined;
  if (!page["lines"].every((line): line is string => typeof line === "string")) return undefined;
  return {
    text: page["text"],
    lines: page["lines"],
    outcome: {
      pageNumber: fields["pageNumber"],
      countedLines: typeof fields["countedLines"] === "number" ? fields["countedLines"] : null,
      countConfidence: typeof fields["countConfidence"] === "number" ? fields["countConfidence"] : 0,
      extractedLines: page["lines"].length,
      retried: fields["retried"] === true,
      incomplete: false,
      flags: [],
    },
  };
}
