/**
 * Where each shared budget lives in Redis. The dispatch function and the
 * runners must agree to the letter, or a runner would renew a lease the
 * dispatcher never granted; so both take their prefixes from here.
 * `prefix` is REDIS_KEY_PREFIX: empty in production, where every
 * environment shares the budgets; set only to keep separate deployments (or
 * test runs) on one database apart.
 */
export function redisKeyPrefixes(prefix: string) {
  return {
    ledger: `${prefix}ledger`,
    gemini: `${prefix}gemini`,
    dispatchLock: `${prefix}dispatch:lock`,
    environmentDemand: `${prefix}dispatch:demand`,
    unmetDemand: `${prefix}dispatch:unmet`,
    spotRefused: `${prefix}dispatch:spot-refused`,
    sharedSettings: `${prefix}dispatch:shared-settings`,
  } as const;
}
