import type { Locator, Page } from "playwright";
import { LoginRefusedError } from "../registry-failures.ts";
import { MESSAGE_CELL, waitForOutcome, SUBMIT_CLICK } from "./page-outcome.ts";

/** The site's front page (`/Sirf/`), whose entry link leads to the login form. */
export class EntryPage {
  /** The link carries no stable text; the script it opens is the one fixed thing about it. */
  readonly entryLink: Locator;

  constructor(
    readonly page: Page,
    readonly baseUrl: string,
  ) {
    this.entryLink = page.locator('a[href*="pf_14_06_01_reglr"]');
  }

  async open(): Promise<void> {
    await this.page.goto(`${this.baseUrl}/Sirf/`);
  }

  async enter(): Promise<LoginPage> {
    await this.entryLink.click();
    const login = new LoginPage(this.page);
    await login.userCode.waitFor();
    return login;
  }
}

/** "Code d'utilisateur", "Mot de passe", "Soumettre". */
export class LoginPage {
  readonly userCode: Locator;
  readonly password: Locator;
  readonly submitButton: Locator;
  readonly message: Locator;
  /** Any search script's link: what a logged-in page shows. */
  readonly loggedInMarker: Locator;

  constructor(readonly page: Page) {
    this.userCode = page.getByLabel("Code d'utilisateur");
    this.password = page.getByLabel("Mot de passe");
    this.submitButton = page.getByRole("button", { name: "Soumettre" });
    this.message = page.locator(MESSAGE_CELL);
    this.loggedInMarker = page.locator('a[href*="pf_13_01_11"]');
  }

  /** Logs in; throws LoginRefusedError (never quoting the credentials) when the site refuses. */
  async logIn(username: string, password: string, timeoutMs: number): Promise<void> {
    await this.userCode.fill(username);
    await this.password.fill(password);
    await this.submitButton.click(SUBMIT_CLICK);
    const outcome = await waitForOutcome(this.page, { refused: this.message, loggedIn: this.loggedInMarker }, timeoutMs);
    if (outcome === "refused") {
      const text = ((await this.message.first().textContent()) ?? "").replace(/\s+/g, " ").trim();
      throw new LoginRefusedError(`the registry refused the login: ${text}`);
    }
  }
}
