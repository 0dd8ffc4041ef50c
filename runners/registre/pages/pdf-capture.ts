/**
 * Catching the PDF whichever way the site hands it over. How the real save
 * link delivers it is not in the evidence (domain.md §2): an attachment
 * fires a `download` event; an inline `application/pdf` answer opens
 * Chromium's viewer and, under Debian Chromium's new headless mode, fires no
 * download event; a popup (a `target="_blank"` link or the `fRechrDocmnPDF`
 * script handler, PX = Paraito/registre-extractor dc82c0e,
 * src/worker/extractor-ai.ts:2352) fires nothing on the page. Worse, the
 * body Playwright reports for an inline PDF is the viewer's HTML wrapper
 * (seen here: 601 bytes), not the PDF. So while the save link is clicked,
 * every document request of the context (popups included) goes through a
 * route that fetches it once and keeps the bytes of a PDF answer before
 * handing the answer on unchanged; downloads are watched too, and the first
 * PDF wins. One request to the site per document, as a click would make.
 * Every wait is bounded, `download.path()` included.
 */
import { readFile } from "node:fs/promises";
import { errors as playwrightErrors, type BrowserContext, type Download, type Page, type Response, type Route } from "playwright";
import { UnexpectedPageError } from "../registry-failures.ts";

/** A document's answer as a recording holds it (registre:replay), instead of asking the site. */
export interface RecordedAnswer {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
}
export type RecordedAnswers = (method: string, url: string) => RecordedAnswer | undefined;

const recordedAnswers = new WeakMap<BrowserContext, RecordedAnswers>();

/** Serves the capture's document requests of `context` from a recording (routeFromHAR serves the rest). */
export function answerDocumentsFromRecording(context: BrowserContext, answers: RecordedAnswers): void {
  recordedAnswers.set(context, answers);
}

/** How long after the capture a popup the save link opened may still appear (and be closed). */
const POPUP_GRACE_MS = 5_000;

/** A missing content type is not a PDF's. */
export const isPdfType = (contentType: string | null | undefined): boolean => contentType != null && /application\/pdf/i.test(contentType);

const isPdf = (bytes: Uint8Array) => Buffer.from(bytes.subarray(0, 5)).equals(Buffer.from("%PDF-"));

function bounded<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new playwrightErrors.TimeoutError(`${what} took longer than ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function liveAnswer(route: Route, timeoutMs: number): Promise<RecordedAnswer> {
  const answer = await route.fetch({ timeout: timeoutMs });
  return { status: answer.status(), headers: answer.headers(), body: await answer.body() };
}

/** Runs `trigger` (the click on the save link) and returns the PDF's bytes, within `timeoutMs`. */
export async function capturePdf(page: Page, trigger: () => Promise<void>, timeoutMs: number): Promise<Uint8Array> {
  const context = page.context();
  const deadline = Date.now() + timeoutMs;
  const left = () => Math.max(1, deadline - Date.now());
  const before = new Set(context.pages());
  const problems: string[] = [];
  let resolve: (bytes: Uint8Array) => void = () => {};
  const captured = new Promise<Uint8Array>((done) => {
    resolve = done;
  });

  const onDownload = (download: Download) => {
    void (async () => {
      const failure = await bounded(download.failure(), left(), "the download");
      if (failure !== null) return void problems.push(`the download failed: ${failure}`);
      const bytes = new Uint8Array(await readFile(await bounded(download.path(), left(), "download.path()")));
      await download.delete().catch(() => {});
      if (isPdf(bytes)) resolve(bytes);
      else problems.push(`the download gave ${bytes.length} bytes that are not a PDF`);
    })().catch((error: unknown) => problems.push(error instanceof Error ? error.message : String(error)));
  };
  const onResponse = (response: Response) => {
    void (async () => {
      if (!isPdfType(await response.headerValue("content-type"))) return;
      // In a replay the HAR router may have answered before the capture's route saw the request: the recording holds the bytes.
      const recorded = recordedAnswers.get(context)?.(response.request().method(), response.url());
      const bytes = new Uint8Array(recorded?.body ?? (await bounded(response.body(), left(), "the PDF response's body")));
      if (isPdf(bytes)) resolve(bytes);
    })().catch(() => {});
  };
  const onRoute = async (route: Route) => {
    if (route.request().resourceType() !== "document") return route.fallback();
    try {
      const recording = recordedAnswers.get(context);
      // A replay never reaches the network: what the recording lacks goes on to the HAR router (which aborts it).
      if (recording !== undefined && recording(route.request().method(), route.request().url()) === undefined) return await route.fallback();
      const { status, headers, body } = recording?.(route.request().method(), route.request().url()) ?? (await liveAnswer(route, left()));
      if (isPdfType(headers["content-type"])) {
        const bytes = new Uint8Array(body);
        if (isPdf(bytes)) resolve(bytes);
        else problems.push(`an application/pdf answer held ${bytes.length} bytes that are not a PDF`);
      }
      await route.fulfill({ status, headers, body });
    } catch (error) {
      problems.push(error instanceof Error ? error.message.split("\n")[0] ?? error.message : String(error));
      await route.abort().catch(() => {});
    }
  };
  const onPage = (popup: Page) => {
    popup.on("download", onDownload);
  };

  page.on("download", onDownload);
  context.on("page", onPage);
  context.on("response", onResponse);
  await context.route("**/*", onRoute);
  try {
    await bounded(trigger(), left(), "clicking the save link");
    return await bounded(captured, left(), "the PDF");
  } catch (error) {
    if (problems.length > 0) throw new UnexpectedPageError(`the save link gave no PDF: ${problems.join("; ")}`);
    throw error;
  } finally {
    page.off("download", onDownload);
    context.off("page", onPage);
    context.off("response", onResponse);
    await context.unroute("**/*", onRoute).catch(() => {});
    // A popup the save link opened has done its work; one that shows up late is closed as it comes.
    for (const popup of context.pages()) if (!before.has(popup)) await popup.close().catch(() => {});
    const closeLate = (popup: Page) => void popup.close().catch(() => {});
    context.on("page", closeLate);
    setTimeout(() => context.off("page", closeLate), POPUP_GRACE_MS).unref();
  }
}
