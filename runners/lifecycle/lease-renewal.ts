/**
 * Keeps a lease alive on a timer: the capacity-ledger lease for the whole
 * life of the runner, and each job's lease while its handler runs. Both
 * follow one rule: renew every third of the lease; after a failed renewal
 * retry sooner; once the last confirmed expiry has passed without a renewal,
 * or the owner says the lease is gone, report it lost exactly once.
 */
import { jitteredBackoffMs } from "./backoff.ts";
import type { Logger } from "./structured-log.ts";

export type RenewResult = { readonly held: true; readonly expiresAt: number } | { readonly held: false; readonly reason: string };

export interface LeaseRenewalOptions {
  /** Names the lease in log lines, e.g. "ledger lease". */
  what: string;
  /** Renews once. Resolves `held: false` when the owner refuses (expired, taken); rejects when it could not be asked. */
  renew(): Promise<RenewResult>;
  /** Time between successful renewals, in ms (a third of the lease). */
  intervalMs: number;
  /** The expiry already confirmed (ms since epoch), e.g. from the claim. */
  expiresAt: number;
  log: Logger;
  /** Called once, when the lease is known or presumed lost. */
  onLost(reason: string): void;
  /** @default Date.now */
  now?: () => number;
}

export interface LeaseRenewal {
  /** The last expiry the owner confirmed (ms since epoch). */
  readonly expiresAt: number;
  readonly lost: boolean;
  /** Stops renewing and waits for a renewal in flight, so nothing renews after this resolves. */
  stop(): Promise<void>;
}

export function startLeaseRenewal(options: LeaseRenewalOptions): LeaseRenewal {
  const { what, renew, intervalMs, log, onLost, now = Date.now } = options;
  let expiresAt = options.expiresAt;
  let lost = false;
  let stopped = false;
  let failures = 0;
  let timer: NodeJS.Timeout | undefined;
  let inFlight: Promise<void> = Promise.resolve();

  const markLost = (reason: string) => {
    if (lost) return;
    lost = true;
    log.warn(`${what} lost`, { reason });
    onLost(reason);
  };

  const schedule = (ms: number) => {
    if (stopped || lost) return;
    timer = setTimeout(() => {
      inFlight = attempt();
    }, Math.max(0, ms));
  };

  const attempt = async (): Promise<void> => {
    if (stopped || lost) return;
    try {
      // A renewal that hangs past the expiry must not hide the loss.
      const result = await withDeadline(renew(), Math.max(intervalMs, expiresAt - now()));
      if (stopped) return;
      if (!result.held) {
        markLost(result.reason);
        return;
      }
      expiresAt = result.expiresAt;
      failures = 0;
      schedule(intervalMs);
    } catch (error) {
      if (stopped) return;
      failures += 1;
      const left = expiresAt - now();
      if (left <= 0) {
        markLost(`could not renew before it expired (${failures} attempts failed)`);
        return;
      }
      const retryInMs = Math.min(intervalMs, left, Math.max(100, jitteredBackoffMs(failures, { baseMs: 1000 })));
      log.warn(`${what} renewal failed; retrying`, { error, retry_in_ms: retryInMs, expires_in_ms: left });
      schedule(retryInMs);
    }
  };

  schedule(intervalMs);

  return {
    get expiresAt() {
      return expiresAt;
    },
    get lost() {
      return lost;
    },
    async stop() {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
      await inFlight;
    },
  };
}

function withDeadline<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}
