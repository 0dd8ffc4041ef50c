/**
 * Waiting for whichever page a submission leads to. The registry answers a
 * search with one of several pages (the document, a message, a list, the
 * entry page when the session expired); each caller names the ones it
 * expects, as locators, and gets back which one appeared. A failed
 * navigation (net::ERR_…) ends the wait at once instead of at the timeout.
 */
import type { Locator, Page, Request } from "playwright";
import { NavigationFailedError, SessionExpiredError, SiteMessageError, UnexpectedPageError } from "../registry-failures.ts";

/** The site's message cell. Its words are the row's error message. */
export const MESSAGE_CELL = "td.contValErr";
/** How the site words an idle session's end, on its entry page. */
const SESSION_EXPIRED_TEXT = /session.*expir/i;

export async function waitForOutcome<K extends string>(page: Page, outcomes: Readonly<Record<K, Locator>>, timeoutMs: number): Promise<K> {
  const entries = Object.entries(outcomes) as [K, Locator][];
  const [first, ...rest] = entries.map(([, locator]) => locator);
  if (first === undefined) throw new Error("waitForOutcome needs at least one outcome");
  const any = rest.reduce((all, locator) => all.or(locator), first);

  let onFailed: ((request: Request) => void) | undefined;
  const navigationFailed = new Promise<never>((_, reject) => {
    onFailed = (request: Request) => {
      if (request.isNavigationRequest() && request.frame() === page.mainFrame()) {
        reject(new NavigationFailedError(`loading ${new URL(request.url()).pathname} failed: ${request.failure()?.errorText ?? "unknown network error"}`));
      }
    };
    page.on("requestfailed", onFailed);
  });
  navigationFailed.catch(() => {});
  try {
    // A page can replace another between the wait and the count (the site
    // reloads forms); look again until one outcome is there or time is up.
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      await Promise.race([any.first().waitFor({ state: "attached", timeout: Math.max(1, deadline - Date.now()) }), navigationFailed]);
      for (const [key, locator] of entries) if ((await locator.count()) > 0) return key;
      if (Date.now() >= deadline) throw new UnexpectedPageError(`none of ${entries.map(([key]) => key).join(", ")} appeared on ${page.url()}`);
    }
  } finally {
    if (onFailed !== undefined) page.off("requestfailed", onFailed);
  }
}

/**
 * Reads the message cell: an expired session becomes SessionExpiredError,
 * anything else the site's own words as a final failure.
 */
export async function throwSiteMessage(page: Page): Promise<never> {
  const text = ((await page.locator(MESSAGE_CELL).first().textContent()) ?? "").replace(/\s+/g, " ").trim();
  if (SESSION_EXPIRED_TEXT.test(text)) throw new SessionExpiredError(`the registry ended the session: ${text}`);
  throw new SiteMessageError(text === "" ? "the registry showed an empty error message" : text);
}

/** The outcomes every page of a logged-in session can lead to besides its own. */
export function sessionOutcomes(page: Page) {
  return {
    message: page.locator(MESSAGE_CELL),
    // The site sends an expired session to its entry page (with a notice) or its login form.
    entryPage: page.locator('a[href*="pf_14_06_01_reglr"]'),
    loginForm: page.getByLabel("Code d'utilisateur"),
  } as const;
}

/** Turns the common outcomes into the right error; returns for the caller's own outcomes. */
export async function handleSessionOutcome(page: Page, outcome: string): Promise<void> {
  if (outcome === "message") await throwSiteMessage(page);
  if (outcome === "entryPage" || outcome === "loginForm") throw new SessionExpiredError("the registry showed its entry page: the session expired");
}

/**
 * A click that submits a search returns once the click is done: the
 * answer can take minutes, and waitForOutcome waits for it with the result
 * timeout. (By default a click waits for the navigation it starts, bounded
 * by the much shorter action timeout.)
 */
export const SUBMIT_CLICK = { noWaitAfter: true } as const;
