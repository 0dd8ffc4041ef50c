/** The task's capacity lease on the ledger: the first renewal that proves it is held, and the release at exit. */
import { setTimeout as delay } from "node:timers/promises";
import type { CapacityLedger } from "../../supabase/functions/_shared/capacity-ledger.ts";
import { jitteredBackoffMs } from "./backoff.ts";
import type { Logger } from "./structured-log.ts";

/** Tries of a ledger call (the first renewal, the release at exit) before giving up. */
const LEDGER_CALL_ATTEMPTS = 3;

export async function firstLedgerRenewal(
  renew: () => Promise<{ held: true; expiresAt: number } | { held: false; reason: string }>,
  log: Logger,
): Promise<{ held: true; expiresAt: number } | { held: false; reason: string; unreachable: boolean }> {
  let lastError: unknown;
  for (let attempt = 1; attempt <= LEDGER_CALL_ATTEMPTS; attempt += 1) {
    try {
      const result = await renew();
      return result.held ? result : { ...result, unreachable: false };
    } catch (error) {
      lastError = error;
      log.warn("first ledger renewal failed", { error, attempt });
      if (attempt < LEDGER_CALL_ATTEMPTS) await delay(jitteredBackoffMs(attempt, { baseMs: 1000 }));
    }
  }
  return { held: false, reason: `the ledger could not be reached: ${String(lastError)}`, unreachable: true };
}

export async function releaseLedgerLease(ledger: CapacityLedger, leaseId: string, log: Logger): Promise<void> {
  for (let attempt = 1; attempt <= LEDGER_CALL_ATTEMPTS; attempt += 1) {
    try {
      const freed = await ledger.release(leaseId);
      log.info("ledger lease released", { freed_capacity: freed });
      return;
    } catch (error) {
      log.warn("releasing the ledger lease failed", { error, attempt });
      if (attempt < LEDGER_CALL_ATTEMPTS) await delay(jitteredBackoffMs(attempt));
    }
  }
  log.error("ledger lease left to expire: release kept failing");
}
