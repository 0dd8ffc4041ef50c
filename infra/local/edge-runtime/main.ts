// Runs under Deno, not Node: the local stand-in for Supabase's edge runtime.
// Serves every function folder under supabase/functions/ at
// /functions/v1/<name>, each loaded unchanged. A function starts its own
// server with Deno.serve(handler); here that call is captured so one process
// and one port route to every function, as the hosted gateway does.

type Handler = (request: Request, info: Deno.ServeHandlerInfo) => Response | Promise<Response>;

const functionsDir = new URL("../../../supabase/functions/", import.meta.url);
const port = Number(Deno.env.get("EDGE_RUNTIME_PORT"));
if (!Number.isInteger(port) || port <= 0) throw new Error("EDGE_RUNTIME_PORT must be a port number");

function handlerFrom(args: unknown[]): Handler {
  for (const arg of args) {
    if (typeof arg === "function") return arg as Handler;
    if (arg && typeof arg === "object" && "handler" in arg && typeof arg.handler === "function") return arg.handler as Handler;
  }
  throw new Error("Deno.serve was called without a handler");
}

const handlers = new Map<string, Handler>();
const realServe = Deno.serve;
for await (const entry of Deno.readDir(functionsDir)) {
  if (!entry.isDirectory || entry.name.startsWith("_") || entry.name.startsWith(".")) continue;
  const entryPoint = new URL(`${entry.name}/index.ts`, functionsDir);
  try {
    await Deno.stat(entryPoint);
  } catch {
    continue;
  }
  let captured: Handler | undefined;
  // @ts-expect-error: replaced only while the function module loads, to capture its handler.
  Deno.serve = (...args: unknown[]) => {
    captured = handlerFrom(args);
    return { finished: Promise.resolve(), shutdown: () => Promise.resolve(), ref() {}, unref() {}, addr: { transport: "tcp", hostname: "127.0.0.1", port } };
  };
  try {
    await import(entryPoint.href);
  } catch (error) {
    // As on the hosted runtime, a function that fails to boot (a missing
    // secret, say) answers 503 with why, and the others keep serving.
    const message = error instanceof Error ? error.message : String(error);
    console.error(JSON.stringify({ level: "error", msg: "function failed to boot", function: entry.name, error: message }));
    captured = () => Response.json({ code: "BOOT_ERROR", message: `function ${entry.name} failed to boot: ${message}` }, { status: 503 });
  } finally {
    Deno.serve = realServe;
  }
  if (!captured) throw new Error(`supabase/functions/${entry.name}/index.ts never called Deno.serve`);
  handlers.set(entry.name, captured);
}

realServe({ port, hostname: "127.0.0.1", onListen: () => console.log(JSON.stringify({ level: "info", msg: "edge runtime listening", port, functions: [...handlers.keys()] })) }, async (request, info) => {
  const url = new URL(request.url);
  const match = /^\/functions\/v1\/([^/]+)(\/.*)?$/.exec(url.pathname);
  const handler = match?.[1] ? handlers.get(match[1]) : undefined;
  if (!match || !handler) return Response.json({ error: `no function at ${url.pathname}` }, { status: 404 });
  try {
    return await handler(request, info);
  } catch (error) {
    console.error(JSON.stringify({ level: "error", msg: "function threw", function: match[1], error: String(error) }));
    return Response.json({ error: "function threw; see the edge runtime log" }, { status: 500 });
  }
});
