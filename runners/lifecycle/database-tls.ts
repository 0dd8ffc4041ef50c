/**
 * TLS and address family of the runner's database connection (issue 20
 * item 3). Registry passwords come back from `lease_registry_account` over
 * this connection, so it is never plain text outside this machine:
 *
 * - Any host other than loopback gets TLS, always. `sslmode` in DATABASE_URL
 *   may say `require` or `verify-full`; `disable`, `allow` and `prefer`
 *   (which fall back to plain text) are refused with the variable named.
 * - The server is verified (`verify-full`: chain and host name) whenever
 *   DATABASE_SSL_ROOT_CERT holds the project's root certificate. Supabase
 *   signs its pooler's certificate with a per-platform CA that the dashboard
 *   offers for download (Database Settings → SSL Configuration), and its docs
 *   connect to the pooler host with `sslmode=verify-full
 *   sslrootcert=<that file>` (https://supabase.com/docs/guides/database/psql,
 *   "Connecting with SSL"). Without the certificate the connection is
 *   `require`: encrypted, server unverified, which is what the pooler
 *   allows with no CA at hand; `npm run doctor` reports that state.
 * - The pooler host is whatever DATABASE_URL names (hosts differ between
 *   projects: `aws-0-<region>.pooler.supabase.com`, `aws-1-…`), never a
 *   built-in name; the TLS server name is that host.
 * - IPv4: the socket is opened with `family: 4`. Supabase's direct database
 *   host is IPv6-only while its pooler is reachable over IPv4, and Fargate
 *   tasks in a public subnet have no IPv6 route unless the VPC is dual-stack
 *   (https://supabase.com/docs/guides/database/connecting-to-postgres,
 *   "IPv4 and IPv6"). An IPv6-only host then fails fast with ENOTFOUND
 *   rather than after a happy-eyeballs timeout.
 *
 * Loopback hosts (the local stack, the tests) keep what the URL says, plain
 * by default: the private cluster has no certificate.
 */
import { connect, isIP, type Socket } from "node:net";
import { z } from "zod";

export type DatabaseTls =
  | { readonly mode: "disable" }
  | { readonly mode: "require" }
  | { readonly mode: "verify-full"; readonly ca: string | undefined };

/** Exactly these: a test can reach a TLS server on 127.0.0.2 as it would a remote host. */
const LOOPBACK = new Set(["localhost", "127.0.0.1", "::1"]);
const SSL_PARAMETERS = ["sslmode", "sslrootcert", "ssl"];

const tlsEnvSchema = z.object({
  DATABASE_SSL_ROOT_CERT: z
    .string()
    .regex(/-----BEGIN CERTIFICATE-----[\s\S]+-----END CERTIFICATE-----/, { error: "must be a PEM certificate (the project's root certificate from the Supabase dashboard)" })
    .optional(),
});

export class DatabaseTlsConfigError extends Error {
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(message);
    this.name = "DatabaseTlsConfigError";
  }
}

/** The host DATABASE_URL names, without brackets. */
export function databaseHost(databaseUrl: string): string {
  return new URL(databaseUrl).hostname.replace(/^\[|\]$/g, "");
}

export function isLoopbackHost(host: string): boolean {
  return LOOPBACK.has(host);
}

/**
 * Reads the TLS policy from DATABASE_URL's `sslmode` and
 * DATABASE_SSL_ROOT_CERT. Throws DatabaseTlsConfigError naming the variable
 * when the URL would allow plain text to a remote host.
 */
export function parseDatabaseTls(databaseUrl: string, env: Readonly<Record<string, string | undefined>>): DatabaseTls {
  const cert = env["DATABASE_SSL_ROOT_CERT"]?.trim();
  const parsed = tlsEnvSchema.safeParse({ DATABASE_SSL_ROOT_CERT: cert === "" ? undefined : cert });
  if (!parsed.success) throw new DatabaseTlsConfigError("DATABASE_SSL_ROOT_CERT", `DATABASE_SSL_ROOT_CERT ${parsed.error.issues[0]?.message ?? "is invalid"}`);
  const ca = parsed.data.DATABASE_SSL_ROOT_CERT;
  const url = new URL(databaseUrl);
  const requested = url.searchParams.get("sslmode") ?? undefined;
  const host = databaseHost(databaseUrl);
  if (isLoopbackHost(host)) {
    if (requested === "require") return { mode: "require" };
    if (requested === "verify-full" || requested === "verify-ca") return { mode: "verify-full", ca };
    return { mode: "disable" };
  }
  switch (requested) {
    case undefined:
    case "require":
      // A certificate at hand upgrades `require` to verification: never less safe.
      return ca === undefined ? { mode: "require" } : { mode: "verify-full", ca };
    case "verify-ca":
    case "verify-full":
      return { mode: "verify-full", ca };
    default:
      throw new DatabaseTlsConfigError(
        "DATABASE_URL",
        `DATABASE_URL has sslmode=${requested}, which lets the connection to ${host} fall back to plain text; use sslmode=require or verify-full (or leave sslmode out)`,
      );
  }
}

/** DATABASE_URL without its TLS parameters, which parseDatabaseTls has read (postgres.js would send unknown ones to the server as settings). */
export function withoutTlsParameters(databaseUrl: string): string {
  const url = new URL(databaseUrl);
  for (const name of SSL_PARAMETERS) url.searchParams.delete(name);
  return url.toString();
}

/** postgres.js options for the policy: `ssl`, and for remote hosts an IPv4 socket. */
export interface PostgresTransport {
  readonly ssl: false | "require" | { readonly rejectUnauthorized: true; readonly host: string; readonly servername?: string; readonly ca?: string };
  readonly socket?: () => Socket;
}

export function postgresTransport(databaseUrl: string, tls: DatabaseTls): PostgresTransport {
  const url = new URL(databaseUrl);
  const host = databaseHost(databaseUrl);
  const port = Number(url.port === "" ? "5432" : url.port);
  // The certificate is checked against `host` (tls.connect falls back to
  // "localhost" when it is missing on an existing socket); SNI carries the
  // host name, and takes no IP address.
  const servername = isIP(host) === 0 ? host : undefined;
  const ssl =
    tls.mode === "disable"
      ? false
      : tls.mode === "require"
        ? "require"
        : { rejectUnauthorized: true as const, host, ...(servername !== undefined ? { servername } : {}), ...(tls.ca !== undefined ? { ca: tls.ca } : {}) };
  if (isLoopbackHost(host)) return { ssl };
  // Returned unconnected: postgres.js writes its SSLRequest at once and the
  // socket queues it until connected, so connect_timeout still bounds the wait.
  return { ssl, socket: () => connect({ host, port, family: 4 }) };
}
