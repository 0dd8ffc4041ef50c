/**
 * Logging in, per the evidence: the front page, its entry (link, image-map
 * `<area>` or image; PX = Paraito/registre-extractor dc82c0e,
 * src/worker/extractor-ai.ts:347-351), the form at `14_06_01-02` (SIRF-py),
 * then the proof: a search page showing its form (a welcome page comes
 * first, the Guide, and proves nothing). What each answer means is decided
 * in site-outcome.ts: a refusal is the account's (LoginRefusedError), an
 * outage the registry's.
 */
import type { Page } from "playwright";
import { EntryPage, LoginPage } from "./pages/login-page.ts";
import { INDEX_SEARCH_PATH } from "./pages/lot-search-page.ts";
import { openAndRead } from "./pages/page-snapshot.ts";
import { RegistryUnavailableError } from "./registry-failures.ts";
import { readLoginAnswer, readLoginProof } from "./site-outcome.ts";

export async function signIn(page: Page, baseUrl: string, credentials: { readonly username: string; readonly password: string }, timeoutMs: number): Promise<void> {
  const entry = new EntryPage(page, baseUrl, timeoutMs);
  const front = await entry.open();
  if (front.status !== undefined && front.status >= 500) throw new RegistryUnavailableError(`the registry's front page answered HTTP ${front.status}`);
  const form = await entry.enter();
  if (!form.loginForm) {
    if (form.status !== undefined && form.status >= 500) throw new RegistryUnavailableError(`the registry's login page answered HTTP ${form.status}`);
    throw new RegistryUnavailableError(`the registry's entry led to no login form (${form.url}, title «${form.title}»)`);
  }
  readLoginAnswer(await new LoginPage(page, timeoutMs).submit(credentials.username, credentials.password));
  readLoginProof(await openAndRead(page, `${baseUrl}${INDEX_SEARCH_PATH}`, timeoutMs));
}
