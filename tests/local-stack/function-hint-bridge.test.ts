import { verifyHint } from "../../supabase/functions/_shared/hint-signature.ts";
import { createServer, type IncomingMessage, type Server } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../infra/local/free-port.ts";
import { startFunctionHintBridge, type FunctionHintBridge } from "../../infra/local/function-hint-bridge.ts";
import { createFreshDatabase, type FreshDatabase } from "../helpers/fresh-database.ts";

interface ReceivedCall {
  path: string;
  headers: Headers;
  text: string;
  body: unknown;
}

/** Stands where the edge runtime would, recording what the bridge POSTs. */
async function startRecordingServer(): Promise<{ url: string; calls: ReceivedCall[]; server: Server }> {
  const calls: ReceivedCall[] = [];
  const server = createServer(async (request: IncomingMessage, response) => {
    let text = "";
    for await (const chunk of request) text += String(chunk);
    const headers = new Headers();
    for (const [name, value] of Object.entries(request.headers)) if (typeof value === "string") headers.set(name, value);
    calls.push({ path: request.url ?? "", headers, text, body: JSON.parse(text) });
    response.writeHead(200, { "content-type": "application/json" }).end("{}");
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${port}`, calls, server };
}

async function until<T>(probe: () => T | undefined, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error("timed out waiting for a forwarded call");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe("the pg_net stand-in", () => {
  let database: FreshDatabase;
  let recorder: Awaited<ReturnType<typeof startRecordingServer>>;
  let bridge: FunctionHintBridge;

  beforeAll(async () => {
    database = await createFreshDatabase();
    recorder = await startRecordingServer();
    bridge = startFunctionHintBridge({ databaseUrl: database.url, functionsUrl: recorder.url, dispatchSecret: "test-dispatch-secret", log: () => {} });
    await bridge.ready;
  });
  afterAll(async () => {
    await bridge?.stop();
    recorder?.server.close();
    await database?.drop();
  });

  it("has no pg_net locally, so the helper falls back to NOTIFY", async () => {
    const rows = await database.sql`select 1 from pg_extension where extname = 'pg_net'`;
    expect(rows).toHaveLength(0);
  });

  it("carries a row change in Postgres to the dispatch function with the dispatch secret", async () => {
    await database.sql`
      insert into extraction_queue (document_source, document_number, circonscription_fonciere, cadastre)
      values ('index', '2 345 678', 'Montréal', 'Cadastre du Québec')`;
    const call = await until(() => recorder.calls.find((c) => c.path === "/functions/v1/dispatch"));
    // Signed, never the secret itself.
    expect(call.headers.get("authorization")).toBeNull();
    expect(call.text).not.toContain("test-dispatch-secret");
    expect(await verifyHint("test-dispatch-secret", call.headers, call.text, Date.now())).toEqual({ ok: true });
    expect(call.body).toMatchObject({ reason: "insert" });
  });
});
