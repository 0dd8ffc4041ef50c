import postgres from "postgres";
import { z } from "zod";
import { signHint } from "../../supabase/functions/_shared/hint-signature.ts";

/** The channel the migrations' "invoke edge function" helper notifies when pg_net is absent. */
export const EDGE_FUNCTION_CALLS_CHANNEL = "edge_function_calls";

const notification = z.object({ function: z.string().regex(/^[a-z0-9_-]+$/), body: z.unknown() });

export interface FunctionHintBridge {
  /** Resolves when the LISTEN is in place. */
  readonly ready: Promise<void>;
  stop(): Promise<void>;
}

/**
 * Stands in for pg_net locally: LISTENs for the helper's notifications and
 * POSTs each body to the named function, signed as the database signs what
 * pg_net sends (hint-signature.ts; the NOTIFY carries no secret).
 * Like pg_net it is fire-and-forget: a failed POST is logged and dropped,
 * because the pg_cron tick, not the hint, is what guarantees dispatch.
 */
export function startFunctionHintBridge(options: {
  databaseUrl: string;
  functionsUrl: string;
  dispatchSecret: string;
  log: (entry: Record<string, unknown>) => void;
}): FunctionHintBridge {
  const { databaseUrl, functionsUrl, dispatchSecret, log } = options;
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {} });
  const inFlight = new Set<Promise<void>>();

  const forward = async (payload: string) => {
    const parsed = notification.safeParse(safeJson(payload));
    if (!parsed.success) {
      log({ level: "warn", msg: "ignored a malformed edge function call", error: parsed.error.message });
      return;
    }
    const { function: name, body } = parsed.data;
    try {
      const bodyText = JSON.stringify(body ?? {});
      const response = await fetch(`${functionsUrl}/functions/v1/${name}`, {
        method: "POST",
        headers: { "content-type": "application/json", ...(await signHint(dispatchSecret, Date.now() / 1000, bodyText)) },
        body: bodyText,
        signal: AbortSignal.timeout(30_000),
      });
      await response.body?.cancel();
      log({ level: response.ok ? "debug" : "warn", msg: "forwarded edge function call", function: name, status: response.status });
    } catch (error) {
      log({ level: "warn", msg: "edge function call failed", function: name, error: String(error) });
    }
  };

  const ready = sql
    .listen(EDGE_FUNCTION_CALLS_CHANNEL, (payload) => {
      const call = forward(payload);
      inFlight.add(call);
      void call.finally(() => inFlight.delete(call));
    })
    .then(() => undefined);

  return {
    ready,
    async stop() {
      await Promise.allSettled([...inFlight]);
      await sql.end({ timeout: 2 });
    },
  };
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
