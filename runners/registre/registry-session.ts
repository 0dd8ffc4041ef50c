/**
 * The task's one browser and one registry session: Chromium is launched on
 * the first job and reused; each job gets a fresh context that starts from
 * the session's cookies (and hands back the ones the site rotated), so the
 * task logs in once and again only when the site ends the session. After an
 * unexpected page or a timeout the session is suspect and is verified (a
 * search page must show its form) before the next job. Closing logs out,
 * closes the browser (and with it every Chromium process) and gives the
 * account back.
 */
import { setTimeout as delay } from "node:timers/promises";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright";
import { InfrastructureError } from "../lifecycle/job-errors.ts";
import type { Logger } from "../lifecycle/structured-log.ts";
import { INDEX_SEARCH_PATH } from "./pages/lot-search-page.ts";
import { logoutLink } from "./pages/login-page.ts";
import { openAndRead } from "./pages/page-snapshot.ts";
import type { RegistreConfig } from "./registre-config.ts";
import { RegistryAccounts } from "./registry-accounts.ts";
import { LoginRefusedError, RegistryAccountError, RegistryUnavailableError } from "./registry-failures.ts";
import { signIn } from "./registry-login.ts";
import { readLoginProof } from "./site-outcome.ts";

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

/**
 * Chromium's sandbox on wherever it can run: never as root (Chromium refuses
 * it); as another user it is tried first, and turned off (Playwright's
 * `--no-sandbox`) only when it fails to start, as it does on Fargate, which
 * offers no user namespaces. The image runs as `node` (runners/registre/Dockerfile).
 */
