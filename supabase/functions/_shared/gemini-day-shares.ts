/**
 * Each environment's share of the Gemini day (issue 19 item 9): one
 * environment's backlog (dev's) must not spend the day's requests and pause
 * the others (prod) until midnight Pacific. GEMINI_DAY_SHARES gives each
 * environment a fraction of every model's requests per day, e.g.
 * "prod=0.6,staging=0.2,dev=0.2"; unset, the day is one pool as before.
 * A share is lendable: an environment that has not asked for Gemini within
 * GEMINI_DAY_SHARE_IDLE_SECONDS (600) holds nothing back, so the others may
 * use its share; once it asks again, what is left of its share is kept for
 * it (gemini-rate-budget.ts, admitDailyScript).
 */
import { z } from "zod";
import { ENVIRONMENTS, type Environment } from "./environments.ts";
import { setValues } from "./env-values.ts";

export interface GeminiDayShares {
  /** The environment asking. */
  readonly environment: Environment;
  /** Fraction of each model's requests per day kept for each environment (sum at most 1). */
  readonly shares: Readonly<Record<Environment, number>>;
  /** Without a request for this long, an environment's unused share is lent to the others. */
  readonly idleAfterMs: number;
}

export class GeminiDaySharesError extends Error {
  override readonly name = "GeminiDaySharesError";
}

const sharesSchema = z
  .string()
  .transform((text, context) => {
    const shares = Object.fromEntries(ENVIRONMENTS.map((environment) => [environment, 0])) as Record<Environment, number>;
    for (const part of text.split(",").map((piece) => piece.trim()).filter((piece) => piece !== "")) {
      const match = /^(\w+)=(\d+(?:\.\d+)?)$/.exec(part);
      if (match === null || !(ENVIRONMENTS as readonly string[]).includes(match[1] ?? "")) {
        context.addIssue({ code: "custom", message: `"${part}" must be <environment>=<fraction> with environment one of ${ENVIRONMENTS.join(", ")}` });
        return z.NEVER;
      }
      shares[match[1] as Environment] = Number(match[2]);
    }
    const total = Object.values(shares).reduce((sum, share) => sum + share, 0);
    if (total > 1 + 1e-9) {
      context.addIssue({ code: "custom", message: `the shares add up to ${Number(total.toFixed(6))}; at most 1` });
      return z.NEVER;
    }
    return shares;
  });

/** Reads GEMINI_DAY_SHARES and GEMINI_DAY_SHARE_IDLE_SECONDS; undefined when no shares are set. Fails naming the variable. */
export function parseGeminiDayShares(env: Readonly<Record<string, string | undefined>>, environment: Environment): GeminiDayShares | undefined {
  const values = setValues(env);
  const text = values["GEMINI_DAY_SHARES"];
  if (text === undefined) return undefined;
  const shares = sharesSchema.safeParse(text);
  if (!shares.success) throw new GeminiDaySharesError(`GEMINI_DAY_SHARES ${shares.error.issues.map((issue) => issue.message).join("; ")}`);
  const idle = values["GEMINI_DAY_SHARE_IDLE_SECONDS"] ?? "600";
  if (!/^\d+$/.test(idle) || Number(idle) < 1) throw new GeminiDaySharesError("GEMINI_DAY_SHARE_IDLE_SECONDS must be a whole number of seconds ≥ 1");
  return { environment, shares: shares.data, idleAfterMs: Number(idle) * 1000 };
}

/**
 * The keys and arguments that admitDailyScript (gemini-budget-scripts.ts)
 * takes after its own for day shares: per environment, its requests of the
 * day and its "asked lately" key; then the asking environment's position
 * (1-based), how long asking keeps an environment active, and each share.
 * None when the day is one pool.
 */
export function dayShareArguments(dayKey: string, shares: GeminiDayShares | undefined): { readonly keys: string[]; readonly args: string[] } {
  if (shares === undefined) return { keys: [], args: [] };
  return {
    keys: ENVIRONMENTS.flatMap((environment) => [`${dayKey}:env:${environment}`, `${dayKey}:asked:${environment}`]),
    args: [String(ENVIRONMENTS.indexOf(shares.environment) + 1), String(shares.idleAfterMs), ...ENVIRONMENTS.map((environment) => String(shares.shares[environment]))],
  };
}
