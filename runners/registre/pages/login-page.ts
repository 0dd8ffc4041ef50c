/**
 * The site's front page and its login form. The entry (`/Sirf/`) leads to
 * the login by a link, an image-map `<area>` or a clickable image (PX =
 * Paraito/registre-extractor dc82c0e, src/worker/extractor-ai.ts:347-351);
 * the form (SIRF-py, validated on the live site 2026-05-21) sits at
 * `/Sirf/Script/14_06_01-02/pf_14_06_01_reglr.asp` with fields
 * `txtVaCodeUtils` and `txtMotPasse` and no `<label>`s, so the fields' names
 * are the locators. Page objects report what the page shows; whether the
 * login worked is the session's decision (registry-session.ts).
 */
import type { Locator, Page } from "playwright";
import { actAndRead, ENTRY_IMAGE, ENTRY_LINK, LOGIN_USER_FIELD, openAndRead, type PageSnapshot } from "./page-snapshot.ts";

/** SIRF-py `_SIRF_LOGIN_URL`: the login form can also be opened directly. */
export const LOGIN_PATH = "/Sirf/Script/14_06_01-02/pf_14_06_01_reglr.asp";

export class EntryPage {
  readonly entryLink: Locator;
  readonly entryImage: Locator;

  constructor(
    readonly page: Page,
    readonly baseUrl: string,
    readonly timeoutMs: number,
  ) {
    this.entryLink = page.locator(ENTRY_LINK);
    this.entryImage = page.locator(ENTRY_IMAGE);
  }

  open(): Promise<PageSnapshot> {
    return openAndRead(this.page, `${this.baseUrl}/Sirf/`, this.timeoutMs);
  }

  /**
   * Follows the entry to the login form: an `a` or `area` by its href (an
   * `<area>` has no box of its own to click), else the image, else the
   * login's known address.
   */
  async enter(): Promise<PageSnapshot> {
    const href = (await this.entryLink.count()) > 0 ? await this.entryLink.first().getAttribute("href") : null;
    if (href !== null) return openAndRead(this.page, new URL(href, this.page.url()).toString(), this.timeoutMs);
    if ((await this.entryImage.count()) > 0) {
      const image = this.entryImage.first();
      return actAndRead(this.page, () => image.click(), { answerMs: this.timeoutMs, loadMs: this.timeoutMs });
    }
    return openAndRead(this.page, `${this.baseUrl}${LOGIN_PATH}`, this.timeoutMs);
  }
}

export class LoginPage {
  readonly userCode: Locator;
  readonly password: Locator;
  /** Named `btnSoumt` (SIRF-py posts `txtBoutn=btnSoumt`); its label is not in the evidence. */
  readonly submitButton: Locator;

  constructor(
    readonly page: Page,
    readonly timeoutMs: number,
  ) {
    this.userCode = page.locator(LOGIN_USER_FIELD);
    this.password = page.locator('input[name="txtMotPasse"]');
    this.submitButton = page.locator('[name="btnSoumt"], #btnSoumt');
  }

  /** Fills and submits the form; returns the page the site answers with (never quoting the credentials). */
  async submit(username: string, password: string): Promise<PageSnapshot> {
    await this.userCode.fill(username);
    await this.password.fill(password);
    const button = this.submitButton.first();
    const hasButton = (await this.submitButton.count()) > 0;
    // Without a known button, Enter submits the form the same way (the hidden txtBoutn names the button).
    return actAndRead(this.page, () => (hasButton ? button.click({ noWaitAfter: true }) : this.password.press("Enter", { noWaitAfter: true })), {
      answerMs: this.timeoutMs,
      loadMs: this.timeoutMs,
    });
  }
}

/** A link that ends the session; neither its address nor its label is in the evidence, so a few plausible labels. */
export function logoutLink(page: Page): Locator {
  return page.getByRole("link", { name: /^(Quitter|Fermer la session|Déconnexion|Se déconnecter)$/i });
}
