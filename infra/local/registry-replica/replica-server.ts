/**
 * A local replica of the Registre foncier du Québec's search site, for the
 * embedded stack, the registre tests and the benchmark: the same pages,
 * field ids, frameset, save link, similar-numbers list, plan selection and
 * confirmation, messages and idle-session timeout as the real site, serving
 * the catalogue's PDFs (catalogue.ts). Tests can slow it down, make it hang,
 * expire its sessions, and stop and restart it on the same port.
 */
import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { setTimeout as delay } from "node:timers/promises";
import { findCatalogueDocument, lotExistsElsewhere, REGISTRY_CATALOGUE, type CatalogueDocument, type PlanChoice, type SimilarNumberRow } from "./catalogue.ts";
import { DEFAULT_CATALOGUE_CACHE_DIR } from "./registry-catalogue.ts";
import { ACTE_TYPES, circonscriptionByCode } from "./registry-options.ts";
import {
  acteSearchPage,
  entryPage,
  errorPage,
  loginPage,
  lotSearchPage,
  menuPage,
  PAGE_PATHS,
  planConfirmationPage,
  planSelectionPage,
  resultFrameset,
  resultMenuPage,
  resultViewPage,
  similarNumbersPage,
  SITE_MESSAGES,
} from "./replica-pages.ts";
import { cachedScannedPdf } from "./scanned-pages.ts";

export interface ReplicaBehaviour {
  /** Added before every answer, in ms. @default 0 */
  readonly pageDelayMs: number;
  /** Added before a search's result (frameset, list, selection), in ms: the real site can take minutes. @default 0 */
  readonly resultDelayMs: number;
  /** Searches never answer (the connection stays open) while true. @default false */
  readonly hangSearches: boolean;
  /** Logins of these usernames are refused whatever the password (a locked account). @default [] */
  readonly refusedUsernames: readonly string[];
}

export interface RegistryReplicaOptions {
  /** 0 picks a free port. @default 0 */
  readonly port?: number;
  /** @default "127.0.0.1" */
  readonly host?: string;
  /** Logins the replica accepts: username → password. */
  readonly accounts: Readonly<Record<string, string>>;
  /** Where the catalogue's PDFs are cached. @default DEFAULT_CATALOGUE_CACHE_DIR */
  readonly cacheDir?: string;
  /** A session unused this long is expired, as the site's are. @default 20 minutes */
  readonly sessionIdleMs?: number;
  readonly behaviour?: Partial<ReplicaBehaviour>;
}

export interface ReplicaStats {
  /** Successful logins per username. */
  readonly logins: Readonly<Record<string, number>>;
  readonly refusedLogins: number;
  /** Logins that displaced a live session of the same account (the site allows one session per account). */
  readonly displacedSessions: number;
  readonly expiredSessionHits: number;
  readonly downloads: number;
  /** Searches held open right now by hangSearches. */
  readonly hangingRequests: number;
  /** Every username that logged in, in order, with when. */
  readonly loginLog: readonly { readonly username: string; readonly at: number }[];
}

export interface RegistryReplica {
  /** Base URL, e.g. http://127.0.0.1:PORT (the runner's REGISTRY_BASE_URL). */
  readonly url: string;
  readonly port: number;
  setBehaviour(behaviour: Partial<ReplicaBehaviour>): void;
  setAccounts(accounts: Readonly<Record<string, string>>): void;
  /** Expires every session now, as the site's idle timeout would. */
  expireSessions(): void;
  stats(): ReplicaStats;
  /** Stops answering and drops every connection (a registry outage). */
  stop(): Promise<void>;
  /** Listens again on the same port after stop(). */
  restart(): Promise<void>;
}

interface Session {
  readonly id: string;
  readonly username: string;
  lastSeenAt: number;
  expired: boolean;
  /** Downloadable documents this session has opened, by token. */
  readonly documents: Map<string, string>;
  similarList?: readonly SimilarNumberRow[];
  planDocumentId?: string;
  planChoice?: PlanChoice;
}

const SESSION_COOKIE = "ASPSESSIONIDSIRF";

