/**
 * The registre job: fetch the row's document from the registry with the
 * task's browser and session, store the PDF, and hand back its
 * `bucket/filename`. What each registry page means is decided in
 * site-outcome.ts; here every failure leaves as one of the classification's
 * kinds (job-errors.ts), recorded on the row:
 * - "does not exist" (document_not_found), no exact number, paper only, an
 *   option the site lacks (invalid_input): final;
 * - timeouts and failed navigations (document_retryable), unknown messages
 *   and pages out of sequence (needs_attention): retryable, page kept;
 * - the account refused, or fresh sessions ended twice (account): released;
 * - maintenance, 5xx, a page with no known marker, the registry unreachable
 *   (checked with a plain request, so a slow page is never mistaken for an
 *   outage) (registry_unavailable): released, and registre dispatch pauses
 *   for everyone through the shared cooldown;
 * - no browser, no storage (infrastructure): released.
 * After a timeout or an unexpected page the session is verified before the
 * next job.
 */
import { errors as playwrightErrors } from "playwright";
import type { RegistryCooldown } from "../../supabase/functions/_shared/registry-cooldown.ts";
import { classifyFailure, FinalJobError, InfrastructureError, RetryableJobError } from "../lifecycle/job-errors.ts";
import type { ClaimedJob } from "../lifecycle/job-queue.ts";
import type { JobContext, JobHandler, JobOutcome } from "../lifecycle/run-runner.ts";
import type { Logger } from "../lifecycle/structured-log.ts";
import { documentObjectPath } from "../storage/document-object-path.ts";
import type { DocumentStorage } from "../storage/document-storage.ts";
import { saveDebugArtifacts } from "./debug-artifacts.ts";
import { fetchDocument } from "./document-flows.ts";
import type { RegistreConfig } from "./registre-config.ts";
import type { RegistryPurchases } from "./registry-purchases.ts";
import { startJobTrace } from "./job-trace.ts";
import type { TraceStore } from "./trace-store.ts";
import { NavigationFailedError, RegistryAccountError, RegistryUnavailableError, SessionExpiredError } from "./registry-failures.ts";
import { firstLine, type RegistrySession } from "./registry-session.ts";

export interface RegistreHandlerDependencies {
  readonly config: RegistreConfig;
  readonly session: RegistrySession;
  readonly storage: DocumentStorage;
  readonly cooldown: RegistryCooldown;
  readonly purchases: RegistryPurchases;
  /** Where failed jobs' traces go; undefined keeps none. */
  readonly traces: TraceStore | undefined;
}

/** How long the reachability check waits for the registry to answer at all. */
const PROBE_TIMEOUT_MS = 5_000;

export function registreJobHandler(deps: RegistreHandlerDependencies): JobHandler {
  const { config, session, storage, cooldown, purchases, traces } = deps;
  return async (job: ClaimedJob, { signal, log }: JobContext): Promise<JobOutcome> => {
    if (job.kind !== "registre") throw new FinalJobError(`the registre runner cannot do ${job.kind} jobs`);
    const pausedMs = await cooldown.remainingMs().catch(() => 0);
    if (pausedMs > 0) throw new InfrastructureError(`registre work is paused for ${Math.ceil(pausedMs / 1000)} s more: the registry was unavailable`, { kind: "registry_unavailable" });


    // Never buy what we have: this job's own earlier purchase (a retry after
    // the purchase point), or an identical request completed recently.
    const reusable = await purchases.findReusable(job);
    if (reusable !== undefined) {
      if (reusable.sourceJobId !== null && reusable.hasText) await purchases.copyText(job, reusable.sourceJobId);
      log.info("document reused, not bought again", { supabase_path: reusable.supabasePath, source_job_id: reusable.sourceJobId, ocr_text_reused: reusable.hasText });
      return { kind: "extracted", supabasePath: reusable.supabasePath };
    }
    // Bought by an earlier attempt while Storage was down: store those bytes, buy nothing.
    const parked = await purchases.parked(job);
    if (parked !== undefined) {
      const path = await storeBought(job, parked.purchaseId, parked.pdf);
      log.info("document stored from an earlier attempt's purchase, not bought again", { supabase_path: path, bytes: parked.pdf.length });
      return { kind: "extracted", supabasePath: path };
    }
    const spend = await purchases.spendToday();
    if (spend.paused) {
      throw new InfrastructureError(`the daily registry spend cap is reached (${formatDollars(spend.spentCents)} of ${formatDollars(spend.capCents ?? 0)} today): registre work waits for tomorrow or a higher cap`, {
        kind: "spend_cap",
      });
    }

    await session.pace(signal);
    const { context, page } = await session.openJobPage();
    const trace = traces === undefined ? undefined : await startJobTrace(context, log);
    // Stopping the job closes its context, which ends every wait at once.
    const stop = () => void context.close().catch(() => {});
    signal.addEventListener("abort", stop, { once: true });
    let bytes: Uint8Array;
    try {
      let generation = await session.ensureLoggedIn(context, page);
      for (let login = 1; ; login += 1) {
        try {
          bytes = await fetchDocument(page, job, {
            baseUrl: config.registryBaseUrl,
            navigationTimeoutMs: config.navigationTimeoutMs,
            resultTimeoutMs: config.resultTimeoutMs,
          });
          break;
        } catch (error) {
          if (!(error instanceof SessionExpiredError) || signal.aborted) throw error;
          // A session the site ends right after a fresh login is the account's problem, not the document's.
          if (login >= 2) throw new RegistryAccountError(`the registry ended two fresh sessions in a row: ${error.message}`);
          log.info("registry session expired; logging in again");
          generation = await session.ensureLoggedIn(context, page, generation);
        }
      }
      await session.keepCookies(context, generation);
      await trace?.discard();
    } catch (error) {
      if (signal.aborted) throw signal.reason;
      // Whatever page the job ended on, the session may be dead: verify it before the next job.
      session.markSuspect();
      await saveDebugArtifacts(page, config.debugDir, job.id, job.attempt, log);
      const failure = await classifyRegistreFailure(error, { config, cooldown, log });
      // The registry's own "does not exist" needs no investigation: no trace, the row keeps the site's words.
      let kept: string | undefined;
      if (traces !== undefined && classifyFailure(failure).kind !== "document_not_found") {
        const secrets = [...session.secretValues(), ...(await context.cookies().catch(() => [])).map((cookie) => cookie.value)];
        kept = await trace?.keep({ store: traces, jobId: job.id, attempt: job.attempt, secrets });
      } else {
        await trace?.discard();
      }
      // The row's error says where the trace is (never what it holds).
      if (kept !== undefined) failure.message = `${failure.message} [trace: ${kept}]`;
      throw failure;
    } finally {
      signal.removeEventListener("abort", stop);
      await context.close().catch(() => {});
    }

    // The purchase point: the registry has billed the account for this document.
    const purchaseId = await purchases.record(job, session.accountId, config.priceCents);
    let path: string;
    try {
      path = await storeBought(job, purchaseId, bytes);
    } catch (error) {
      // What the account paid for must survive the outage: the retry stores these bytes.
      await purchases.park(job, purchaseId, bytes).catch((parkError: unknown) =>
        log.warn("could not keep the bought PDF for the retry; it may be bought again", { error: parkError instanceof Error ? parkError.message : String(parkError) }),
      );
      throw error;
    }
    log.info("document stored", { supabase_path: path, bytes: bytes.length });
    return { kind: "extracted", supabasePath: path };
  };

  /** Uploads a bought PDF to its document path and records where it went; returns the path. */
  async function storeBought(job: ClaimedJob, purchaseId: string, pdf: Uint8Array): Promise<string> {
    const path = documentObjectPath({
      documentSource: job.documentSource,
      documentNumber: job.documentNumberNormalized,
      circonscription: job.circonscriptionFonciere,
      cadastre: job.cadastre,
    });
    await storage.upload(path, pdf, "application/pdf");
    await purchases.recordStorage(purchaseId, path);
    return path;
  }
}