export function sandboxAllowed(): boolean {
  return typeof process.getuid === "function" && process.getuid() !== 0;
}

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
  /** An unexpected page or a timeout: the session may be dead; verify before trusting it. */
  #suspect = false;

  readonly #sharedBrowser: (() => Promise<Browser>) | undefined;
  /** When this session's account last started a document (the per-account pace). */
  #lastDocumentAt = 0;

  /**
   * `options.browser`: a Chromium shared by several sessions (one context
   * each, each with its own account); its owner closes it.
   */
  constructor(config: RegistreConfig, accounts: RegistryAccounts, log: Logger, options: { readonly browser?: () => Promise<Browser> } = {}) {
    this.#config = config;
    this.#accounts = accounts;
    this.#log = log;
    this.#sharedBrowser = options.browser;
  }

  /**
   * Waits until this account may start another document: at most one every
   * REGISTRE_ACCOUNT_PACE_SECONDS, so no account hits the site faster than a
   * careful person would.
   */
  async pace(signal: AbortSignal): Promise<void> {
    const waitMs = this.#lastDocumentAt + this.#config.accountPaceMs - Date.now();
    if (waitMs > 0) await delay(waitMs, undefined, { signal });
    this.#lastDocumentAt = Date.now();
  }

  /**
   * Whether the session holds a registry account, leasing one if any is
   * free: a slot whose session has none claims no job (claim-loop.ts), since
   * a job claimed without an account could only be released again.
   */
  async holdsAccount(): Promise<boolean> {
    if (this.#closed) return false;
    return (await this.#accounts.lease()) !== undefined;
  }

  /** A fresh context and page for one job, carrying the session's cookies. */
  async openJobPage(): Promise<{ context: BrowserContext; page: Page; generation: number }> {
    if (this.#closed) throw new InfrastructureError("the registry session is closed (the runner is stopping)");
    const browser = await this.#launch();
    let context: BrowserContext;
    try {
      context = await browser.newContext({ acceptDownloads: true, ...browserIdentity(browser.version()) });
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
    let needsLogin = this.#cookies === undefined || this.#accounts.held === undefined || staleGeneration === this.#generation;
    if (!needsLogin && this.#suspect && this.#cookies !== undefined) {
      await context.addCookies(this.#cookies);
      needsLogin = !(await this.#verify(page));
    }
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
      try {
        await signIn(page, this.#config.registryBaseUrl, account, this.#config.navigationTimeoutMs);
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
      this.#suspect = false;
      this.#log.info("logged in to the registry", { account_id: account.accountId, session_generation: this.#generation });
      return;
    }
    throw new RegistryAccountError(`the registry refused ${MAX_ACCOUNTS_PER_LOGIN} accounts in a row; check registry_account_health`);
  }

  /** Whether the session's cookies still open a search page showing its form. */
  async #verify(page: Page): Promise<boolean> {
    try {
      const snapshot = await openAndRead(page, `${this.#config.registryBaseUrl}${INDEX_SEARCH_PATH}`, this.#config.navigationTimeoutMs);
      readLoginProof(snapshot);
      this.#suspect = false;
      this.#log.info("registry session verified after an unexpected page");
      return true;
    } catch (error) {
      if (error instanceof RegistryUnavailableError) throw error;
      this.#log.info("registry session no longer valid; logging in again", { error: firstLine(error) });
      this.#cookies = undefined;
      return false;
    }
  }

  /** What a trace must never show: the account's credentials and the session's cookies. */
  secretValues(): string[] {
    const account = this.#accounts.held;
    return [...(account === undefined ? [] : [account.username, account.password]), ...(this.#cookies ?? []).map((cookie) => cookie.value)];
  }

  /** The registry account the session is logged in with (purchases are charged to it). */
  get accountId(): string | undefined {
    return this.#accounts.held?.accountId;
  }

  /** The job saw an unexpected page or a timeout: verify the session before the next job. */
  markSuspect(): void {
    this.#suspect = true;
  }

  /** Keeps the cookies the site set during a job of this generation (it may rotate them). */
  async keepCookies(context: BrowserContext, generation: number): Promise<void> {
    if (generation !== this.#generation || this.#cookies === undefined) return;
    this.#cookies = await context.cookies().catch(() => this.#cookies);
  }

  /** Forgets the session (the site ended it). */
  invalidate(generation: number): void {
    if (generation === this.#generation) this.#cookies = undefined;
  }

  async #launch(): Promise<Browser> {
    if (this.#sharedBrowser !== undefined) return this.#sharedBrowser();
    this.#browser ??= launchChromium(this.#config, this.#log).then((browser) => {
      browser.on("disconnected", () => {
        if (!this.#closed) this.#log.warn("chromium went away; the next job starts a new one");
        this.#browser = undefined;
      });
      return browser;
    });
    this.#browser.catch(() => {
      this.#browser = undefined;
    });
    return this.#browser;
  }

  /**
   * Ends the site's session, so the account is free for its next login (the
   * site allows one session per account). The logout link's address and
   * label are not in the evidence: when none is found, the session is left
   * to time out (20 minutes idle, the Guide).
   */
  async #logOut(browser: Promise<Browser>, cookies: Cookies): Promise<void> {
    const timeout = this.#config.navigationTimeoutMs;
    try {
      const context = await (await browser).newContext(browserIdentity((await browser).version()));
      try {
        await context.addCookies(cookies);
        const page = await context.newPage();
        await page.goto(`${this.#config.registryBaseUrl}${INDEX_SEARCH_PATH}`, { timeout });
        const link = logoutLink(page).first();
        if ((await link.count()) === 0) {
          this.#log.info("no logout link found; the registry session will time out");
          return;
        }
        await link.click({ timeout });
        await page.waitForLoadState("domcontentloaded", { timeout });
        this.#log.info("logged out of the registry");
      } finally {
        await context.close().catch(() => {});
      }
    } catch (error) {
      this.#log.warn("logging out of the registry failed; the session will time out", { error: firstLine(error) });
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    const browser = this.#browser;
    this.#browser = undefined;
    const forLogout = browser ?? this.#sharedBrowser?.();
    if (forLogout !== undefined && this.#cookies !== undefined) await this.#logOut(forLogout, this.#cookies);
    this.#cookies = undefined;
    if (browser !== undefined) {
      await browser
        .then((opened) => opened.close())
        .catch((error: unknown) => this.#log.warn("closing chromium failed", { error: firstLine(error) }));
      this.#log.info("chromium closed");
    }
    await this.#accounts.release();
  }
}

/** Starts Chromium, its sandbox on where it can run (see sandboxAllowed). */
export function launchChromium(config: RegistreConfig, log?: Logger): Promise<Browser> {
  // handleSIGTERM/SIGINT/SIGHUP off: by default Playwright closes the browser the moment the process gets
  // SIGTERM ("Close the browser process on SIGTERM. Defaults to true.", playwright.dev/docs/api/class-browsertype
  // #browser-type-launch, as the Rust port's docs.rs Launcher::handle_sigterm repeats), which failed the search
  // in flight and spent an attempt on a Spot reclaim. The runner lifecycle owns shutdown: it lets the job finish
  // within SHUTDOWN_GRACE_SECONDS or releases it, then the session closes Chromium (close() above).
  const launch = (sandbox: boolean) =>
    chromium.launch({
      executablePath: config.chromiumPath,
      headless: true,
      args: [...CHROMIUM_ARGS],
      chromiumSandbox: sandbox,
      handleSIGTERM: false,
      handleSIGINT: false,
      handleSIGHUP: false,
    });
  return (
    sandboxAllowed()
      ? launch(true).catch((error: unknown) => {
          // Fargate gives no user namespaces; the sandbox cannot start there, and only then is it turned off.
          log?.warn("chromium's sandbox cannot run here; starting without it", { error: firstLine(error) });
          return launch(false);
        })
      : launch(false)
  ).then(
    (browser) => {
      log?.info("chromium started", { version: browser.version() });
      return browser;
    },
    (error: unknown) => {
      throw new InfrastructureError(`Chromium could not start: ${firstLine(error)}`, { cause: error });
    },
  );
}

/**
 * A normal desktop identity: the Chromium's own version without the
 * "HeadlessChrome" token headless mode puts in the user agent, French
 * (Canada) as a Quebec notary's browser would be, Montreal's time zone.
 */
export function browserIdentity(version: string): { userAgent: string; locale: string; timezoneId: string; viewport: { width: number; height: number } } {
  const major = /^\d+/.exec(version)?.[0] ?? "0";
  return {
    userAgent: `Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/${major}.0.0.0 Safari/537.36`,
    locale: "fr-CA",
    timezoneId: "America/Toronto",
    viewport: { width: 1366, height: 768 },
  };
}

export function firstLine(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.split("\n")[0] ?? text;
}
