/**
 * The registre runner's own failure types, each an instance of the one
 * classification (runners/lifecycle/job-errors.ts) with the kind recorded on
 * the row, so the lifecycle treats it right even when it escapes. Which page
 * leads to which one is decided in one place: site-outcome.ts.
 */
import { FinalJobError, InfrastructureError, RetryableJobError } from "../lifecycle/job-errors.ts";

/** The registry says the document does not exist, in its own words. */
export class DocumentNotFoundError extends FinalJobError {
  constructor(readonly siteMessage: string) {
    super(siteMessage, { kind: "document_not_found" });
  }
}

/** The row can never succeed as written: no exact number on the site, paper only, an option the site does not offer. */
export class InvalidRequestError extends FinalJobError {
  constructor(message: string) {
    super(message, { kind: "invalid_input" });
  }
}

/** The row names a circonscription, cadastre, type or designation the site does not offer. */
export class OptionNotFoundError extends InvalidRequestError {}

/** The site showed a message nobody recognised: spend an attempt, keep the page, and staff should look. */
export class UnknownSiteMessageError extends RetryableJobError {
  constructor(readonly siteMessage: string) {
    super(`the registry showed a message the runner does not know: «${siteMessage}»`, { kind: "needs_attention" });
  }
}

/** The site sent us back to its entry page or login form, or said the session ended: log in again. */
export class SessionExpiredError extends RetryableJobError {
  constructor(detail = "the registry session expired") {
    super(detail, { kind: "document_retryable" });
  }
}

/**
 * The registry refused the account (login, a locked account, a payment card,
 * privileges): the account's fault, not the document's; the job is released
 * without spending an attempt.
 */
export class RegistryAccountError extends InfrastructureError {
  constructor(message: string) {
    super(message, { kind: "account" });
  }
}

/** The login did not open a session; the session tries another account. */
export class LoginRefusedError extends RegistryAccountError {}

/**
 * The registry is not serving: maintenance, an HTTP 5xx, a firewall, or a page
 * with none of the site's markers. No attempt is spent and registre dispatch
 * pauses for everyone (the shared cooldown).
 */
export class RegistryUnavailableError extends InfrastructureError {
  constructor(message: string) {
    super(message, { kind: "registry_unavailable" });
  }
}

/** A page load or form submission failed at the network level (net::ERR_…). */
export class NavigationFailedError extends Error {
  override readonly name = "NavigationFailedError";
}

/** The site answered a known page, but not one this step can lead to (a search form where a result was due). */
export class UnexpectedPageError extends RetryableJobError {
  constructor(message: string) {
    super(message, { kind: "needs_attention" });
  }
}
