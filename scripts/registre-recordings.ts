/**
 * The go-live check (issue 17): record each path through the real registry
 * once, with a real account (a Playwright trace and a HAR per path,
 * credentials scrubbed), then replay the runner's own flows against those
 * recordings (`routeFromHAR`) and report which paths still pass. Used by
 * `npm run registre:record` and `npm run registre:replay`.
 *
 * A recording folder holds one folder per path: `recording.har`,
 * `trace.zip`, `document.pdf` (the HAR keeps no body for an answer the PDF
 * capture routed) and `manifest.json` (the request and what the runner got: the
 * PDF's SHA-256, or the failure's kind). Secrets become "SCRUBBED" in the
 * HAR, so a replay logs in as SCRUBBED/SCRUBBED and the recorded login form
 * matches it. Playwright's HAR replay aborts a URL recorded twice with
 * different answers (seen with the index page before and after a session's
 * end), so the expired-session path searches a page the login did not visit.
 */
import { createHash } from "node:crypto";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Browser, BrowserContext } from "playwright";
import { z } from "zod";
import { classifyFailure } from "../runners/lifecycle/job-errors.ts";
import { fetchDocument, type DocumentRequest } from "../runners/registre/document-flows.ts";
import { answerDocumentsFromRecording, isPdfType, type RecordedAnswer } from "../runners/registre/pages/pdf-capture.ts";
import { signIn } from "../runners/registre/registry-login.ts";
import { browserIdentity } from "../runners/registre/registry-session.ts";
import { scrubBuffer, scrubTraceZip, secretForms } from "../runners/registre/trace-scrub.ts";

export const PLACEHOLDER = "SCRUBBED";
export const RECORDING_PATHS = ["login", "index", "acte", "acte-similar", "plan", "large", "expired-session", "refused-login"] as const;
export type RecordingPathName = (typeof RECORDING_PATHS)[number];

export interface RecordingPath {
  readonly name: RecordingPathName;
  /** The document the path fetches; none for login and refused-login. */
  readonly request?: DocumentRequest;
}

const requestSchema = z.object({
  documentSource: z.enum(["index", "acte", "plan_cadastraux"]),
  documentNumber: z.string(),
  documentNumberNormalized: z.string(),
  circonscriptionFonciere: z.string(),
  cadastre: z.string().nullable(),
  designationSecondaire: z.string().nullable(),
  acteType: z.string().nullable(),
});
const outcomeSchema = z.union([z.object({ pdfSha256: z.string() }), z.object({ kind: z.string(), message: z.string() })]);
type Outcome = z.infer<typeof outcomeSchema>;
const manifestSchema = z.object({ path: z.enum(RECORDING_PATHS), baseUrl: z.string(), request: requestSchema.optional(), outcome: outcomeSchema, recordedAt: z.string() });

export interface RecordSettings {
  readonly baseUrl: string;
  readonly credentials: { readonly username: string; readonly password: string };
  readonly timeoutMs: number;
}

/** A live search can take minutes (PX: up to 3); a replay answers at once. */
const flowSettings = (baseUrl: string, timeoutMs: number, live: boolean) => ({ baseUrl, navigationTimeoutMs: timeoutMs, resultTimeoutMs: live ? Math.max(timeoutMs, 180_000) : timeoutMs });

/** What the runner's flows make of `path` in `context`, as the manifest records it. */
async function runPath(
  context: BrowserContext,
  path: RecordingPath,
  baseUrl: string,
  credentials: { username: string; password: string },
  timeoutMs: number,
  live: boolean,
): Promise<{ outcome: Outcome; pdf?: Uint8Array }> {
  const page = await context.newPage();
  try {
    if (path.name === "refused-login") {
      await signIn(page, baseUrl, { username: credentials.username, password: `${credentials.password}-wrong` }, timeoutMs);
      return { outcome: { kind: "none", message: "the login was accepted" } };
    }
    await signIn(page, baseUrl, credentials, timeoutMs);
    if (path.name === "login") return { outcome: { kind: "none", message: "logged in" } };
    if (path.request === undefined) throw new Error(`path ${path.name} needs a document`);
    // An ended session, as the site shows it: the same requests with session cookies it no longer knows
    // (a fixed value, so the replay's requests match the recorded ones).
    if (path.name === "expired-session") await context.addCookies((await context.cookies()).map((cookie) => ({ ...cookie, value: "expired" })));
    const bytes = await fetchDocument(page, path.request, flowSettings(baseUrl, timeoutMs, live));
    return { outcome: { pdfSha256: createHash("sha256").update(bytes).digest("hex") }, pdf: bytes };
  } catch (error) {
    const failure = classifyFailure(error);
    return { outcome: { kind: failure.kind, message: failure.message } };
  } finally {
    await page.close().catch(() => {});
  }
}

