/**
 * Input tokens per image and per PDF page as Google counted them, per model
 * and media resolution, measured from each reply's
 * `usageMetadata.promptTokensDetails` (IMAGE / DOCUMENT token counts) and
 * kept in Upstash so every runner estimates its next call with what Google
 * last counted, not with a formula. The documented budgets
 * (estimateInputTokens) are the fallback until a figure is measured. One
 * hash, refreshed on each write for a duration (never an absolute expiry):
 * a model unused for a week forgets its figures.
 */
import type { Redis } from "@upstash/redis";

/** How long measured figures live without a new measure. */
export const TOKEN_CALIBRATION_TTL_MS = 7 * 24 * 3_600_000;

export type MediaKind = "image" | "pdfPage";

export interface MediaTokens {
  readonly image?: number;
  readonly pdfPage?: number;
}

export class GeminiTokenCalibration {
  readonly #redis: Redis;
  readonly #key: string;
  /** What this process last read or wrote, so a call needs no round trip. */
  readonly #cache = new Map<string, number>();

  constructor(redis: Redis, keyPrefix: string) {
    this.#redis = redis;
    this.#key = `${keyPrefix}:media-tokens`;
  }

  /** Loads every stored figure (once at start; failures leave the documented budgets). */
  async load(): Promise<void> {
    const all = await this.#redis.hgetall<Record<string, unknown>>(this.#key);
    for (const [field, value] of Object.entries(all ?? {})) {
      const tokens = Number(value);
      if (Number.isFinite(tokens) && tokens > 0) this.#cache.set(field, tokens);
    }
  }

  /** The measured figures for `model` at `mediaResolution` (unset: "default"). */
  mediaTokens(model: string, mediaResolution: string | undefined): MediaTokens {
    const image = this.#cache.get(field(model, mediaResolution, "image"));
    const pdfPage = this.#cache.get(field(model, mediaResolution, "pdfPage"));
    return { ...(image === undefined ? {} : { image }), ...(pdfPage === undefined ? {} : { pdfPage }) };
  }

  /**
   * Records what a reply counted for `items` images (or PDF pages) of one
   * request, from its promptTokensDetails. Writes only when the figure
   * changed, so steady traffic costs no Redis call.
   */
  async observe(model: string, mediaResolution: string | undefined, kind: MediaKind, items: number, details: unknown): Promise<void> {
    if (items < 1) return;
    const counted = modalityTokens(details, kind === "image" ? "IMAGE" : "DOCUMENT");
    if (counted === undefined || counted <= 0) return;
    const perItem = Math.ceil(counted / items);
    const name = field(model, mediaResolution, kind);
    if (this.#cache.get(name) === perItem) return;
    this.#cache.set(name, perItem);
    await this.#redis.hset(this.#key, { [name]: perItem });
    await this.#redis.pexpire(this.#key, TOKEN_CALIBRATION_TTL_MS);
  }
}

function field(model: string, mediaResolution: string | undefined, kind: MediaKind): string {
  return `${model}|${mediaResolution ?? "default"}|${kind}`;
}

/** The token count of `modality` in a `promptTokensDetails` list (ModalityTokenCount[]). */
export function modalityTokens(details: unknown, modality: "IMAGE" | "DOCUMENT" | "TEXT"): number | undefined {
  if (!Array.isArray(details)) return undefined;
  let total: number | undefined;
  for (const entry of details) {
    if (typeof entry !== "object" || entry === null) continue;
    const record = entry as Record<string, unknown>;
    if (record["modality"] !== modality || typeof record["tokenCount"] !== "number") continue;
    total = (total ?? 0) + record["tokenCount"];
  }
  return total;
}
