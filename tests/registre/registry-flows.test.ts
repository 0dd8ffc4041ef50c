/**
 * The login, page objects and flows against the rebuilt registry replica, in
 * real Chromium: each document type byte for byte in each way the PDF can
 * come (attachment, inline, popup, script handler), "Confirmer" for large
 * documents of every type, the similar-numbers list taking only the exact
 * number, plan selection, and every failure classified with its kind.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { chromium, errors, type Browser, type BrowserContext, type Page } from "playwright";
import { classifyFailure } from "../../runners/lifecycle/job-errors.ts";
import { fetchDocument, type DocumentRequest } from "../../runners/registre/document-flows.ts";
import { CHROMIUM_ARGS } from "../../runners/registre/registry-session.ts";
import { signIn } from "../../runners/registre/registry-login.ts";
import { registryCatalogueEntry } from "../../infra/local/registry-replica/registry-catalogue.ts";
import { startRegistryReplica, type RegistryReplica, type ReplicaBehaviour } from "../../infra/local/registry-replica/replica-server.ts";
import { SITE_MESSAGES } from "../../infra/local/registry-replica/replica-pages.ts";

let replica: RegistryReplica;
let browser: Browser;
let context: BrowserContext;
let page: Page;

const settings = () => ({ baseUrl: replica.url, navigationTimeoutMs: 5_000, resultTimeoutMs: 5_000 });
const DEFAULTS: ReplicaBehaviour = {
  pageDelayMs: 0,
  resultDelayMs: 0,
  hangSearches: false,
  refusedUsernames: [],
  pdfDelivery: "attachment",
  entryStyle: "link",
  outage: "none",
  largeDocuments: false,
  planButton: "Soumettre",
  searchMessage: undefined,
};

function request(fields: Partial<DocumentRequest> & Pick<DocumentRequest, "documentSource" | "documentNumber" | "circonscriptionFonciere">): DocumentRequest {
  return { documentNumberNormalized: fields.documentNumber.replace(/\s+/g, ""), cadastre: null, designationSecondaire: null, acteType: null, ...fields };
}

const acte = (number: string, acteType = "Acte") => request({ documentSource: "acte", documentNumber: number, circonscriptionFonciere: "Montréal", acteType });
const plan = (number: string, circonscription = "Québec") => request({ documentSource: "plan_cadastraux", documentNumber: number, circonscriptionFonciere: circonscription, cadastre: "Cadastre du Québec" });
const index = (number: string, circonscription = "Montréal") => request({ documentSource: "index", documentNumber: number, circonscriptionFonciere: circonscription, cadastre: "Cadastre du Québec" });

const logIn = (target: Page, username = "flows-1", password = "secret-1") => signIn(target, replica.url, { username, password }, 5_000);
const failureOf = (promise: Promise<unknown>) => promise.then(() => undefined, (error: unknown) => error);
const sameBytes = async (bytes: Uint8Array, id: string) => Buffer.from(bytes).equals(Buffer.from((await registryCatalogueEntry(id)).pdfBytes));

beforeAll(async () => {
  replica = await startRegistryReplica({ accounts: { "flows-1": "secret-1", "flows-2": "secret-2" } });
  browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: [...CHROMIUM_ARGS] });
  // One context and one login for the file, as a runner keeps its session across jobs.
  context = await browser.newContext({ acceptDownloads: true, locale: "fr-CA" });
  context.setDefaultTimeout(5_000);
  page = await context.newPage();
  await logIn(page);
});

afterAll(async () => {
  await browser?.close();
  await replica?.stop();
});

beforeEach(() => {
  replica.setBehaviour(DEFAULTS);
});

describe.each(["attachment", "inline", "popup", "script"] as const)("documents with the PDF delivered as %s", (pdfDelivery) => {
  beforeEach(() => {
    replica.setBehaviour({ pdfDelivery });
  });

  it("fetches the index of lot 1 234 567, Montréal, byte for byte, matching names whatever their accents, case and spacing", async () => {
    const bytes = await fetchDocument(page, request({ documentSource: "index", documentNumber: "1234567", circonscriptionFonciere: "  MONTREAL ", cadastre: "cadastre du quebec" }), settings());
    expect(await sameBytes(bytes, "index-1234567-montreal")).toBe(true);
    // The save link's popup, if any, is closed: nothing accumulates across jobs.
    await expect.poll(() => context.pages().length, { timeout: 6_000 }).toBe(1);
  });

  it("fetches acte 12 345 678 through the Confirmer page when the site asks it for every document", async () => {
    replica.setBehaviour({ largeDocuments: true });
    expect(await sameBytes(await fetchDocument(page, acte("12 345 678"), settings()), "acte-12345678-montreal")).toBe(true);
    expect(await sameBytes(await fetchDocument(page, index("1 234 567"), settings()), "index-1234567-montreal")).toBe(true);
  });

  it("fetches acte 7 654 321 from the similar-numbers list: the exact number's online row, not its paper-only twin", async () => {
    const downloadsBefore = replica.stats().downloads;
    expect(await sameBytes(await fetchDocument(page, acte("7654321", "acte"), settings()), "acte-7654321-montreal")).toBe(true);
    expect(replica.stats().downloads).toBe(downloadsBefore + 1);
  });

  it("fetches plan 2 345 678, Québec: the exact plan among its variants, then Confirmer (a large document)", async () => {
    expect(await sameBytes(await fetchDocument(page, plan("2 345 678", "Quebec"), settings()), "plan-2345678-quebec")).toBe(true);
  });
});

describe("choosing only the row's exact number", () => {
  it("fetches a plan whose lot is inactive ('Lot … est inactif' is not an error), behind a Continuer button", async () => {
    replica.setBehaviour({ planButton: "Continuer" });
    expect(await sameBytes(await fetchDocument(page, plan("3456789"), settings()), "plan-3456789-quebec")).toBe(true);
  });

  it("fails final, never completing, for a mistyped acte whose list offers only other numbers", async () => {
    const downloadsBefore = replica.stats().downloads;
    const failure = await failureOf(fetchDocument(page, acte("12 345 687"), settings()));
    expect(classifyFailure(failure)).toMatchObject({ disposition: "final", kind: "invalid_input" });
    expect((failure as Error).message).toContain("no acte numbered 12 345 687");
    expect((failure as Error).message).toContain("12 345 678");
    expect(replica.stats().downloads).toBe(downloadsBefore);
  });

  it("fails final saying so for an acte that exists on paper only", async () => {
    const failure = await failureOf(fetchDocument(page, acte("5 555 555"), settings()));
    expect(classifyFailure(failure)).toMatchObject({ disposition: "final", kind: "invalid_input" });
    expect((failure as Error).message).toMatch(/exists on paper only/);
  });

  it("fails final, never completing, for a plan whose exact number is absent from the selection", async () => {
    const downloadsBefore = replica.stats().downloads;
    const failure = await failureOf(fetchDocument(page, plan("4 567 890"), settings()));
    expect(classifyFailure(failure)).toMatchObject({ disposition: "final", kind: "invalid_input" });
    expect((failure as Error).message).toContain("4 567 809");
    expect(replica.stats().downloads).toBe(downloadsBefore);
  });
});

describe("what the site's answers mean", () => {
  it.each([
    ["index", index("9 999 999", "Laval"), SITE_MESSAGES.ficheInexistante],
    ["index in the wrong circonscription", index("1 234 567", "Laval"), SITE_MESSAGES.lotHorsCirconscription],
    ["acte", acte("1", "Radiation"), SITE_MESSAGES.documentInexistant],
    ["plan", plan("1", "Lévis"), SITE_MESSAGES.aucuneInformation],
  ])("fails final, document_not_found, with the site's words for an unknown %s", async (_name, unknown, message) => {
    const failure = await failureOf(fetchDocument(page, unknown, settings()));
    expect(classifyFailure(failure)).toEqual({ disposition: "final", kind: "document_not_found", message });
  });

  it("fails final naming the closest options when the circonscription matches none", async () => {
    const failure = await failureOf(fetchDocument(page, index("1 234 567", "Montreal-Nord"), settings()));
    expect(classifyFailure(failure)).toMatchObject({ disposition: "final", kind: "invalid_input" });
    expect((failure as Error).message).toContain('"Montréal"');
  });

  it("charges a payment message to the account and an unknown message to staff's attention", async () => {
    replica.setBehaviour({ searchMessage: SITE_MESSAGES.paymentRefused });
    expect(classifyFailure(await failureOf(fetchDocument(page, acte("12 345 678"), settings())))).toMatchObject({ disposition: "infrastructure", kind: "account" });
    replica.setBehaviour({ searchMessage: "Le service de consultation est suspendu pour ce type de document" });
    const unknown = classifyFailure(await failureOf(fetchDocument(page, index("1 234 567"), settings())));
    expect(unknown).toMatchObject({ disposition: "retryable", kind: "needs_attention" });
    expect(unknown.message).toContain("Le service de consultation est suspendu");
  });

  it.each([["maintenance"], ["http503"]] as const)("reports the registry unavailable on a %s page, spending no attempt", async (outage) => {
    replica.setBehaviour({ outage });
    const failure = await failureOf(fetchDocument(page, acte("12 345 678"), settings()));
    expect(classifyFailure(failure)).toMatchObject({ disposition: "infrastructure", kind: "registry_unavailable" });
  });

  it("reports an expired session as the session's end, whatever the search", async () => {
    replica.expireSessions();
    const failure = await failureOf(fetchDocument(page, acte("12 345 678"), settings()));
    expect((failure as Error).message).toMatch(/session/);
    expect(classifyFailure(failure).kind).toBe("document_retryable");
    await logIn(page);
  });

  it("waits through a slow search within its limit, and times out on a hung one", async () => {
    replica.setBehaviour({ resultDelayMs: 1_500, pageDelayMs: 200 });
    expect((await fetchDocument(page, acte("12 345 678"), settings())).length).toBeGreaterThan(1000);
    replica.setBehaviour({ resultDelayMs: 0, pageDelayMs: 0, hangSearches: true });
    const startedAt = Date.now();
    const hung = await failureOf(fetchDocument(page, acte("12 345 678"), { ...settings(), navigationTimeoutMs: 20_000, resultTimeoutMs: 1_500 }));
    expect(hung).toBeInstanceOf(errors.TimeoutError);
    // The result timeout gave up, not the (much longer) navigation timeout.
    expect(Date.now() - startedAt).toBeLessThan(15_000);
  });
});

describe("logging in", () => {
  it.each([["link"], ["area"], ["image"]] as const)("logs in through an entry that is a %s, proven by a search page's form", async (entryStyle) => {
    replica.setBehaviour({ entryStyle });
    const fresh = await browser.newContext();
    try {
      const target = await fresh.newPage();
      const before = replica.stats().logins["flows-2"] ?? 0;
      await logIn(target, "flows-2", "secret-2");
      expect(replica.stats().logins["flows-2"]).toBe(before + 1);
      expect(await target.locator("#selCircnFoncr").count()).toBe(1);
    } finally {
      await fresh.close();
    }
  });

  it("charges a refused login to the account, never quoting the password", async () => {
    const fresh = await browser.newContext();
    try {
      const refused = await failureOf(logIn(await fresh.newPage(), "flows-2", "wrong-password"));
      expect(classifyFailure(refused)).toMatchObject({ disposition: "infrastructure", kind: "account" });
      expect((refused as Error).message).not.toContain("wrong-password");
    } finally {
      await fresh.close();
    }
  });

  it("reports a login during maintenance as the registry unavailable, not the account", async () => {
    replica.setBehaviour({ outage: "maintenance" });
    const fresh = await browser.newContext();
    try {
      const failure = await failureOf(logIn(await fresh.newPage(), "flows-2", "secret-2"));
      expect(classifyFailure(failure)).toMatchObject({ disposition: "infrastructure", kind: "registry_unavailable" });
    } finally {
      await fresh.close();
    }
  });
});