export async function startRegistryReplica(options: RegistryReplicaOptions): Promise<RegistryReplica> {
  const host = options.host ?? "127.0.0.1";
  const cacheDir = options.cacheDir ?? DEFAULT_CATALOGUE_CACHE_DIR;
  const sessionIdleMs = options.sessionIdleMs ?? 20 * 60_000;
  let accounts = { ...options.accounts };
  let behaviour: ReplicaBehaviour = { pageDelayMs: 0, resultDelayMs: 0, hangSearches: false, refusedUsernames: [], ...options.behaviour };
  const sessions = new Map<string, Session>();
  const liveSessionOf = new Map<string, string>();
  const stats = { logins: {} as Record<string, number>, refusedLogins: 0, displacedSessions: 0, expiredSessionHits: 0, downloads: 0, loginLog: [] as { username: string; at: number }[] };

  // Render every PDF before listening, so no request waits on a first render.
  const pdfs = new Map<string, Uint8Array>();
  for (const document of REGISTRY_CATALOGUE) pdfs.set(document.id, (await cachedScannedPdf(document, cacheDir)).bytes);

  const sockets = new Set<Socket>();
  const hanging = new Set<ServerResponse>();

  const sessionOf = (request: IncomingMessage): Session | "expired" | undefined => {
    const cookie = request.headers.cookie ?? "";
    const match = new RegExp(`${SESSION_COOKIE}=([A-Za-z0-9_-]+)`).exec(cookie);
    const session = match?.[1] === undefined ? undefined : sessions.get(match[1]);
    if (session === undefined) return match === null ? undefined : "expired";
    if (session.expired || Date.now() - session.lastSeenAt > sessionIdleMs) {
      session.expired = true;
      return "expired";
    }
    session.lastSeenAt = Date.now();
    return session;
  };

  const send = (response: ServerResponse, status: number, html: string, headers: Record<string, string> = {}) => {
    response.writeHead(status, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store", ...headers });
    response.end(html);
  };

  const openDocument = (session: Session, document: CatalogueDocument): string => {
    const token = randomBytes(8).toString("hex");
    session.documents.set(token, document.id);
    return resultFrameset(token);
  };

  /** Waits before a search's answer; never resolves while searches hang (the response is kept to be destroyed on stop). */
  const beforeResult = async (response: ServerResponse): Promise<boolean> => {
    if (behaviour.hangSearches) {
      hanging.add(response);
      return false;
    }
    if (behaviour.resultDelayMs > 0) await delay(behaviour.resultDelayMs);
    return true;
  };

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? "/", "http://replica");
    const form = request.method === "POST" ? new URLSearchParams(await readBody(request)) : new URLSearchParams();
    if (behaviour.pageDelayMs > 0) await delay(behaviour.pageDelayMs);
    const path = url.pathname;

    if (path === "/" || path === "/Sirf" || path === PAGE_PATHS.entry) return send(response, 200, entryPage());
    if (path === PAGE_PATHS.login) {
      if (request.method !== "POST") return send(response, 200, loginPage());
      const username = form.get("txtCodeUtils") ?? "";
      const password = form.get("txtMotPasse") ?? "";
      if (username === "" || accounts[username] === undefined || accounts[username] !== password || behaviour.refusedUsernames.includes(username)) {
        stats.refusedLogins += 1;
        return send(response, 200, loginPage(SITE_MESSAGES.loginRefused));
      }
      const previous = liveSessionOf.get(username);
      const previousSession = previous === undefined ? undefined : sessions.get(previous);
      if (previousSession !== undefined && !previousSession.expired && Date.now() - previousSession.lastSeenAt <= sessionIdleMs) {
        stats.displacedSessions += 1;
        previousSession.expired = true;
      }
      const id = randomBytes(12).toString("base64url");
      sessions.set(id, { id, username, lastSeenAt: Date.now(), expired: false, documents: new Map() });
      liveSessionOf.set(username, id);
      stats.logins[username] = (stats.logins[username] ?? 0) + 1;
      stats.loginLog.push({ username, at: Date.now() });
      response.writeHead(302, { location: PAGE_PATHS.menu, "set-cookie": `${SESSION_COOKIE}=${id}; Path=/Sirf; HttpOnly` });
      response.end();
      return;
    }

    const session = sessionOf(request);
    if (session === undefined || session === "expired") {
      if (session === "expired") stats.expiredSessionHits += 1;
      // The site sends an expired visitor back to the entry page with this notice.
      return send(response, 200, entryPage(session === "expired" ? SITE_MESSAGES.sessionExpired : undefined));
    }

    switch (path) {
      case PAGE_PATHS.menu:
        return send(response, 200, menuPage());
      case PAGE_PATHS.index:
      case PAGE_PATHS.plan: {
        const page = path === PAGE_PATHS.index ? "index" : "plan";
        if (page === "plan" && form.get("hidEtape") === "selection") return planSelected(session, form, response);
        if (page === "plan" && form.get("hidEtape") === "confirmation") return planConfirmed(session, form, response);
        const circonscription = circonscriptionByCode(form.get("selCircnFoncr") ?? "");
        const values = Object.fromEntries(form.entries());
        if (request.method !== "POST" || form.get("hidRechg") === "1" || form.get("btnSoumettre") === null) {
          return send(response, 200, lotSearchPage({ page, circonscription, values }));
        }
        const cadastre = circonscription?.cadastres[Number(form.get("selCadst") ?? "") - 1];
        const lot = (form.get("txtNumrtLot") ?? "").trim();
        if (circonscription === undefined || cadastre === undefined || lot === "") {
          return send(response, 200, lotSearchPage({ page, circonscription, values, error: SITE_MESSAGES.aucuneInformation }));
        }
        if (!(await beforeResult(response))) return;
        const source = page === "index" ? "index" : "plan_cadastraux";
        const document = findCatalogueDocument({ source, number: lot, circonscription: circonscription.name, cadastre });
        if (document === undefined) {
          const message =
            page === "plan"
              ? SITE_MESSAGES.aucuneInformation
              : lotExistsElsewhere(source, lot, circonscription.name)
                ? SITE_MESSAGES.lotHorsCirconscription
                : SITE_MESSAGES.ficheInexistante;
          return send(response, 200, lotSearchPage({ page, circonscription, values, error: message }));
        }
        if (page === "index") return send(response, 200, openDocument(session, document));
        session.planDocumentId = document.id;
        return send(response, 200, planSelectionPage(document.planChoices ?? []));
      }
      case PAGE_PATHS.acte: {
        const choice = url.searchParams.get("choix");
        if (choice !== null) {
          const row = session.similarList?.[Number(choice)];
          const document = REGISTRY_CATALOGUE.find((candidate) => candidate.id === row?.documentId);
          if (row === undefined || row.paperOnly || document === undefined) return send(response, 200, errorPage("Réquisition", SITE_MESSAGES.documentInexistant));
          if (!(await beforeResult(response))) return;
          return send(response, 200, openDocument(session, document));
        }
        const values = Object.fromEntries(form.entries());
        if (request.method !== "POST" || form.get("btnRechr") === null) return send(response, 200, acteSearchPage(values));
        const circonscription = circonscriptionByCode(form.get("selCircnFoncr") ?? "");
        const acteType = form.get("selTypeDocmn") ?? "";
        const number = (form.get("txtNoReqst") ?? "").trim();
        if (circonscription === undefined || !(ACTE_TYPES as readonly string[]).includes(acteType) || number === "") {
          return send(response, 200, acteSearchPage(values, SITE_MESSAGES.aucuneInformation));
        }
        if (!(await beforeResult(response))) return;
        const document = findCatalogueDocument({ source: "acte", number, circonscription: circonscription.name, acteType });
        if (document === undefined) return send(response, 200, acteSearchPage(values, SITE_MESSAGES.documentInexistant));
        if (document.similarNumbers !== undefined) {
          session.similarList = document.similarNumbers;
          return send(response, 200, similarNumbersPage(document.similarNumbers));
        }
        return send(response, 200, openDocument(session, document));
      }
      case PAGE_PATHS.resultMenu:
        return send(response, 200, resultMenuPage(url.searchParams.get("doc") ?? ""));
      case PAGE_PATHS.resultPage: {
        const documentId = session.documents.get(url.searchParams.get("doc") ?? "");
        const document = REGISTRY_CATALOGUE.find((candidate) => candidate.id === documentId);
        return send(response, 200, resultViewPage(document?.pages.length ?? 0));
      }
      case PAGE_PATHS.download: {
        const documentId = session.documents.get(url.searchParams.get("doc") ?? "");
        const bytes = documentId === undefined ? undefined : pdfs.get(documentId);
        if (bytes === undefined) return send(response, 200, errorPage("Document", SITE_MESSAGES.documentInexistant));
        stats.downloads += 1;
        response.writeHead(200, {
          "content-type": "application/pdf",
          "content-length": String(bytes.length),
          "content-disposition": `attachment; filename="${documentId}.pdf"`,
          "cache-control": "no-store",
        });
        response.end(bytes);
        return;
      }
      default:
        return send(response, 404, errorPage("Page introuvable", "La page demandée est introuvable."));
    }
  }

  function planSelected(session: Session, form: URLSearchParams, response: ServerResponse): void {
    const document = REGISTRY_CATALOGUE.find((candidate) => candidate.id === session.planDocumentId);
    const choice = document?.planChoices?.[Number(form.get("radPlan") ?? "-1")];
    if (document === undefined || choice === undefined) {
      return send(response, 200, planSelectionPage(document?.planChoices ?? []).replace("<form", `<table><tr><td class="contValErr">Veuillez sélectionner un plan</td></tr></table><form`));
    }
    session.planChoice = choice;
    send(response, 200, planConfirmationPage(choice));
  }

  async function planConfirmed(session: Session, form: URLSearchParams, response: ServerResponse): Promise<void> {
    const document = REGISTRY_CATALOGUE.find((candidate) => candidate.id === session.planDocumentId);
    if (document === undefined || session.planChoice === undefined || form.get("btnConfr") === null) {
      return send(response, 200, errorPage("Plan cadastral", SITE_MESSAGES.aucuneInformation));
    }
    if (!(await beforeResult(response))) return;
    send(response, 200, openDocument(session, document));
  }

  let server: Server = createServer();
  const listen = async (port: number): Promise<number> => {
    server = createServer((request, response) => {
      handle(request, response).catch((error: unknown) => {
        if (!response.headersSent) send(response, 500, errorPage("Erreur", `Erreur du serveur: ${String(error)}`));
        else response.destroy();
      });
    });
    server.on("connection", (socket) => {
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => {
        server.off("error", reject);
        resolve();
      });
    });
    const address = server.address();
    if (address === null || typeof address === "string") throw new Error("the replica has no TCP address");
    return address.port;
  };

  const port = await listen(options.port ?? 0);
  let running = true;
  return {
    url: `http://${host}:${port}`,
    port,
    setBehaviour(change) {
      behaviour = { ...behaviour, ...change };
      if (!behaviour.hangSearches) {
        // Hung requests stay hung (as on the real site); the runner has long given up on them.
        for (const response of hanging) response.destroy();
        hanging.clear();
      }
    },
    setAccounts(next) {
      accounts = { ...next };
    },
    expireSessions() {
      for (const session of sessions.values()) session.expired = true;
    },
    stats: () => ({ ...stats, logins: { ...stats.logins }, loginLog: [...stats.loginLog], hangingRequests: hanging.size }),
    async stop() {
      if (!running) return;
      running = false;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const response of hanging) response.destroy();
      hanging.clear();
      for (const socket of sockets) socket.destroy();
      await closed;
    },
    async restart() {
      if (running) return;
      await listen(port);
      running = true;
    },
  };
}

async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    const buffer = chunk as Buffer;
    size += buffer.length;
    if (size > 64 * 1024) throw new Error("form too large");
    chunks.push(buffer);
  }
  return Buffer.concat(chunks).toString("utf8");
}
