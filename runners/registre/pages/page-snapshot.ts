/**
 * What a registry page shows, read once the page has loaded: its HTTP
 * status, its messages (`td.contValErr`), and which of the site's known
 * markers are on it. Page objects return this and decide nothing; the flows
 * decide (site-outcome.ts).
 *
 * Markers and their sources (PX = Paraito/registre-extractor at dc82c0e,
 * src/worker/extractor-ai.ts; SIRF-py = the public client validated on the
 * live site 2026-05-21):
 * - messages: `td.contValErr` (PX AI:165-210);
 * - the result: a frameset with frames `menu` and `page` (PX AI:2245-2285);
 * - "Confirmer": `#btnConfr` (PX AI:1902), page `confr_demnd` (PX AI:1972);
 * - a list to choose from: rows with a radio button, paper-only rows with a
 *   `BPD.GIF` image (PX AI:2017-2200, 1755-1770);
 * - a search form: `#selCircnFoncr` (PX AI:718, 1419);
 * - the login form: `txtVaCodeUtils` (SIRF-py); the entry: an `a` or `area`
 *   to `pf_14_06_01_reglr`, or an image whose alt names the registry (PX AI:347-351).
 */
import type { Locator, Page, Request, Response } from "playwright";
import { NavigationFailedError } from "../registry-failures.ts";

export interface ChoiceRow {
  /** Position among the page's radio rows. */
  readonly index: number;
  /** The row's cells, trimmed, spacing collapsed. */
  readonly cells: readonly string[];
  /** The row carries the paper-only image (`BPD.GIF`). */
  readonly paperOnly: boolean;
}

export interface PageSnapshot {
  readonly url: string;
  /** The main document's HTTP status; undefined when the page came from no response (about:blank, a script). */
  readonly status: number | undefined;
  readonly title: string;
  readonly messages: readonly string[];
  readonly documentFrames: boolean;
  readonly confirmButton: boolean;
  readonly choiceRows: readonly ChoiceRow[];
  readonly searchForm: boolean;
  readonly loginForm: boolean;
  readonly entry: boolean;
}

export const MESSAGE_CELL = "td.contValErr";
export const ENTRY_LINK = 'a[href*="pf_14_06_01_reglr"], area[href*="pf_14_06_01_reglr"]';
export const ENTRY_IMAGE = 'img[alt*="Registre foncier"]';
export const LOGIN_USER_FIELD = 'input[name="txtVaCodeUtils"]';
/**
 * Rows offering a radio to choose: innermost rows only (a layout table's row
 * holds the whole list), outside the search form (whose display-order radios
 * are not a choice of document).
 */
export const CHOICE_ROWS = 'form:not(:has(#selCircnFoncr)) tr:has(> td input[type="radio"]):not(:has(tr))';

const collapse = (text: string) => text.replace(/\s+/g, " ").trim();

export async function readPage(page: Page, status: number | undefined): Promise<PageSnapshot> {
  const count = (selector: string) => page.locator(selector).count();
  const rows = page.locator(CHOICE_ROWS);
  const choiceRows: ChoiceRow[] = [];
  for (let index = 0, total = await rows.count(); index < total; index += 1) {
    const row = rows.nth(index);
    const cells = (await row.locator("> td").allTextContents()).map(collapse);
    choiceRows.push({ index, cells, paperOnly: (await row.locator('img[src*="BPD.GIF" i]').count()) > 0 });
  }
  return {
    url: page.url(),
    status,
    title: collapse(await page.title()),
    messages: (await page.locator(MESSAGE_CELL).allTextContents()).map(collapse).filter((text) => text !== ""),
    documentFrames: (await count('frame[name="page"], frame[name="menu"], iframe[name="page"]')) > 0,
    confirmButton: (await count("#btnConfr")) > 0,
    choiceRows,
    searchForm: (await count("#selCircnFoncr")) > 0,
    loginForm: (await count(LOGIN_USER_FIELD)) > 0,
    entry: (await count(`${ENTRY_LINK}, ${ENTRY_IMAGE}`)) > 0,
  };
}

export interface AnswerTimeouts {
  /** Until the registry answers (a search's result can take minutes). */
  readonly answerMs: number;
  /** Then until the answered page has loaded. */
  readonly loadMs: number;
}

/**
 * Does `action` (a click, a submit, a goto) and reads the page the main
 * frame lands on. Waits for the main frame's next committed navigation, not
 * for markers, so an unknown page (maintenance, a firewall) is read as it is
 * instead of waited on until the timeout; a failed navigation (net::ERR_…)
 * ends the wait at once.
 */
export async function actAndRead(page: Page, action: () => Promise<unknown>, timeouts: AnswerTimeouts): Promise<PageSnapshot> {
  const mainFrame = page.mainFrame();
  let status: number | undefined;
  const onResponse = (response: Response) => {
    const request = response.request();
    // A redirect's 302 is not the page's status; the last answer is.
    if (request.isNavigationRequest() && request.frame() === mainFrame && (response.status() < 300 || response.status() >= 400)) status = response.status();
  };
  let onFailed: ((request: Request) => void) | undefined;
  const failed = new Promise<never>((_, reject) => {
    onFailed = (request: Request) => {
      // An abort is not a failure of the site: a navigation replaced by the next one, a download,
      // or a redirect Playwright replays as a new navigation (routeFromHAR).
      if (request.failure()?.errorText === "net::ERR_ABORTED") return;
      if (request.isNavigationRequest() && request.frame() === mainFrame) {
        reject(new NavigationFailedError(`loading ${new URL(request.url()).pathname} failed: ${request.failure()?.errorText ?? "unknown network error"}`));
      }
    };
  });
  failed.catch(() => {});
  page.on("response", onResponse);
  if (onFailed !== undefined) page.on("requestfailed", onFailed);
  try {
    const navigated = page.waitForEvent("framenavigated", { predicate: (frame) => frame === mainFrame, timeout: timeouts.answerMs });
    navigated.catch(() => {});
    await Promise.race([action(), failed]);
    await Promise.race([navigated, failed]);
    await Promise.race([page.waitForLoadState("domcontentloaded", { timeout: timeouts.loadMs }), failed]);
    return await readPage(page, status);
  } finally {
    page.off("response", onResponse);
    if (onFailed !== undefined) page.off("requestfailed", onFailed);
  }
}

/** Opens `url` and reads it. */
export async function openAndRead(page: Page, url: string, timeoutMs: number): Promise<PageSnapshot> {
  return actAndRead(page, () => page.goto(url, { waitUntil: "commit", timeout: timeoutMs }), { answerMs: timeoutMs, loadMs: timeoutMs });
}

/**
 * A click that submits returns once the click is done: the answer can take
 * minutes, and actAndRead waits for it with the answer timeout. (By default a
 * click waits for the navigation it starts, bounded by the much shorter
 * action timeout.)
 */
export const SUBMIT_CLICK = { noWaitAfter: true } as const;

/** Clicks `button` and reads the answer. */
export function submitAndRead(page: Page, button: Locator, timeouts: AnswerTimeouts): Promise<PageSnapshot> {
  return actAndRead(page, () => button.click(SUBMIT_CLICK), timeouts);
}
