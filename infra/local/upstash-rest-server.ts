import { createHash, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { Command, Redis } from "ioredis";
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

/** One value of a REST reply, after RESP2 → JSON. */
type RestValue = string | number | null | RestValue[];
type RestEntry = { result: RestValue } | { error: string };
type CommandArgs = readonly [name: string, ...args: string[]];

/** Largest request body accepted; Upstash's own limit is lower, this only guards memory. */
const MAX_BODY_BYTES = 64 * 1024 * 1024;

/**
 * Commands that change the state of the connection they run on. Every request
 * shares one connection, so these would leak from one request into the next.
 */
const CONNECTION_STATE_COMMANDS = new Set([
  "AUTH", "HELLO", "SELECT", "RESET", "QUIT", "MULTI", "EXEC", "DISCARD", "WATCH", "UNWATCH",
  "SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE", "UNSUBSCRIBE", "PUNSUBSCRIBE", "SUNSUBSCRIBE", "MONITOR", "SYNC", "PSYNC",
]);

/** Commands that can block; they get a connection of their own so they cannot stall everyone else. */
const BLOCKING_COMMANDS = new Set([
  "BLPOP", "BRPOP", "BRPOPLPUSH", "BLMOVE", "BLMPOP", "BZPOPMIN", "BZPOPMAX", "BZMPOP", "WAIT", "WAITAOF",
]);

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

// ---------------------------------------------------------------------------
// Running commands

/**
 * Sends every command at once on the shared connection, in order, and waits
 * for all replies: that is exactly a Redis pipeline, errors stay per command.
 */
async function runPipeline(redis: Redis, scripts: ScriptRewriter, commands: readonly CommandArgs[]): Promise<Reply[]> {
  const refused = commands.map(refusal);
  if (commands.some(isBlocking)) {
    // A blocking command would hold the shared connection; run the whole
    // pipeline on its own connection so the order between commands holds.
    const own = redis.duplicate();
    own.on("error", () => {});
    try {
      // The offline queue is off, so connect before the first command.
      await own.connect();
      const replies: Reply[] = [];
      for (const [i, command] of commands.entries()) {
        replies.push(refused[i] ?? (await runOne(own, scripts.prepare(command))));
      }
      return replies;
    } finally {
      own.disconnect();
    }
  }
  return Promise.all(commands.map((command, i) => refused[i] ?? runOne(redis, scripts.prepare(command))));
}

async function runOne(redis: Redis, prepared: Prepared): Promise<Reply> {
  const reply = await settle(send(redis, prepared.command));
  return "error" in reply ? reply : { raw: prepared.present(reply.raw) };
}

/**
 * MULTI, the commands and EXEC are written in the same tick on the shared
 * connection, so nothing from another request can land between them, and
 * Redis runs them as one transaction. A command Redis refuses while queuing
 * aborts the whole transaction (EXECABORT), which the REST API reports as one
 * error for the request; errors raised while executing stay per command.
 */
async function runTransaction(
  redis: Redis,
  scripts: ScriptRewriter,
  commands: readonly CommandArgs[],
): Promise<{ entries: Reply[] } | { error: string }> {
  for (const [i, command] of commands.entries()) {
    const refused = refusal(command);
    if (refused) return { error: `EXECABORT Transaction discarded because of previous errors. Command ${i + 1}: ${refused.error}` };
  }
  const prepared = commands.map((command) => scripts.prepare(command));
  const multi = settle(send(redis, ["MULTI"]));
  const queued = prepared.map(({ command }) => settle(send(redis, command)));
  const exec = settle(send(redis, ["EXEC"]));
  const [multiReply, execReply, ...queuedReplies] = await Promise.all([multi, exec, ...queued]);
  if (multiReply && "error" in multiReply) return { error: multiReply.error };
  const queueError = queuedReplies.findIndex((reply) => "error" in reply);
  if (execReply && "error" in execReply) {
    const detail = queueError >= 0 ? ` Command ${queueError + 1}: ${(queuedReplies[queueError] as { error: string }).error}` : "";
    return { error: `${execReply.error}${detail}` };
  }
  if (!execReply || !Array.isArray(execReply.raw)) return { error: "ERR transaction aborted" };
  return {
    entries: execReply.raw.map((value: unknown, i) =>
      value instanceof Error ? { error: value.message } : { raw: prepared[i]?.present(value) ?? value },
    ),
  };
}

/** A reply still in ioredis form (Buffers, numbers, nested arrays), or Redis's error message. */
type Reply = { raw: unknown } | { error: string };

function send(redis: Redis, [name, ...args]: CommandArgs): Promise<unknown> {
  // Upper-case names skip ioredis' per-command argument and reply transformers
  // (`hgetall` → object, `hset` object arguments), which are keyed on lower-case
  // names: replies must stay RESP2-shaped. `replyEncoding: null` keeps bulk
  // strings as Buffers so bytes pass through untouched.
  return redis.sendCommand(new Command(name.toUpperCase(), args, { replyEncoding: null })) as Promise<unknown>;
}

async function settle(reply: Promise<unknown>): Promise<Reply> {
  try {
    return { raw: await reply };
  } catch (error) {
    if (error instanceof Error && error.name === "ReplyError") return { error: error.message };
    // Not an answer from Redis (connection lost, …): fail the whole request.
    throw error;
  }
}

function refusal([name]: CommandArgs): { error: string } | undefined {
  const upper = name.toUpperCase();
  if (CONNECTION_STATE_COMMANDS.has(upper)) return { error: `ERR command ${upper} is not supported over REST` };
  return undefined;
}

function isBlocking([name, ...args]: CommandArgs): boolean {
  const upper = name.toUpperCase();
  if (BLOCKING_COMMANDS.has(upper)) return true;
  return (upper === "XREAD" || upper === "XREADGROUP") && args.some((arg) => arg.toUpperCase() === "BLOCK");
}

// ---------------------------------------------------------------------------
// Lua scripts

/**
 * `@upstash/ratelimit` scripts start with `#!lua flags=allow-key-locking`, a
 * flag only Upstash knows: stock Redis 7.0 refuses the script ("Unexpected
 * flag in script shebang"). We drop that flag (and the shebang line when no
 * flag is left) before Redis sees the script.
 *
 * The client computes the SHA1 of the script it holds — with the shebang — and
 * sends `EVALSHA <that sha>`, falling back to EVAL on NOSCRIPT. Redis only
 * knows the SHA1 of the rewritten text, so we remember original → rewritten
 * for every script we rewrote and translate EVALSHA and SCRIPT EXISTS. An
 * unknown SHA passes through untouched, so Redis answers with its own NOSCRIPT
 * error and the client falls back to EVAL, which records the mapping.
 */
class ScriptRewriter {
  readonly #rewrittenSha = new Map<string, string>();

  /** The command Redis should run, and how to turn its reply into the one Upstash would give. */
  prepare(command: CommandArgs): Prepared {
    const [name, ...args] = command;
    const upper = name.toUpperCase();
    if ((upper === "EVAL" || upper === "EVAL_RO") && args[0] !== undefined) {
      return unchangedReply([name, this.#strip(args[0]), ...args.slice(1)]);
    }
    if ((upper === "EVALSHA" || upper === "EVALSHA_RO") && args[0] !== undefined) {
      return unchangedReply([name, this.#translate(args[0]), ...args.slice(1)]);
    }
    if (upper === "SCRIPT" && args[0] !== undefined) {
      const sub = args[0].toUpperCase();
      if (sub === "LOAD" && args[1] !== undefined) {
        // Redis answers with the SHA1 of what it loaded; the client expects the one of what it sent.
        const originalSha = Buffer.from(sha1(args[1]), "utf8");
        return { command: [name, args[0], this.#strip(args[1])], present: () => originalSha };
      }
      if (sub === "EXISTS") return unchangedReply([name, args[0], ...args.slice(1).map((sha) => this.#translate(sha))]);
    }
    return unchangedReply(command);
  }

  /** The script as Redis 7.0 accepts it; records the SHA translation when the text changed. */
  #strip(script: string): string {
    const rewritten = withoutUpstashFlags(script);
    if (rewritten !== script) this.#rewrittenSha.set(sha1(script), sha1(rewritten));
    return rewritten;
  }

  #translate(sha: string): string {
    return this.#rewrittenSha.get(sha.toLowerCase()) ?? sha;
  }
}

/** A command ready for Redis, with what to do to its (successful) reply. */
interface Prepared {
  readonly command: CommandArgs;
  present(raw: unknown): unknown;
}

function unchangedReply(command: CommandArgs): Prepared {
  return { command, present: (raw) => raw };
}

/** Script flags Upstash accepts but Redis 7.0 rejects. */
const UPSTASH_ONLY_SCRIPT_FLAGS = new Set(["allow-key-locking"]);

function withoutUpstashFlags(script: string): string {
  const match = /^#!lua([^\n]*)(\n|$)/.exec(script);
  if (!match) return script;
  const options = (match[1] ?? "").trim().split(/\s+/).filter((option) => option.length > 0);
  let changed = false;
  const kept = options.flatMap((option) => {
    if (!option.startsWith("flags=")) return [option];
    const flags = option.slice("flags=".length).split(",").filter((flag) => flag.length > 0);
    const supported = flags.filter((flag) => !UPSTASH_ONLY_SCRIPT_FLAGS.has(flag));
    if (supported.length === flags.length) return [option];
    changed = true;
    return supported.length > 0 ? [`flags=${supported.join(",")}`] : [];
  });
  if (!changed) return script;
  const rest = script.slice(match[0].length);
  // With no flag left the shebang line has nothing to say; an empty line in
  // its place keeps the line numbers in Lua error messages right.
  return kept.length > 0 ? `#!lua ${kept.join(" ")}\n${rest}` : `\n${rest}`;
}

// ---------------------------------------------------------------------------
// HTTP and JSON

function isAuthorized(request: IncomingMessage, expectedTokenDigest: Buffer): boolean {
  const header = headerValue(request, "authorization");
  const match = header === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(header);
  const presented = match?.[1] ?? new URL(request.url ?? "/", "http://localhost").searchParams.get("_token");
  if (!presented) return false;
  // Comparing fixed-length digests keeps the comparison constant-time even when lengths differ.
  return timingSafeEqual(sha256(presented), expectedTokenDigest);
}

function headerValue(request: IncomingMessage, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

async function readBody(request: IncomingMessage): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    const buffer = chunk as Buffer;
    size += buffer.length;
    if (size > MAX_BODY_BYTES) return undefined;
    chunks.push(buffer);
  }
  return Buffer.concat(chunks);
}

/** `["SET", "k", "v"]` → a command, or an error message for the client. */
function parseCommand(body: Buffer): CommandArgs | string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString("utf8"));
  } catch {
    return "ERR failed to parse command: body is not JSON";
  }
  return toCommand(parsed);
}

function parseCommandList(body: Buffer): CommandArgs[] | string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString("utf8"));
  } catch {
    return "ERR failed to parse pipeline request: body is not JSON";
  }
  if (!Array.isArray(parsed) || parsed.length === 0) return "ERR a pipeline must be a non-empty array of commands";
  const commands: CommandArgs[] = [];
  for (const item of parsed) {
    const command = toCommand(item);
    if (typeof command === "string") return command;
    commands.push(command);
  }
  return commands;
}

function toCommand(value: unknown): CommandArgs | string {
  if (!Array.isArray(value) || value.length === 0) return "ERR a command must be a non-empty JSON array";
  const args: string[] = [];
  for (const item of value) {
    // The client already turns every argument into a string; numbers and
    // booleans from hand-written requests are accepted as Redis would read them.
    if (typeof item === "string") args.push(item);
    else if (typeof item === "number" || typeof item === "boolean") args.push(String(item));
    else return "ERR command arguments must be strings, numbers or booleans";
  }
  const [name, ...rest] = args;
  if (name === undefined || name.length === 0) return "ERR empty command name";
  return [name, ...rest];
}

/** `/set/foo/bar` → `SET foo bar`; a POST body becomes the last argument, as Upstash does. */
function pathCommand(pathname: string, body: Buffer): CommandArgs | string {
  const segments = pathname.split("/").filter((segment) => segment.length > 0).map((segment) => decodeURIComponent(segment));
  if (body.length > 0) segments.push(body.toString("utf8"));
  const [name, ...args] = segments;
  if (name === undefined) return "ERR empty command";
  return [name, ...args];
}

function encodeEntry(reply: Reply, base64: boolean): RestEntry {
  return "error" in reply ? { error: reply.error } : { result: toRestValue(reply.raw, base64) };
}

/** RESP2 reply → JSON: strings (base64 when asked), integers, null, nested arrays. */
function toRestValue(value: unknown, base64: boolean): RestValue {
  if (value === null || value === undefined) return null;
  if (typeof value === "number") return value;
  if (Buffer.isBuffer(value)) return base64 ? value.toString("base64") : value.toString("utf8");
  if (typeof value === "string") return base64 ? Buffer.from(value, "utf8").toString("base64") : value;
  if (Array.isArray(value)) return value.map((item: unknown) => toRestValue(item, base64));
  // An error nested in an array (a Lua table holding an error reply) has no
  // REST form of its own; its message is the most useful thing to show.
  if (value instanceof Error) return toRestValue(value.message, base64);
  return toRestValue(String(value), base64);
}

function sendJson(response: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  response.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  response.end(text);
}


function sha1(text: string): string {
  return createHash("sha1").update(text, "utf8").digest("hex");
}

function sha256(text: string): Buffer {
  return createHash("sha256").update(text, "utf8").digest();
}
