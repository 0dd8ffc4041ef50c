/**
 * A stand-in for hosted Supabase Storage, speaking the part of its REST
 * protocol supabase-js uses for our objects: upload (`POST
 * /storage/v1/object/{bucket}/{name}` with `x-upsert`) and authenticated
 * download (`GET` on the same path). It checks the bearer key and answers a
 * missing object as Storage does (400 with statusCode "404"), so the
 * production SupabaseStorage class runs unchanged against it.
 *
 * With `users`, it also speaks Supabase Auth's token grants (`POST
 * /auth/v1/token?grant_type=password|refresh_token`, the publishable key as
 * apikey; single-use refresh tokens; access tokens that expire) and applies
 * the runner families' Storage policies (migration 20261205040000) to a
 * user's bearer token: registre may insert (no upsert), OCR may read; an
 * object the policy hides is "not found", a refused write is Storage's RLS
 * error.
 */
import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export interface StorageTestServer {
  readonly url: string;
  readonly objects: Map<string, { bytes: Buffer; contentType: string }>;
  /** Answers every request with this status while set (an outage). */
  failWith: number | undefined;
  /** Token grants answered, by grant type. */
  readonly grants: { password: number; refresh_token: number };
  close(): Promise<void>;
}

export interface StorageTestUser {
  readonly email: string;
  readonly password: string;
  readonly family: "registre" | "ocr";
}

export interface StorageTestServerOptions {
  /** The legacy storage_runner JWT (full access to the document buckets). */
  readonly key: string;
  readonly publishableKey?: string;
  readonly users?: readonly StorageTestUser[];
  /** @default 3600 */
  readonly accessTtlSeconds?: number;
  /** @default Date.now */
  readonly now?: () => number;
}

export async function startStorageTestServer(options: StorageTestServerOptions): Promise<StorageTestServer> {
  const now = options.now ?? Date.now;
  const accessTokens = new Map<string, { family: StorageTestUser["family"]; expiresAt: number }>();
  const refreshTokens = new Map<string, StorageTestUser["family"]>();
  const grants = { password: 0, refresh_token: 0 };
  const issue = (family: StorageTestUser["family"]) => {
    const access = `eyJhbGciOiJFUzI1NiJ9.${Buffer.from(JSON.stringify({ family, n: randomBytes(6).toString("hex") })).toString("base64url")}.sig`;
    const refresh = randomBytes(12).toString("hex");
    const ttl = options.accessTtlSeconds ?? 3600;
    accessTokens.set(access, { family, expiresAt: now() + ttl * 1000 });
    refreshTokens.set(refresh, family);
    return { access_token: access, token_type: "bearer", expires_in: ttl, refresh_token: refresh };
  };
  const objects = new Map<string, { bytes: Buffer; contentType: string }>();
  const state: { failWith: number | undefined } = { failWith: undefined };
  const server: Server = createServer((request, response) => {
    void handle(request).then(({ status, body, contentType }) => {
      response.writeHead(status, { "content-type": contentType });
      response.end(body);
    });
  });

  async function handle(request: IncomingMessage): Promise<{ status: number; body: Buffer | string; contentType: string }> {
    const json = (status: number, value: unknown) => ({ status, body: JSON.stringify(value), contentType: "application/json" });
    const bytes = await readBody(request);
    if (state.failWith !== undefined) return json(state.failWith, { statusCode: String(state.failWith), error: "unavailable", message: "Service Unavailable" });
    const grant = /^\/auth\/v1\/token\?grant_type=(password|refresh_token)$/.exec(request.url ?? "")?.[1] as "password" | "refresh_token" | undefined;
    if (grant !== undefined && request.method === "POST") {
      if (options.publishableKey === undefined || request.headers.apikey !== options.publishableKey) return json(401, { message: "Invalid API key" });
      const body = JSON.parse(bytes.toString("utf8") || "{}") as { email?: string; password?: string; refresh_token?: string };
      grants[grant] += 1;
      if (grant === "password") {
        const user = options.users?.find((candidate) => candidate.email === body.email && candidate.password === body.password);
        return user === undefined ? json(400, { error: "invalid_grant", error_description: "Invalid login credentials" }) : json(200, issue(user.family));
      }
      const family = body.refresh_token === undefined ? undefined : refreshTokens.get(body.refresh_token);
      if (family === undefined || body.refresh_token === undefined) return json(400, { error: "invalid_grant", error_description: "Invalid Refresh Token: Already Used" });
      refreshTokens.delete(body.refresh_token);
      return json(200, issue(family));
    }
    const bearer = request.headers.authorization?.replace(/^Bearer /, "");
    let family: StorageTestUser["family"] | "legacy";
    if (bearer === options.key) family = "legacy";
    else {
      const session = bearer === undefined ? undefined : accessTokens.get(bearer);
      if (session === undefined || request.headers.apikey !== options.publishableKey) return json(400, { statusCode: "403", error: "Unauthorized", message: "invalid signature" });
      if (now() >= session.expiresAt) return json(400, { statusCode: "403", error: "Unauthorized", message: "jwt expired" });
      family = session.family;
    }
    const match = /^\/storage\/v1\/object\/(.+)$/.exec(request.url ?? "");
    if (!match?.[1]) return json(400, { statusCode: "400", error: "invalid", message: "unknown route" });
    const key = decodeURIComponent(match[1]);
    const rlsRefusal = json(400, { statusCode: "403", error: "Unauthorized", message: "new row violates row-level security policy" });
    if (request.method === "POST") {
      if (family === "ocr" || (family === "registre" && request.headers["x-upsert"] === "true")) return rlsRefusal;
      if (objects.has(key) && request.headers["x-upsert"] !== "true") return json(400, { statusCode: "409", error: "Duplicate", message: "The resource already exists" });
      objects.set(key, { bytes, contentType: String(request.headers["content-type"]) });
      return json(200, { Id: key, Key: key });
    }
    if (request.method === "GET") {
      // A row the policy hides is not there for this user.
      const object = family === "registre" ? undefined : objects.get(key);
      if (object === undefined) return json(400, { statusCode: "404", error: "not_found", message: "Object not found" });
      return { status: 200, body: object.bytes, contentType: object.contentType };
    }
    return json(405, { statusCode: "405", error: "method", message: "Method not allowed" });
  }

  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    objects,
    grants,
    get failWith() {
      return state.failWith;
    },
    set failWith(value) {
      state.failWith = value;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

async function readBody(request: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
