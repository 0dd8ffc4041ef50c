/**
 * The registre runner's own failure types, each an instance of the one
 * classification (job-errors.ts) so the lifecycle treats it right even when
 * it escapes: the site's "does not exist" answers are final, an expired
 * session is retryable (the flow logs in again once before giving up).
 */
import { FinalJobError, RetryableJobError } from "../lifecycle/job-errors.ts";

/** The site answered the search with one of its messages (cell `td.contValErr`): the input can never succeed. */
export class SiteMessageError extends FinalJobError {
  constructor(readonly siteMessage: string) {
    super(siteMessage);
  }
}

/** The row names a circonscription, cadastre, type or designation the site does not offer. */
export class OptionNotFoundError extends FinalJobError {}

/** The site sent us back to its entry page or login form: the session idled out or was displaced. */
export class SessionExpiredError extends RetryableJobError {
  constructor(detail = "the registry session expired") {
    super(detail);
  }
}

/** The registry refused the account's login (wrong password, locked): the account's fault, not the document's. */
export class LoginRefusedError extends Error {
  override readonly name = "LoginRefusedError";
}

/** A page load or form submission failed at the network level (net::ERR_…). */
export class NavigationFailedError extends Error {
  override readonly name = "NavigationFailedError";
}

/** The site answered something none of the expected pages look like. */
export class UnexpectedPageError extends RetryableJobError {}
