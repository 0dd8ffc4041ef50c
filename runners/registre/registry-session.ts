/**
 * The task's one browser and one registry session: Chromium is launched on
 * the first job and reused; each job gets a fresh context that starts from
 * the session's cookies, so the task logs in once and again only when the
 * site ends the session. Closing closes the browser (and with it every
 * Chromium process) and gives the account back.
 */
import { chromium, type Browser, type BrowserContext, type Page } from "playwright";
import { InfrastructureError } from "../lifecycle/job-errors.ts";
import type { Logger } from "../lifecycle/structured-log.ts";
import { EntryPage } from "./pages/login-page.ts";
import type { RegistreConfig } from "./registre-config.ts";
import { RegistryAccounts } from "./registry-accounts.ts";
import { LoginRefusedError } from "./registry-failures.ts";

/**
 * No shared memory (Fargate's /dev/shm is 64 MB and fixed) and nothing a
 * headless scraper does not need: no updates, sync or background requests.
 */
export const CHROMIUM_ARGS = [
  "--disable-dev-shm-usage",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
  "--disable-default-apps",
  "--mute-audio",
] as const;

/** Accounts tried for one login before the job is released as an infrastructure failure. */
const MAX_ACCOUNTS_PER_LOGIN = 3;

type Cookies = Awaited<ReturnType<BrowserContext["cookies"]>>;

export class RegistrySession {
  readonly #config: RegistreConfig;
  readonly #accounts: RegistryAccounts;
  readonly #log: Logger;
  #browser: Promise<Browser> | undefined;
  #cookies: Cookies | undefined;
  /** Bumped at every login, so jobs that saw the same expiry share one new login. */
  #generation = 0;
  #loggingIn: Promise<void> | undefined;
  #closed = false;

  constructor(config: RegistreConfig, accounts: RegistryAccounts, log: Logger) {
    this.#config = config;
    this.#accounts = accounts;
    this.#log = log;
  }

  /** A fresh context and page for one job, carrying the session's cookies. */
  async openJobPage(): Promise<{ context: BrowserContext; page: Page; generation: number }> {
    if (this.#closed) throw new InfrastructureError("the registry session is closed (the runner is stopping)");
    const browser = await this.#launch();
    let context: BrowserContext;
    try {
      context = await browser.newContext({ acceptDownloads: true, locale: "fr-CA" });
    } catch (error) {
      throw new InfrastructureError(`Chromium could not open a context: ${firstLine(error)}`, { cause: error });
    }
    context.setDefaultTimeout(this.#config.navigationTimeoutMs);
    context.setDefaultNavigationTimeout(this.#config.navigationTimeoutMs);
    if (this.#cookies !== undefined) await context.addCookies(this.#cookies);
    return { context, page: await context.newPage(), generation: this.#generation };
  }

  /**
   * Makes sure the context holds a live session's cookies. `staleGeneration`
   * is the generation a job found expired: if someone logged in since, its
   * cookies are reused instead of logging in again.
   */
  async ensureLoggedIn(context: BrowserContext, page: Page, staleGeneration?: number): Promise<number> {
    // No account held any more (its lease was lost): the session's cookies belong to an account someone else may hold now.
    const needsLogin = this.#cookies === undefined || this.#accounts.held === undefined || staleGeneration === this.#generation;
    if (needsLogin) {
      this.#loggingIn ??= this.#logIn(context, page).finally(() => {
        this.#loggingIn = undefined;
      });
      await this.#loggingIn;
    }
    if (this.#cookies !== undefined) await context.addCookies(this.#cookies);
    return this.#generation;
  }

  async #logIn(context: BrowserContext, page: Page): Promise<void> {
    for (let tried = 0; tried < MAX_ACCOUNTS_PER_LOGIN; tried += 1) {
      const account = await this.#accounts.lease();
      if (account === undefined) throw new InfrastructureError("no healthy registry account is free; the job waits for one");
      const entry = new EntryPage(page, this.#config.registryBaseUrl);
      await entry.open();
      const login = await entry.enter();
      try {
        await login.logIn(account.username, account.password, this.#config.navigationTimeoutMs);
      } catch (error) {
        if (!(error instanceof LoginRefusedError)) throw error;
        // The account's fault, not the document's: count it against the account and try another.
        this.#log.warn("registry login refused; trying another account", { account_id: account.accountId, error: error.message });
        await this.#accounts.report(false, error.message);
        await this.#accounts.release();
        continue;
      }
      await this.#accounts.report(true);
      this.#cookies = await context.cookies();
      this.#generation += 1;
      this.#log.info("logged in to the registry", { account_id: account.accountId, session_generation: this.#generation });
      return;
    }
    throw new InfrastructureError(`the registry refused ${MAX_ACCOUNTS_PER_LOGIN} accounts in a row; check registry_account_health`);
  }

  /** Forgets the session (the site ended it). */
  invalidate(generation: number): void {
    if (generation === this.#generation) this.#cookies = undefined;
  }

  async #launch(): Promise<Browser> {
    this.#browser ??= chromium
      .launch({ executablePath: this.#config.chromiumPath, headless: true, args: [...CHROMIUM_ARGS] })
      .then((browser) => {
        this.#log.info("chromium started", { version: browser.version() });
        browser.on("disconnected", () => {
          if (!this.#closed) this.#log.warn("chromium went away; the next job starts a new one");
          this.#browser = undefined;
        });
        return browser;
      })
      .catch((error: unknown) => {
        this.#browser = undefined;
        throw new InfrastructureError(`Chromium could not start: ${firstLine(error)}`, { cause: error });
      });
    return this.#browser;
  }

  /** Closes the browser and gives the account back. Safe to call twice. */
  async close(): Promise<void> {
    this.#closed = true;
    const browser = this.#browser;
    this.#browser = undefined;
    if (browser !== undefined) {
      await browser
        .then((opened) => opened.close())
        .catch((error: unknown) => this.#log.warn("closing chromium failed", { error: firstLine(error) }));
      this.#log.info("chromium closed");
    }
    await this.#accounts.release();
  }
}

export function firstLine(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.split("\n")[0] ?? text;
}
