/**
 * The one place that decides what a registry page means for the job: page
 * objects report what the page shows (page-snapshot.ts), this says whether
 * it is the next step, the document's failure (final or retryable), the
 * account's, the session's, or the registry's.
 *
 * Evidence (PX = Paraito/registre-extractor at dc82c0e; see domain.md §2):
 * - only the four "does not exist" messages are final (PX
 *   archive/docs/ERROR_RESOLUTION_SUMMARY.md §4, src/worker/extractor-ai.ts:1051-1086);
 * - "Lot … est inactif" on plans is not an error (PX AI:173-178);
 * - the similar-numbers notice comes with a list on the same page (PX AI:181-187);
 * - session, login, account and payment messages are not the document's
 *   (domain.md §2); their exact wording is not in the evidence, so they are
 *   recognised by words, and anything else is an unknown message: retryable,
 *   flagged for staff, page kept;
 * - a maintenance page, a 5xx, a firewall page, any page with none of the
 *   site's markers: the registry is unavailable.
 */
import { normalizeOptionText } from "./option-matching.ts";
import type { ChoiceRow, PageSnapshot } from "./pages/page-snapshot.ts";
import { DocumentNotFoundError, LoginRefusedError, RegistryAccountError, RegistryUnavailableError, SessionExpiredError, UnknownSiteMessageError } from "./registry-failures.ts";

export const NOT_FOUND_MESSAGES = [
  "La fiche immobilière demandée est inexistante",
  "Aucune information ne correspond aux critères de sélection",
  "Le document demandé est inexistant",
  "Le lot n'existe pas dans la circonscription foncière demandée",
] as const;

const NOT_FOUND = NOT_FOUND_MESSAGES.map(normalizeOptionText);
const INACTIVE_LOT = /\blot\b.*\best inactif\b/i;
const SIMILAR_NOTICE = /num[ée]ro est semblable/i;
const SESSION = /\bsession\b/i;
/** Words of messages about the login, the account, its privileges or its payment card. */
const ACCOUNT = /mot de passe|code d.utilisateur|\bcompte\b|dossier client|carte|paiement|cr[ée]dit|factur|privil[èe]ge|acc[èe]s refus|association|identifi/i;

/** What a page is, once its messages have been judged. */
export type PageKind = "document" | "confirmation" | "choices" | "searchForm";

export interface PageReading {
  readonly kind: PageKind;
  readonly choiceRows: readonly ChoiceRow[];
  /** Messages the page showed that are not failures ("Lot … est inactif", the similar-numbers notice). */
  readonly notices: readonly string[];
}

/**
 * Reads a page of a logged-in session. Throws the classified failure when
 * the page is one (a final "does not exist", the session's end, the
 * account's refusal, an unknown message, the registry unavailable); returns
 * what the page is otherwise.
 */
export function readSessionPage(snapshot: PageSnapshot): PageReading {
  if (snapshot.status !== undefined && snapshot.status >= 500) {
    throw new RegistryUnavailableError(`the registry answered HTTP ${snapshot.status} on ${pathOf(snapshot.url)}`);
  }
  const notices: string[] = [];
  for (const message of snapshot.messages) {
    const key = normalizeOptionText(message);
    if (NOT_FOUND.some((known) => key.includes(known))) throw new DocumentNotFoundError(message);
    if (INACTIVE_LOT.test(message)) notices.push(message);
    else if (SIMILAR_NOTICE.test(message) && snapshot.choiceRows.length > 0) notices.push(message);
    else if (SESSION.test(message)) throw new SessionExpiredError(`the registry ended the session: ${message}`);
    else if (ACCOUNT.test(message)) throw new RegistryAccountError(`the registry refused the account: ${message}`);
    else throw new UnknownSiteMessageError(message);
  }
  if (snapshot.loginForm || snapshot.entry) throw new SessionExpiredError("the registry showed its entry page or login form: the session ended");
  const kind: PageKind | undefined = snapshot.documentFrames
    ? "document"
    : snapshot.confirmButton
      ? "confirmation"
      : snapshot.choiceRows.length > 0
        ? "choices"
        : snapshot.searchForm
          ? "searchForm"
          : undefined;
  if (kind === undefined) {
    throw new RegistryUnavailableError(
      `the registry showed a page with none of its known markers (${pathOf(snapshot.url)}, HTTP ${snapshot.status ?? "?"}, title «${snapshot.title}»): maintenance, a firewall or an outage`,
    );
  }
  return { kind, choiceRows: snapshot.choiceRows, notices };
}

/** A row's number as the flows compare it: digits and letters only. */
export function numberKey(text: string): string {
  return normalizeOptionText(text).replace(/\s/g, "");
}

function pathOf(url: string): string {
  try {
    return new URL(url).pathname;
  } catch {
    return url;
  }
}

/**
 * The login form's answer. Any message there is a refusal (its wording is
 * not in the evidence); the form again is a refusal; a 5xx is the registry.
 * Anything else goes on to the proof (readLoginProof).
 */
export function readLoginAnswer(snapshot: PageSnapshot): void {
  if (snapshot.status !== undefined && snapshot.status >= 500) throw new RegistryUnavailableError(`the registry answered the login with HTTP ${snapshot.status}`);
  if (snapshot.messages.length > 0) throw new LoginRefusedError(`the registry refused the login: ${snapshot.messages.join(" / ")}`);
  if (snapshot.loginForm) throw new LoginRefusedError("the registry showed the login form again");
}

/**
 * A login is proven by a search page showing its form (issue 17: not by a
 * link in the main frame; a welcome page follows the login, the Guide). The
 * entry or the login form instead: the login did not take, whatever the
 * site said, and that counts against the account. A page with none of the
 * markers: the registry.
 */
export function readLoginProof(snapshot: PageSnapshot): void {
  if (snapshot.status !== undefined && snapshot.status >= 500) throw new RegistryUnavailableError(`the registry answered HTTP ${snapshot.status} after the login`);
  if (snapshot.searchForm && snapshot.messages.length === 0) return;
  if (snapshot.loginForm || snapshot.entry || snapshot.messages.length > 0) {
    const said = snapshot.messages.length > 0 ? `: ${snapshot.messages.join(" / ")}` : "";
    throw new LoginRefusedError(`the login opened no session (the search page showed the entry or a message)${said}`);
  }
  throw new RegistryUnavailableError(`after the login the search page showed none of its markers (${pathOf(snapshot.url)}, title «${snapshot.title}»)`);
}
