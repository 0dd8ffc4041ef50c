/**
 * The runner family's Supabase Auth session, the Storage credential that
 * works on a project with only the new API keys (issue 20 item 2):
 *
 * - Supabase expects an API key in `apikey` (the publishable key here:
 *   public, it only reaches what Row Level Security allows) and a user's JWT
 *   in `Authorization` (https://supabase.com/docs/guides/api/api-keys). A
 *   self-minted JWT sent as `apikey` is refused ("Invalid API key",
 *   supabase/supabase#38611), and the legacy JWT secret that signed one is
 *   being retired.
 * - Each runner family signs in as its own Auth user (email and password
 *   from SSM), whose app_metadata.runner_family the Storage policies read
 *   (migration 20261205040000): registre may insert, OCR may read.
 * - The access token is short-lived (the project's JWT expiry, one hour by
 *   default) and the session refreshes it before it expires (GoTrue
 *   `POST /auth/v1/token?grant_type=refresh_token`; a refresh token is
 *   single-use, so the new one replaces it); when the refresh is refused it
 *   signs in again. Rotating the password (npm run storage-users -- rotate)
 *   takes effect for new tasks without a redeploy.
 *
 * Failures are infrastructure: a refused sign-in spends no job attempt.
 */
import { z } from "zod";
import { InfrastructureError } from "../lifecycle/job-errors.ts";

export interface StorageSessionOptions {
  /** https://<ref>.supabase.co */
  readonly url: string;
  readonly publishableKey: string;
  readonly email: string;
  readonly password: string;
  /** Refresh this long before expiry. @default 60 s */
  readonly refreshMarginMs?: number;
  /** @default Date.now */
  readonly now?: () => number;
  /** @default globalThis.fetch */
  readonly fetch?: typeof fetch;
}

/** GoTrue's token answer (supabase/auth openapi.yaml, AccessTokenResponse). */
const tokenSchema = z.object({ access_token: z.string().min(1), refresh_token: z.string().min(1), expires_in: z.number().positive() });

export class StorageSession {
  readonly #options: StorageSessionOptions;
  #token: { access: string; refresh: string; expiresAt: number } | undefined;
  #pending: Promise<string> | undefined;

  constructor(options: StorageSessionOptions) {
    this.#options = options;
  }

  get publishableKey(): string {
    return this.#options.publishableKey;
  }

  #now(): number {
    return (this.#options.now ?? Date.now)();
  }

  /** A valid access token, signing in or refreshing when needed; concurrent callers share one request. */
  async accessToken(): Promise<string> {
    const token = this.#token;
    if (token !== undefined && this.#now() < token.expiresAt - (this.#options.refreshMarginMs ?? 60_000)) return token.access;
    this.#pending ??= this.#renew().finally(() => {
      this.#pending = undefined;
    });
    return this.#pending;
  }

  async #renew(): Promise<string> {
    const refresh = this.#token?.refresh;
    if (refresh !== undefined) {
      const refreshed = await this.#grant("refresh_token", { refresh_token: refresh }).catch(() => undefined);
      if (refreshed !== undefined) return refreshed;
    }
    const signedIn = await this.#grant("password", { email: this.#options.email, password: this.#options.password });
    if (signedIn === undefined) throw new InfrastructureError("Supabase Auth refused the runner's sign-in (check SUPABASE_RUNNER_EMAIL / SUPABASE_RUNNER_PASSWORD and SUPABASE_PUBLISHABLE_KEY)");
    return signedIn;
  }

  /** One token grant; undefined when Auth refuses it (4xx), InfrastructureError when Auth cannot be reached or fails. */
  async #grant(grantType: "password" | "refresh_token", body: Record<string, string>): Promise<string | undefined> {
    const url = `${this.#options.url.replace(/\/+$/, "")}/auth/v1/token?grant_type=${grantType}`;
    let response: Response;
    try {
      response = await (this.#options.fetch ?? fetch)(url, {
        method: "POST",
        headers: { apikey: this.#options.publishableKey, "content-type": "application/json" },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(10_000),
      });
    } catch (error) {
      throw new InfrastructureError(`Supabase Auth unreachable for the runner's ${grantType} grant`, { cause: error });
    }
    if (response.status >= 400 && response.status < 500) {
      await response.body?.cancel();
      return undefined;
    }
    if (!response.ok) throw new InfrastructureError(`Supabase Auth answered ${response.status} to the runner's ${grantType} grant`);
    const parsed = tokenSchema.safeParse(await response.json());
    if (!parsed.success) throw new InfrastructureError(`Supabase Auth's ${grantType} answer has no access_token, refresh_token and expires_in`);
    this.#token = { access: parsed.data.access_token, refresh: parsed.data.refresh_token, expiresAt: this.#now() + parsed.data.expires_in * 1000 };
    return parsed.data.access_token;
  }
}
