/**
 * What the replica answers on each of the registry's paths once a session is
 * open: the lot and acte searches, the similar-numbers list, plan selection,
 * the "Confirmer" step for large documents, the result frameset and the PDF.
 * Sources for each page are cited in replica-pages.ts.
 */
import { randomBytes } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { findCatalogueDocument, findSimilarOnlySearch, lotExistsElsewhere, REGISTRY_CATALOGUE, type CatalogueDocument, type SimilarNumberRow } from "./catalogue.ts";
import { ACTE_TYPES, cadastreByCode, circonscriptionByCode } from "./registry-options.ts";
import {
  acteSearchPage,
  confirmationPage,
  lotSearchPage,
  messagePage,
  PAGE_PATHS,
  planSelectionPage,
  resultFrameset,
  resultMenuPage,
  resultViewPage,
  SITE_MESSAGES,
  welcomePage,
  type PdfDelivery,
} from "./replica-pages.ts";

export interface ReplicaSession {
  readonly id: string;
  readonly username: string;
  lastSeenAt: number;
  expired: boolean;
  /** Documents this session has opened, by token. */
  readonly documents: Map<string, string>;
  similarList?: readonly SimilarNumberRow[];
  plan?: { readonly documentId: string; readonly lot: string };
  /** A large document waiting for "Confirmer". */
  pendingDocumentId?: string;
}

export interface RouteBehaviour {
  readonly pdfDelivery: PdfDelivery;
  /** Every document asks "Confirmer" first, not only the catalogue's large ones. */
  readonly largeDocuments: boolean;
  /** The plan selection's button label (PX AI:1848 tries both). */
  readonly planButton: "Soumettre" | "Continuer";
  /** When set, every search answers with this message (an account, payment or unknown message). */
  readonly searchMessage: string | undefined;
}

export interface RouteContext {
  readonly behaviour: () => RouteBehaviour;
  readonly pdfs: ReadonlyMap<string, Uint8Array>;
  /** Waits before a search's answer; false when the search hangs (the response is kept open). */
  readonly beforeResult: (response: ServerResponse) => Promise<boolean>;
  readonly countDownload: () => void;
}