/** The failure as final, retryable or infrastructure; pauses registre dispatch when the registry is down. */
export async function classifyRegistreFailure(
  error: unknown,
  deps: { config: RegistreConfig; cooldown: RegistryCooldown; log: Logger },
): Promise<Error> {
  if (error instanceof RegistryUnavailableError) {
    await pauseRegistre(deps, error.message);
    return error;
  }
  if (error instanceof FinalJobError || error instanceof InfrastructureError) return error;
  const unreachable = await registryUnreachable(deps.config.registryBaseUrl);
  if (unreachable !== undefined) {
    const reason = `the registry is unreachable (${unreachable})`;
    await pauseRegistre(deps, reason);
    return new RegistryUnavailableError(reason);
  }
  if (error instanceof RetryableJobError) return error;
  if (error instanceof playwrightErrors.TimeoutError) return new RetryableJobError(`the registry did not answer in time: ${firstLine(error)}`, { cause: error });
  if (error instanceof NavigationFailedError) return new RetryableJobError(error.message, { cause: error });
  return new RetryableJobError(`${error instanceof Error ? error.name : "error"}: ${firstLine(error)}`, { cause: error, kind: "needs_attention" });
}

function formatDollars(cents: number): string {
  return `${(cents / 100).toFixed(2).replace(".", ",")} $`;
}

/** Pauses registre dispatch for every runner (the shared cooldown). */
async function pauseRegistre(deps: { config: RegistreConfig; cooldown: RegistryCooldown; log: Logger }, reason: string): Promise<void> {
  await deps.cooldown.pause(deps.config.cooldownMs, reason).catch((cause: unknown) => deps.log.warn("could not start the registry cooldown", { error: firstLine(cause) }));
  deps.log.warn("registry unavailable; registre dispatch paused", { cooldown_ms: deps.config.cooldownMs, reason });
}

/** Connection-level failures: nothing at the registry's address answers. A slow answer is not one of them. */
const UNREACHABLE_CODES = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ENETUNREACH", "ECONNRESET", "UND_ERR_SOCKET"]);

/** Why the registry cannot be reached, or undefined when it answers or is merely slow (any HTTP status counts as an answer). */
export async function registryUnreachable(baseUrl: string): Promise<string | undefined> {
  try {
    const response = await fetch(`${baseUrl}/Sirf/`, { method: "HEAD", signal: AbortSignal.timeout(PROBE_TIMEOUT_MS), redirect: "manual" });
    await response.body?.cancel();
    return undefined;
  } catch (error) {
    const cause = error instanceof Error && error.cause instanceof Error ? error.cause : error;
    const code = cause instanceof Error && "code" in cause ? String(cause.code) : undefined;
    if (code === undefined || !UNREACHABLE_CODES.has(code)) return undefined;
    return `${code}: ${cause instanceof Error ? cause.message : String(cause)}`;
  }
}
