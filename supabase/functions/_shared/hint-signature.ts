/**
 * Dispatch hints carry a short-lived signature instead of the dispatch
 * secret: `X-Dispatch-Timestamp` (Unix seconds) and `X-Dispatch-Signature`
 * (`v1=` and the hex HMAC-SHA256, keyed by the dispatch secret, of
 * `<timestamp>.<body>`). A request read from pg_net's queue (which other
 * database roles may read on hosted Supabase) is good for
 * HINT_MAX_AGE_SECONDS and for its own body only; the secret never leaves
 * Vault and the function. The database signs with pgcrypto's hmac
 * (migration 20261205030700); the local pg_net stand-in and the tests sign
 * here. Runs on Deno and Node alike (Web Crypto).
 */

export const HINT_TIMESTAMP_HEADER = "x-dispatch-timestamp";
export const HINT_SIGNATURE_HEADER = "x-dispatch-signature";
/** How long a signed hint is accepted, either side of the function's clock (clock skew, pg_net's queue). */
export const HINT_MAX_AGE_SECONDS = 300;

const encoder = new TextEncoder();

async function hmacHex(secret: string, message: string): Promise<string> {
  const key = await crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const digest = new Uint8Array(await crypto.subtle.sign("HMAC", key, encoder.encode(message)));
  return Array.from(digest, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/** The two headers for `bodyText` sent at `timestampSeconds`. */
export async function signHint(secret: string, timestampSeconds: number, bodyText: string): Promise<Record<string, string>> {
  const timestamp = String(Math.floor(timestampSeconds));
  return { [HINT_TIMESTAMP_HEADER]: timestamp, [HINT_SIGNATURE_HEADER]: `v1=${await hmacHex(secret, `${timestamp}.${bodyText}`)}` };
}

/**
 * PostgreSQL's text form of a jsonb value (keys shorter first, then
 * bytewise; ", " and ": " separators), the form the database signs. pg_net
 * sends the jsonb body it is given; whether it re-serializes it the same
 * way is not documented, so the signature is checked against the raw body
 * and against this form of it.
 */
export function jsonbText(value: unknown): string {
  if (value === null || typeof value === "boolean" || typeof value === "number") return JSON.stringify(value);
  if (typeof value === "string") return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(jsonbText).join(", ")}]`;
  if (typeof value === "object") {
    const keys = Object.keys(value).sort((a, b) => {
      const left = encoder.encode(a);
      const right = encoder.encode(b);
      if (left.length !== right.length) return left.length - right.length;
      for (let i = 0; i < left.length; i += 1) if (left[i] !== right[i]) return (left[i] ?? 0) - (right[i] ?? 0);
      return 0;
    });
    return `{${keys.map((key) => `${JSON.stringify(key)}: ${jsonbText((value as Record<string, unknown>)[key])}`).join(", ")}}`;
  }
  return "null";
}

/** Constant-time comparison of two hex strings of the same alphabet. */
function sameHex(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let difference = 0;
  for (let i = 0; i < a.length; i += 1) difference |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return difference === 0;
}

export type HintVerdict = { readonly ok: true } | { readonly ok: false; readonly reason: string };

/** Whether a request with `headers` and `rawBody`, received at `nowMs`, was signed with `secret` recently. */
export async function verifyHint(secret: string, headers: Headers, rawBody: string, nowMs: number): Promise<HintVerdict> {
  const timestamp = headers.get(HINT_TIMESTAMP_HEADER) ?? "";
  const signature = headers.get(HINT_SIGNATURE_HEADER) ?? "";
  if (!/^\d{1,12}$/.test(timestamp) || !/^v1=[0-9a-f]{64}$/.test(signature)) return { ok: false, reason: "missing or malformed dispatch signature" };
  if (Math.abs(nowMs / 1000 - Number(timestamp)) > HINT_MAX_AGE_SECONDS) return { ok: false, reason: "dispatch signature expired" };
  const presented = signature.slice(3);
  const candidates = [rawBody];
  try {
    const canonical = jsonbText(JSON.parse(rawBody));
    if (canonical !== rawBody) candidates.push(canonical);
  } catch {
    // Not JSON: only the raw body can have been signed.
  }
  for (const body of candidates) {
    if (sameHex(presented, await hmacHex(secret, `${timestamp}.${body}`))) return { ok: true };
  }
  return { ok: false, reason: "wrong dispatch signature" };
}
