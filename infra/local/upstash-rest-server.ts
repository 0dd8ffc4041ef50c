// The local Upstash endpoint: an HTTP server in front of a private redis-server, one shared connection, closed cleanly.
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { Redis } from "ioredis";
import { runPipeline, runTransaction } from "./upstash-redis-commands.ts";
import {
  encodeEntry,
  headerValue,
  isAuthorized,
  MAX_BODY_BYTES,
  parseCommand,
  parseCommandList,
  pathCommand,
  readBody,
  sendJson,
  sha256,
} from "./upstash-rest-protocol.ts";
import { ScriptRewriter } from "./upstash-script-rewriter.ts";
import { errorMessage } from "../../supabase/functions/_shared/error-message.ts";

/**
 * The local stand-in for Upstash Redis: a private redis-server behind an HTTP
 * endpoint that speaks the Upstash REST protocol, so the real `@upstash/redis`
 * and `@upstash/ratelimit` clients run unchanged against it.
 *
 * Protocol, as the client (`@upstash/redis` pkg/http.ts, pkg/pipeline.ts) uses it:
 * - `POST /` with `["CMD", ...args]` → `{"result": …}`, or HTTP 400 `{"error": "ERR …"}`.
 * - `POST /pipeline` with `[[…], […]]` → `[{"result": …} | {"error": …}, …]` (not atomic).
 * - `POST /multi-exec` with `[[…], […]]` → the same array, run as MULTI/EXEC.
 * - `Authorization: Bearer <token>`; anything else → HTTP 401 `{"error": …}`.
 * - `Upstash-Encoding: base64` → every string in the result is base64 (numbers
 *   and nulls are not), so binary values and non-ASCII text survive JSON.
 */
export interface UpstashRestServerOptions {
  /** The redis-server to forward commands to, e.g. `redis://127.0.0.1:6390`. */
  redisUrl: string;
  /** The bearer token clients must present. */
  token: string;
  /** Port to listen on; 0 lets the kernel pick one. */
  port: number;
  /** @default "127.0.0.1" */
  host?: string;
}

export interface UpstashRestServer {
  /** What to pass to `new Redis({ url })`, e.g. `http://127.0.0.1:8079`. */
  readonly url: string;
  /** Stops accepting requests, drops idle keep-alive sockets, disconnects from Redis. */
  close(): Promise<void>;
}

export async function startUpstashRestServer(options: UpstashRestServerOptions): Promise<UpstashRestServer> {
  const { redisUrl, token, port, host = "127.0.0.1" } = options;
  // While Redis is down a request fails at once, as Upstash answers when its
  // database is unreachable, instead of waiting in ioredis's offline queue.
  const redis = new Redis(redisUrl, { lazyConnect: true, enableAutoPipelining: false, enableOfflineQueue: false, maxRetriesPerRequest: 1 });
  // Connection errors reach the request that hit them (as HTTP 500); without a
  // listener ioredis would also print each reconnect attempt.
  redis.on("error", () => {});
  await redis.connect();
  const scripts = new ScriptRewriter();
  const expectedTokenDigest = sha256(token);

  const server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      // Reached only when Redis itself is unreachable or the socket broke mid-reply.
      if (!response.headersSent) sendJson(response, 500, { error: `ERR ${errorMessage(error)}` });
      else response.destroy();
    });
  });

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    if (!isAuthorized(request, expectedTokenDigest)) {
      sendJson(response, 401, { error: "Unauthorized: missing or invalid bearer token" });
      return;
    }
    if (request.method !== "POST" && request.method !== "GET") {
      sendJson(response, 405, { error: `ERR method ${request.method ?? "?"} not allowed` });
      return;
    }
    const url = new URL(request.url ?? "/", "http://localhost");
    const base64 = headerValue(request, "upstash-encoding")?.toLowerCase() === "base64";
    const body = request.method === "POST" ? await readBody(request) : Buffer.alloc(0);
    if (body === undefined) {
      sendJson(response, 413, { error: `ERR request body larger than ${MAX_BODY_BYTES} bytes` });
      return;
    }

    if (request.method === "POST" && (url.pathname === "/pipeline" || url.pathname === "/multi-exec")) {
      const commands = parseCommandList(body);
      if (typeof commands === "string") {
        sendJson(response, 400, { error: commands });
        return;
      }
      if (url.pathname === "/pipeline") {
        const entries = await runPipeline(redis, scripts, commands);
        sendJson(response, 200, entries.map((entry) => encodeEntry(entry, base64)));
        return;
      }
      const outcome = await runTransaction(redis, scripts, commands);
      if ("error" in outcome) sendJson(response, 400, { error: outcome.error });
      else sendJson(response, 200, outcome.entries.map((entry) => encodeEntry(entry, base64)));
      return;
    }

    const command = url.pathname === "/" && request.method === "POST" ? parseCommand(body) : pathCommand(url.pathname, body);
    if (typeof command === "string") {
      sendJson(response, 400, { error: command });
      return;
    }
    const [entry] = await runPipeline(redis, scripts, [command]);
    if (entry === undefined || "error" in entry) sendJson(response, 400, { error: entry?.error ?? "ERR no reply" });
    else sendJson(response, 200, encodeEntry(entry, base64));
  }

  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => {
        server.off("error", reject);
        resolve();
      });
    });
  } catch (error) {
    redis.disconnect();
    throw error;
  }
  const address = server.address() as AddressInfo;
  const urlHost = address.family === "IPv6" ? `[${address.address}]` : address.address;

  let closing: Promise<void> | undefined;
  return {
    url: `http://${urlHost}:${address.port}`,
    close() {
      closing ??= (async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        // The client keeps sockets alive between requests; without this close() waits for them to time out.
        server.closeIdleConnections();
        await closed;
        // QUIT waits for a reply that never comes when Redis is already gone.
        if (redis.status === "ready") await redis.quit().catch(() => redis.disconnect());
        else redis.disconnect();
      })();
      return closing;
    },
  };
}
