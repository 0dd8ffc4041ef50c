/**
 * A stand-in for hosted Supabase Storage, speaking the part of its REST
 * protocol supabase-js uses for our objects: upload (`POST
 * /storage/v1/object/{bucket}/{name}` with `x-upsert`) and authenticated
 * download (`GET` on the same path). It checks the bearer key and answers a
 * missing object as Storage does (400 with statusCode "404"), so the
 * production SupabaseStorage class runs unchanged against it.
 */
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export interface StorageTestServer {
  readonly url: string;
  readonly objects: Map<string, { bytes: Buffer; contentType: string }>;
  /** Answers every request with this status while set (an outage). */
  failWith: number | undefined;
  close(): Promise<void>;
}

export async function startStorageTestServer(options: { key: string }): Promise<StorageTestServer> {
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
    if (request.headers.authorization !== `Bearer ${options.key}`) return json(400, { statusCode: "403", error: "Unauthorized", message: "invalid signature" });
    const match = /^\/storage\/v1\/object\/(.+)$/.exec(request.url ?? "");
    if (!match?.[1]) return json(400, { statusCode: "400", error: "invalid", message: "unknown route" });
    const key = decodeURIComponent(match[1]);
    if (request.method === "POST") {
      if (objects.has(key) && request.headers["x-upsert"] !== "true") return json(400, { statusCode: "409", error: "Duplicate", message: "The resource already exists" });
      objects.set(key, { bytes, contentType: String(request.headers["content-type"]) });
      return json(200, { Id: key, Key: key });
    }
    if (request.method === "GET") {
      const object = objects.get(key);
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
