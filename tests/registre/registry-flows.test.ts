/**
 * The page objects and flows against the local registry replica, in real
 * Chromium: each document type byte for byte, the similar-numbers list,
 * plan selection and confirmation, the site's messages as final failures,
 * tolerant option matching, an expired session, a hung search.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { chromium, errors, type Browser, type Page } from "playwright";
import { FinalJobError } from "../../runners/lifecycle/job-errors.ts";
import { fetchDocument, type DocumentRequest } from "../../runners/registre/document-flows.ts";
import { EntryPage } from "../../runners/registre/pages/login-page.ts";
import { CHROMIUM_ARGS } from "../../runners/registre/registry-session.ts";
import { LoginRefusedError, OptionNotFoundError, SessionExpiredError, SiteMessageError } from "../../runners/registre/registry-failures.ts";
import { registryCatalogueEntry } from "../../infra/local/registry-replica/registry-catalogue.ts";
import { startRegistryReplica, type RegistryReplica } from "../../infra/local/registry-replica/replica-server.ts";
import { SITE_MESSAGES } from "../../infra/local/registry-replica/replica-pages.ts";

let replica: RegistryReplica;
let browser: Browser;
let page: Page;

const settings = () => ({ baseUrl: replica.url, navigationTimeoutMs: 5_000, resultTimeoutMs: 5_000 });

function request(fields: Partial<DocumentRequest> & Pick<DocumentRequest, "documentSource" | "documentNumber" | "circonscriptionFonciere">): DocumentRequest {
  return {
    documentNumberNormalized: fields.documentNumber.replace(/\s+/g, ""),
    cadastre: null,
    designationSecondaire: null,
    acteType: null,
    ...fields,
  };
}

async function logIn(target: Page, username = "flows-1", password = "secret-1"): Promise<void> {
  const entry = new EntryPage(target, replica.url);
  await entry.open();
  const login = await entry.enter();
  await login.logIn(username, password, 5_000);
}

beforeAll(async () => {
  replica = await startRegistryReplica({ accounts: { "flows-1": "secret-1" } });
  browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: [...CHROMIUM_ARGS] });
  // One context and one login for the file, as a runner keeps its session across jobs.
  const context = await browser.newContext({ acceptDownloads: true });
  context.setDefaultTimeout(5_000);
  page = await context.newPage();
  await logIn(page);
});

afterAll(async () => {
  await browser?.close();
  await replica?.stop();
});

beforeEach(() => {
  replica.setBehaviour({ pageDelayMs: 0, resultDelayMs: 0, hangSearches: false });
});

describe("registry flows against the replica", () => {
  it("fetches the index of lot 1 234 567, Montréal, byte for byte, matching names whatever their accents, case and spacing", async () => {
    const expected = await registryCatalogueEntry("index-1234567-montreal");
    const bytes = await fetchDocument(
      page,
      request({ documentSource: "index", documentNumber: "1234567", circonscriptionFonciere: "  MONTREAL ", cadastre: "cadastre du quebec" }),
      settings(),
    );
    expect(Buffer.from(bytes).equals(Buffer.from(expected.pdfBytes))).toBe(true);
    expect(expected.pageCount).toBeGreaterThan(1);
  });

  it("fetches acte 12 345 678 directly, and acte 7 654 321 through the similar-numbers list, skipping the paper-only row", async () => {
    const direct = await fetchDocument(page, request({ documentSource: "acte", documentNumber: "12 345 678", circonscriptionFonciere: "Montréal", acteType: "Acte" }), settings());
    expect(Buffer.from(direct).equals(Buffer.from((await registryCatalogueEntry("acte-12345678-montreal")).pdfBytes))).toBe(true);
    const downloadsBefore = replica.stats().downloads;
    const listed = await fetchDocument(page, request({ documentSource: "acte", documentNumber: "7654321", circonscriptionFonciere: "montréal", acteType: "acte" }), settings());
    expect(Buffer.from(listed).equals(Buffer.from((await registryCatalogueEntry("acte-7654321-montreal")).pdfBytes))).toBe(true);
    expect(replica.stats().downloads).toBe(downloadsBefore + 1);
  });

  it("fetches plan 2 345 678, Québec, through selection and confirmation, and an inactive-only plan without error", async () => {
    const plan = await fetchDocument(
      page,
      request({ documentSource: "plan_cadastraux", documentNumber: "2 345 678", circonscriptionFonciere: "Quebec", cadastre: "Cadastre du Québec" }),
      settings(),
    );
    expect(Buffer.from(plan).equals(Buffer.from((await registryCatalogueEntry("plan-2345678-quebec")).pdfBytes))).toBe(true);
    const inactive = await fetchDocument(
      page,
      request({ documentSource: "plan_cadastraux", documentNumber: "3456789", circonscriptionFonciere: "Québec", cadastre: "Cadastre du Québec" }),
      settings(),
    );
    expect(Buffer.from(inactive).equals(Buffer.from((await registryCatalogueEntry("plan-3456789-quebec")).pdfBytes))).toBe(true);
  });

  it.each([
    ["index", request({ documentSource: "index", documentNumber: "9 999 999", circonscriptionFonciere: "Laval", cadastre: "Cadastre du Québec" }), SITE_MESSAGES.ficheInexistante],
    ["index in the wrong circonscription", request({ documentSource: "index", documentNumber: "1 234 567", circonscriptionFonciere: "Laval", cadastre: "Cadastre du Québec" }), SITE_MESSAGES.lotHorsCirconscription],
    ["acte", request({ documentSource: "acte", documentNumber: "1", circonscriptionFonciere: "Montréal", acteType: "Radiation" }), SITE_MESSAGES.documentInexistant],
    ["plan", request({ documentSource: "plan_cadastraux", documentNumber: "1", circonscriptionFonciere: "Lévis", cadastre: "Cadastre du Québec" }), SITE_MESSAGES.aucuneInformation],
  ])("fails final with the site's words for an unknown %s", async (_name, unknown, message) => {
    const failure = await fetchDocument(page, unknown, settings()).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(SiteMessageError);
    expect(failure).toBeInstanceOf(FinalJobError);
    expect((failure as Error).message).toBe(message);
  });

  it("fails final naming the closest options when the circonscription matches none", async () => {
    const failure = await fetchDocument(page, request({ documentSource: "index", documentNumber: "1 234 567", circonscriptionFonciere: "Montreal-Nord", cadastre: "Cadastre du Québec" }), settings()).catch(
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(OptionNotFoundError);
    expect((failure as Error).message).toContain('"Montréal"');
  });

  it("reports an expired session as SessionExpiredError, and a refused login as LoginRefusedError", async () => {
    replica.expireSessions();
    const failure = await fetchDocument(page, request({ documentSource: "acte", documentNumber: "12 345 678", circonscriptionFonciere: "Montréal", acteType: "Acte" }), settings()).catch(
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(SessionExpiredError);
    const refused = await logIn(page, "flows-1", "wrong-password").catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(LoginRefusedError);
    expect((refused as Error).message).not.toContain("wrong-password");
    await logIn(page);
  });

  it("waits through a slow search within its limit, and times out on a hung one", async () => {
    replica.setBehaviour({ resultDelayMs: 1_500, pageDelayMs: 200 });
    const slow = await fetchDocument(page, request({ documentSource: "acte", documentNumber: "12 345 678", circonscriptionFonciere: "Montréal", acteType: "Acte" }), settings());
    expect(slow.length).toBeGreaterThan(1000);
    replica.setBehaviour({ resultDelayMs: 0, pageDelayMs: 0, hangSearches: true });
    const startedAt = Date.now();
    const hung = await fetchDocument(
      page,
      request({ documentSource: "acte", documentNumber: "12 345 678", circonscriptionFonciere: "Montréal", acteType: "Acte" }),
      { ...settings(), navigationTimeoutMs: 20_000, resultTimeoutMs: 1_500 },
    ).catch((error: unknown) => error);
    expect(hung).toBeInstanceOf(errors.TimeoutError);
    // The result timeout gave up, not the (much longer) navigation timeout.
    expect(Date.now() - startedAt).toBeLessThan(15_000);
  });
});
