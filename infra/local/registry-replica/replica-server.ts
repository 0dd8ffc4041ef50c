/**
 * A local replica of the Registre foncier du Québec's search site, for the
 * embedded stack, the registre tests and the benchmark, rebuilt from the
 * public evidence (sources in replica-pages.ts): the login at
 * `14_06_01-02`, the welcome page, the lot and acte forms with their hidden
 * fields, the similar-numbers list as radios under a `contValErr` notice,
 * plan selection, "Confirmer" for large documents of any type, the result
 * frameset and its save link, the "does not exist" messages and the
 * idle-session timeout, serving the catalogue's PDFs (catalogue.ts). Tests
 * switch how the PDF is delivered and how the entry leads to the login, slow
 * it down, make it hang, put it in maintenance or answer 503, expire its
 * sessions, and stop and restart it on the same port.
 */
import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { setTimeout as delay } from "node:timers/promises";
import { REGISTRY_CATALOGUE } from "./catalogue.ts";
import { DEFAULT_CATALOGUE_CACHE_DIR } from "./registry-catalogue.ts";
import { entryPage, loginPage, maintenancePage, messagePage, PAGE_PATHS, SITE_MESSAGES, type EntryStyle, type PdfDelivery } from "./replica-pages.ts";
import { routeSessionRequest, send, type ReplicaSession, type RouteBehaviour } from "./replica-routes.ts";
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
  /** How the save link hands over the PDF. @default "attachment" */
  readonly pdfDelivery: PdfDelivery;
  /** How the entry page leads to the login form. @default "link" */
  readonly entryStyle: EntryStyle;
  /** Every page is a maintenance page (200), or every answer a 503. @default "none" */
  readonly outage: "none" | "maintenance" | "http503";
  /** Every document asks "Confirmer" first. @default false */
  readonly largeDocuments: boolean;
  /** The plan selection's button. @default "Soumettre" */
  readonly planButton: "Soumettre" | "Continuer";
  /** Every search answers with this message (account, payment, unknown). @default undefined */
  readonly searchMessage: string | undefined;
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
  readonly logouts: number;
  /** The last request's User-Agent and Accept-Language headers: how the runner presents itself. */
  readonly lastUserAgent: string;
  readonly lastAcceptLanguage: string;
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

const SESSION_COOKIE = "ASPSESSIONIDSIRF";

export async function startRegistryReplica(options: RegistryReplicaOptions): Promise<RegistryReplica> {
  const host = options.host ?? "127.0.0.1";
  const cacheDir = options.cacheDir ?? DEFAULT_CATALOGUE_CACHE_DIR;
  const sessionIdleMs = options.sessionIdleMs ?? 20 * 60_000;
  let accounts = { ...options.accounts };
  let behaviour: ReplicaBehaviour = {
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
    ...options.behaviour,
  };
  const sessions = new Map<string, ReplicaSession>();
  const liveSessionOf = new Map<string, string>();
  const stats = { logins: {} as Record<string, number>, refusedLogins: 0, displacedSessions: 0, expiredSessionHits: 0, downloads: 0, logouts: 0, lastUserAgent: "", lastAcceptLanguage: "", loginLog: [] as { username: string; at: number }[] };

  // Render every PDF before listening, so no request waits on a first render.
  const pdfs = new Map<string, Uint8Array>();
  for (const document of REGISTRY_CATALOGUE) pdfs.set(document.id, (await cachedScannedPdf(document, cacheDir)).bytes);

  const sockets = new Set<Socket>();
  const hanging = new Set<ServerResponse>();

  const sessionOf = (request: IncomingMessage): ReplicaSession | "expired" | undefined => {
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

  /** Waits before a search's answer; never resolves while searches hang (the response is kept to be destroyed on stop). */
  const beforeResult = async (response: ServerResponse): Promise<boolean> => {
    if (behaviour.hangSearches) {
      hanging.add(response);
      return false;
    }
    if (behaviour.resultDelayMs > 0) await delay(behaviour.resultDelayMs);
    return true;
  };

  const routes = {
    behaviour: (): RouteBehaviour => behaviour,
    pdfs,
    beforeResult,
    countDownload: () => {
      stats.downloads += 1;
    },
  };

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? "/", "http://replica");
    stats.lastUserAgent = request.headers["user-agent"] ?? "";
    stats.lastAcceptLanguage = request.headers["accept-language"] ?? "";
    const form = request.method === "POST" ? new URLSearchParams(await readBody(request)) : new URLSearchParams();
    if (behaviour.pageDelayMs > 0) await delay(behaviour.pageDelayMs);
    if (behaviour.outage === "http503") return send(response, 503, "<html><body><h1>Service Unavailable</h1></body></html>");
    if (behaviour.outage === "maintenance") return send(response, 200, maintenancePage());
    const path = url.pathname;

    if (path.startsWith("/Sirf/Images/")) {
      // The site's images are not in the evidence: a 1×1 transparent GIF stands for each.
      response.writeHead(200, { "content-type": "image/gif", "cache-control": "max-age=3600" });
      response.end(Buffer.from("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7", "base64"));
      return;
    }
    if (path === "/" || path === "/Sirf" || path === PAGE_PATHS.entry) return send(response, 200, entryPage(behaviour.entryStyle));
    if (path === PAGE_PATHS.login) {
      if (request.method !== "POST") return send(response, 200, loginPage());
      // SIRF-py `_SIRF_LOGIN_FIELDS`.
      const username = form.get("txtVaCodeUtils") ?? "";
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
      // The Guide: the welcome page opens the session.
      response.writeHead(302, { location: PAGE_PATHS.welcome, "set-cookie": `${SESSION_COOKIE}=${id}; Path=/Sirf; HttpOnly` });
      response.end();
      return;
    }
    if (path === PAGE_PATHS.logout) {
      const session = sessionOf(request);
      if (session !== undefined && session !== "expired") {
        session.expired = true;
        stats.logouts += 1;
      }
      return send(response, 200, entryPage(behaviour.entryStyle));
    }

    const session = sessionOf(request);
    if (session === undefined || session === "expired") {
      if (session === "expired") stats.expiredSessionHits += 1;
      // Where the real site sends an expired visitor is not in the evidence: here its entry page with a notice.
      return send(response, 200, entryPage(behaviour.entryStyle, session === "expired" ? SITE_MESSAGES.sessionExpired : undefined));
    }
    if (await routeSessionRequest(routes, session, request, url, form, response)) return;
    return send(response, 404, messagePage("Page introuvable", "La page demandée est introuvable."));
  }

  let server: Server = createServer();
  const listen = async (port: number): Promise<number> => {
    server = createServer((request, response) => {
      handle(request, response).catch((error: unknown) => {
        if (!response.headersSent) send(response, 500, messagePage("Erreur", `Erreur du serveur: ${String(error)}`));
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