export function send(response: ServerResponse, status: number, html: string, headers: Record<string, string> = {}): void {
  response.writeHead(status, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store", ...headers });
  response.end(html);
}

const redirect = (response: ServerResponse, location: string) => {
  response.writeHead(302, { location, "cache-control": "no-store" });
  response.end();
};

const catalogueDocument = (id: string | undefined) => REGISTRY_CATALOGUE.find((candidate) => candidate.id === id);

/** Answers one request of a live session; false when the path is not one of the site's. */
export async function routeSessionRequest(
  context: RouteContext,
  session: ReplicaSession,
  request: IncomingMessage,
  url: URL,
  form: URLSearchParams,
  response: ServerResponse,
): Promise<boolean> {
  const behaviour = context.behaviour();
  const values = Object.fromEntries(form.entries());
  const posted = request.method === "POST";

  /** The frameset, or the "Confirmer" page first for a large document (any type). */
  const deliver = (document: CatalogueDocument) => {
    if (document.large === true || behaviour.largeDocuments) {
      session.pendingDocumentId = document.id;
      return redirect(response, PAGE_PATHS.confirmation);
    }
    const token = randomBytes(8).toString("hex");
    session.documents.set(token, document.id);
    send(response, 200, resultFrameset(token));
  };

  switch (url.pathname) {
    case PAGE_PATHS.welcome:
      send(response, 200, welcomePage());
      return true;
    case PAGE_PATHS.index:
    case PAGE_PATHS.plan: {
      const page = url.pathname === PAGE_PATHS.index ? "index" : "plan";
      const circonscription = circonscriptionByCode(form.get("selCircnFoncr") ?? "");
      if (!posted || form.get("txtEtat") !== "valdr" || form.get("btnSoumt") === null) {
        send(response, 200, lotSearchPage({ page, circonscription, values }));
        return true;
      }
      if (behaviour.searchMessage !== undefined) {
        send(response, 200, lotSearchPage({ page, circonscription, values, message: behaviour.searchMessage }));
        return true;
      }
      const cadastre = circonscription === undefined ? undefined : cadastreByCode(circonscription, form.get("selCadst") ?? "");
      const lot = (form.get("txtNumrtLot") ?? "").trim();
      if (circonscription === undefined || cadastre === undefined || lot === "") {
        send(response, 200, lotSearchPage({ page, circonscription, values, message: SITE_MESSAGES.aucuneInformation }));
        return true;
      }
      if (!(await context.beforeResult(response))) return true;
      const source = page === "index" ? "index" : "plan_cadastraux";
      const document = findCatalogueDocument({ source, number: lot, circonscription: circonscription.name, cadastre });
      if (document === undefined) {
        const message =
          page === "plan"
            ? SITE_MESSAGES.aucuneInformation
            : lotExistsElsewhere(source, lot, circonscription.name)
              ? SITE_MESSAGES.lotHorsCirconscription
              : SITE_MESSAGES.ficheInexistante;
        send(response, 200, lotSearchPage({ page, circonscription, values, message }));
        return true;
      }
      if (page === "index") {
        deliver(document);
        return true;
      }
      session.plan = { documentId: document.id, lot: document.row.document_number };
      redirect(response, PAGE_PATHS.planSelection);
      return true;
    }
    case PAGE_PATHS.planSelection: {
      const document = catalogueDocument(session.plan?.documentId);
      const choices = document?.planChoices ?? [];
      const choice = choices[Number(form.get("rdPlan") ?? "-1")];
      if (posted && document !== undefined && choice !== undefined) {
        deliver(document);
        return true;
      }
      // Wording of "nothing selected" is not in the evidence.
      const page = planSelectionPage(session.plan?.lot ?? "", choices, behaviour.planButton);
      send(response, 200, posted ? page.replace("<form", `<table class="Cadre"><tr><td class="contValErr">Veuillez sélectionner un plan</td></tr></table><form`) : page);
      return true;
    }
    case PAGE_PATHS.confirmation: {
      const document = catalogueDocument(session.pendingDocumentId);
      if (!posted) {
        send(response, 200, document === undefined ? messagePage("Confirmation", SITE_MESSAGES.documentInexistant) : confirmationPage());
        return true;
      }
      if (document === undefined || form.get("btnConfr") === null) {
        send(response, 200, messagePage("Confirmation", SITE_MESSAGES.aucuneInformation));
        return true;
      }
      session.pendingDocumentId = undefined;
      if (!(await context.beforeResult(response))) return true;
      const token = randomBytes(8).toString("hex");
      session.documents.set(token, document.id);
      send(response, 200, resultFrameset(token));
      return true;
    }
    case PAGE_PATHS.acte:
      await acteSearch(context, session, form, values, posted, response, deliver);
      return true;
    case PAGE_PATHS.resultMenu:
      send(response, 200, resultMenuPage(url.searchParams.get("doc") ?? "", behaviour.pdfDelivery));
      return true;
    case PAGE_PATHS.resultPage: {
      const document = catalogueDocument(session.documents.get(url.searchParams.get("doc") ?? ""));
      send(response, 200, resultViewPage(document?.pages.length ?? 0));
      return true;
    }
    case PAGE_PATHS.save: {
      const documentId = session.documents.get(url.searchParams.get("doc") ?? "");
      const bytes = documentId === undefined ? undefined : context.pdfs.get(documentId);
      if (documentId === undefined || bytes === undefined) {
        send(response, 200, messagePage("Document", SITE_MESSAGES.documentInexistant));
        return true;
      }
      context.countDownload();
      response.writeHead(200, {
        "content-type": "application/pdf",
        "content-length": String(bytes.length),
        "content-disposition": `${behaviour.pdfDelivery === "attachment" ? "attachment" : "inline"}; filename="${documentId}.pdf"`,
        "cache-control": "no-store",
      });
      response.end(bytes);
      return true;
    }
    default:
      return false;
  }
}

async function acteSearch(
  context: RouteContext,
  session: ReplicaSession,
  form: URLSearchParams,
  values: Readonly<Record<string, string>>,
  posted: boolean,
  response: ServerResponse,
  deliver: (document: CatalogueDocument) => void,
): Promise<void> {
  const behaviour = context.behaviour();
  if (posted && form.get("txtEtat") === "selct") {
    const row = session.similarList?.[Number(form.get("rdDocmn") ?? "-1")];
    const document = catalogueDocument(row?.documentId);
    // What the site answers for a paper-only row is not in the evidence; the runner never submits one.
    if (row === undefined || row.paperOnly || document === undefined) {
      send(response, 200, acteSearchPage(values, SITE_MESSAGES.documentInexistant));
      return;
    }
    if (!(await context.beforeResult(response))) return;
    deliver(document);
    return;
  }
  if (!posted || form.get("btnRechr") === null) {
    send(response, 200, acteSearchPage(values));
    return;
  }
  if (behaviour.searchMessage !== undefined) {
    send(response, 200, acteSearchPage(values, behaviour.searchMessage));
    return;
  }
  const circonscription = circonscriptionByCode(form.get("selCircnFoncr") ?? "");
  const acteType = form.get("selTypeDocmn") ?? "";
  const number = (form.get("txtNoReqst") ?? "").trim();
  if (circonscription === undefined || !(ACTE_TYPES as readonly string[]).includes(acteType) || number === "") {
    send(response, 200, acteSearchPage(values, SITE_MESSAGES.aucuneInformation));
    return;
  }
  if (!(await context.beforeResult(response))) return;
  const document = findCatalogueDocument({ source: "acte", number, circonscription: circonscription.name, acteType });
  const similar = document?.similarNumbers ?? findSimilarOnlySearch({ number, circonscription: circonscription.name, acteType })?.rows;
  if (similar !== undefined) {
    session.similarList = similar;
    send(response, 200, acteSearchPage(values, SITE_MESSAGES.similarNumbers, similar));
    return;
  }
  if (document === undefined) {
    send(response, 200, acteSearchPage(values, SITE_MESSAGES.documentInexistant));
    return;
  }
  deliver(document);
}