/** Records one path into `<folder>/<path>/`, scrubbed. Returns what the runner got. */
export async function recordPath(browser: Browser, folder: string, path: RecordingPath, settings: RecordSettings): Promise<Outcome> {
  const target = join(folder, path.name);
  await rm(target, { recursive: true, force: true });
  await mkdir(target, { recursive: true, mode: 0o700 });
  const har = join(target, "recording.har");
  const context = await browser.newContext({ ...browserIdentity(browser.version()), acceptDownloads: true, recordHar: { path: har, content: "embed", mode: "full" } });
  context.setDefaultTimeout(settings.timeoutMs);
  let outcome: Outcome;
  let cookies: string[] = [];
  try {
    await context.tracing.start({ screenshots: true, snapshots: true, sources: false });
    const ran = await runPath(context, path, settings.baseUrl, settings.credentials, settings.timeoutMs, true);
    outcome = ran.outcome;
    // The HAR does not keep the body of an answer the PDF capture routed: the PDF is kept beside it.
    if (ran.pdf !== undefined) await writeFile(join(target, "document.pdf"), ran.pdf, { mode: 0o600 });
    cookies = (await context.cookies()).map((cookie) => cookie.value);
    await context.tracing.stop({ path: join(target, "trace.zip") });
  } finally {
    await context.close();
  }
  const secrets = [settings.credentials.username, settings.credentials.password, ...cookies];
  await writeFile(har, scrubBuffer(await readFile(har), secretForms(secrets), PLACEHOLDER), { mode: 0o600 });
  await writeFile(join(target, "trace.zip"), scrubTraceZip(await readFile(join(target, "trace.zip")), secrets, PLACEHOLDER), { mode: 0o600 });
  const manifest = { path: path.name, baseUrl: settings.baseUrl, request: path.request, outcome, recordedAt: new Date().toISOString() };
  await writeFile(join(target, "manifest.json"), `${JSON.stringify(manifest, null, 2)}\n`, { mode: 0o600 });
  return outcome;
}

export interface ReplayResult {
  readonly path: string;
  readonly passed: boolean;
  readonly recorded: Outcome;
  readonly replayed: Outcome;
}

const harSchema = z.object({
  log: z.object({
    entries: z.array(
      z.object({
        request: z.object({ method: z.string(), url: z.string() }),
        response: z.object({
          status: z.number(),
          headers: z.array(z.object({ name: z.string(), value: z.string() })),
          content: z.object({ text: z.string().optional(), encoding: z.string().optional() }),
        }),
      }),
    ),
  }),
});

/** The recorded answer of each document request, for the PDF capture (which routes documents itself). */
function recordedAnswers(har: z.infer<typeof harSchema>, pdf: Buffer | undefined): (method: string, url: string) => RecordedAnswer | undefined {
  return (method, url) => {
    // A document the capture routed can appear in the HAR without its answer (status 0, no headers, no
    // body): the answered entry if there is one, else the PDF kept beside the HAR.
    const matches = har.log.entries.filter((candidate) => candidate.request.method === method && candidate.request.url === url);
    const entry = matches.filter((candidate) => candidate.response.status > 0).at(-1);
    if (entry === undefined) return matches.length > 0 && pdf !== undefined ? { status: 200, headers: { "content-type": "application/pdf" }, body: pdf } : undefined;
    const headers: Record<string, string> = {};
    for (const header of entry.response.headers) if (!/^(content-length|content-encoding|transfer-encoding)$/i.test(header.name)) headers[header.name.toLowerCase()] = header.value;
    if (pdf !== undefined && isPdfType(headers["content-type"])) return { status: entry.response.status, headers, body: pdf };
    const { text, encoding } = entry.response.content;
    // An answer recorded without a body (a redirect, an empty page) is replayed empty.
    const body = text === undefined ? Buffer.alloc(0) : Buffer.from(text, encoding === "base64" ? "base64" : "utf8");
    return { status: entry.response.status, headers, body };
  };
}

/** Replays the runner's flows on the recording in `<folder>/<path>/`; nothing reaches the network. */
export async function replayPath(browser: Browser, pathFolder: string, timeoutMs: number): Promise<ReplayResult> {
  const manifest = manifestSchema.parse(JSON.parse(await readFile(join(pathFolder, "manifest.json"), "utf8")));
  const harFile = join(pathFolder, "recording.har");
  const context = await browser.newContext({ ...browserIdentity(browser.version()), acceptDownloads: true });
  context.setDefaultTimeout(timeoutMs);
  try {
    await context.routeFromHAR(harFile, { notFound: "abort", update: false });
    const pdf = await readFile(join(pathFolder, "document.pdf")).catch(() => undefined);
    answerDocumentsFromRecording(context, recordedAnswers(harSchema.parse(JSON.parse(await readFile(harFile, "utf8"))), pdf));
    const request = manifest.request;
    const { outcome: replayed } = await runPath(
      context,
      { name: manifest.path, ...(request === undefined ? {} : { request }) },
      manifest.baseUrl,
      // The recorded wrong password was the real one plus "-wrong": scrubbed, it reads SCRUBBED-wrong.
      { username: PLACEHOLDER, password: PLACEHOLDER },
      timeoutMs,
      false,
    );
    const recorded = manifest.outcome;
    const passed = "pdfSha256" in recorded ? "pdfSha256" in replayed && replayed.pdfSha256 === recorded.pdfSha256 : "kind" in replayed && replayed.kind === recorded.kind;
    return { path: manifest.path, passed, recorded, replayed };
  } finally {
    await context.close();
  }
}
