/**
 * The settings every environment must share for the shared budgets to mean
 * one thing (issue 19 item 8): the ledger already refuses a capacity or a
 * task size that differs (capacity-ledger-scripts.ts, "limits"), but a different
 * lease TTL, Gemini limits or models, or environment weights in one
 * environment would over-admit or split the budget unseen. The first
 * dispatcher stores them with a SHA-256 of their canonical form; a
 * dispatcher whose settings hash differently starts nothing and names the
 * differing variables. Replacing them on purpose: delete the key (its name
 * is in the refusal).
 */
import type { Redis } from "@upstash/redis";
import type { DispatchConfig } from "./dispatch-config.ts";
import { ENVIRONMENTS } from "./environments.ts";

/** Variable name → its value in canonical text form. */
export type SharedSettings = Readonly<Record<string, string>>;

export function sharedSettingsOf(config: Pick<DispatchConfig, "capacity" | "weights">): SharedSettings {
  const models = Object.keys(config.capacity.gemini.limits).sort();
  return {
    LEDGER_LEASE_TTL_SECONDS: String(config.capacity.leaseTtlMs / 1000),
    GEMINI_LIMITS: models.map((model) => {
      const limits = config.capacity.gemini.limits[model];
      return `${model}:rpm=${limits?.rpm},tpm=${limits?.tpm},rpd=${limits?.rpd}`;
    }).join(";"),
    GEMINI_FAST_MODEL: config.capacity.gemini.models.fast,
    GEMINI_BOOST_MODEL: config.capacity.gemini.models.boost,
    DISPATCH_WEIGHTS: ENVIRONMENTS.map((environment) => `${environment}=${config.weights[environment]}`).join(","),
  };
}

async function sha256Hex(text: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
  return Array.from(digest, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

function canonical(settings: SharedSettings): string {
  return JSON.stringify(Object.fromEntries(Object.keys(settings).sort().map((key) => [key, settings[key]])));
}

export type SettingsVerdict = { readonly ok: true } | { readonly ok: false; readonly message: string };

export class SharedSettingsBoard {
  readonly #redis: Redis;
  readonly #key: string;

  constructor(redis: Redis, key: string) {
    this.#redis = redis;
    this.#key = key;
  }

  /** Stores `settings` if none are stored yet; says whether the stored ones are the same, naming each difference. */
  async check(settings: SharedSettings): Promise<SettingsVerdict> {
    const text = canonical(settings);
    const hash = await sha256Hex(text);
    const mine = JSON.stringify({ hash, settings: JSON.parse(text) as unknown });
    // NX: the first writer decides; everyone after compares with it.
    await this.#redis.set(this.#key, mine, { nx: true });
    const stored: unknown = await this.#redis.get(this.#key);
    const parsed = typeof stored === "string" ? safeParse(stored) : stored;
    if (isStored(parsed) && parsed.hash === hash) return { ok: true };
    const theirs = isStored(parsed) ? parsed.settings : {};
    const differences = [...new Set([...Object.keys(settings), ...Object.keys(theirs)])]
      .sort()
      .filter((key) => settings[key] !== theirs[key])
      .map((key) => `${key}: ${settings[key] ?? "unset"} here, ${theirs[key] ?? "unset"} stored`);
    return {
      ok: false,
      message: `this environment's shared settings differ from the ones every environment shares in Upstash (${this.#key}); set the same values everywhere: ${
        differences.length > 0 ? differences.join("; ") : "the stored settings could not be read"
      }`,
    };
  }
}

function safeParse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function isStored(value: unknown): value is { hash: string; settings: Record<string, string> } {
  return typeof value === "object" && value !== null && typeof (value as { hash?: unknown }).hash === "string" && typeof (value as { settings?: unknown }).settings === "object";
}
