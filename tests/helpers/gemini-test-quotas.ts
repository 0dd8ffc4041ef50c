/**
 * Google's quotas as the test server (gemini-test-server.ts) counts them:
 * per model (rate-limits docs: "limits vary depending on the specific
 * model"), requests and input tokens per window and requests per day, over a
 * sliding window; a refusal names the quota (QuotaFailure quotaId, metric)
 * and when there is room again.
 */

export interface GeminiModelQuota {
  /** Requests per window. */
  readonly rpm?: number;
  /** Input (prompt) tokens per window, as Google counts TPM. */
  readonly tpm?: number;
  /** Requests per day (per server lifetime here; "day" is `dayMs`). */
  readonly rpd?: number;
}

interface Admitted {
  readonly at: number;
  readonly tokens: number;
}

export type QuotaVerdict = { ok: true } | { ok: false; metric: string; quotaId: string; value: number; retryInMs: number };

/** Checks one request of `tokens` input tokens against its model's quotas; counts it when admitted. */
export function quotaCounter(options: { readonly quotas: ReadonlyMap<string, GeminiModelQuota>; readonly windowMs: number; readonly dayMs: number }): (model: string, tokens: number, now: number) => QuotaVerdict {
  const { quotas, windowMs, dayMs } = options;
  const admittedByModel = new Map<string, Admitted[]>();
  const dailyByModel = new Map<string, number[]>();
  const quotaOf = (model: string) => quotas.get(model) ?? quotas.get("*");

  /** Checks the model's quotas for one request of `tokens` input tokens; counts it when admitted. */
  return (model: string, tokens: number, now: number): QuotaVerdict => {
    const quota = quotaOf(model);
    const window = (admittedByModel.get(model) ?? []).filter((entry) => entry.at > now - windowMs);
    admittedByModel.set(model, window);
    const day = (dailyByModel.get(model) ?? []).filter((at) => at > now - dayMs);
    dailyByModel.set(model, day);
    if (quota?.rpd !== undefined && day.length + 1 > quota.rpd) {
      const oldest = day[0] ?? now;
      return { ok: false, metric: "generate_content_paid_tier_requests_per_day", quotaId: "GenerateRequestsPerDayPerProjectPerModel", value: quota.rpd, retryInMs: oldest + dayMs - now };
    }
    if (quota?.rpm !== undefined && window.length + 1 > quota.rpm) {
      // Room again when the oldest request that keeps the window full leaves it.
      const blocking = window[window.length - quota.rpm];
      return { ok: false, metric: "generate_content_paid_tier_requests", quotaId: "GenerateRequestsPerMinutePerProjectPerModel", value: quota.rpm, retryInMs: (blocking?.at ?? now) + windowMs - now };
    }
    if (quota?.tpm !== undefined) {
      const used = window.reduce((sum, entry) => sum + entry.tokens, 0);
      if (used + tokens > quota.tpm) {
        let freed = 0;
        let until = now;
        for (const entry of window) {
          freed += entry.tokens;
          until = entry.at + windowMs;
          if (used - freed + tokens <= quota.tpm) break;
        }
        return { ok: false, metric: "generate_content_paid_tier_input_token_count", quotaId: "GenerateContentPaidTierInputTokensPerModelPerMinute", value: quota.tpm, retryInMs: until - now };
      }
    }
    window.push({ at: now, tokens });
    day.push(now);
    return { ok: true };
  };
}
