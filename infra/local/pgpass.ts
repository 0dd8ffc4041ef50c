/**
 * The private cluster asks every TCP login for a password (SCRAM: other OS
 * users of the machine must not get in), yet the person who ran `npm start`
 * should open `psql postgres://postgres@127.0.0.1:54322/postgres`, the URL the
 * README and Supabase's own local stack use, without typing one. libpq reads
 * `~/.pgpass` for that (PostgreSQL docs, "The Password File": lines
 * `hostname:port:database:username:password`, first match wins, ignored
 * unless mode 0600), and only its owner can read it. This keeps one line per
 * host, port and user there, replaced when a new cluster brings a new password.
 */
import { chmod, readFile, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";

/** `:` and `\` are escaped with a backslash in each field. */
const field = (value: string) => value.replaceAll("\\", "\\\\").replaceAll(":", "\\:");

/** Records the password of `databaseUrl` (postgres://user:password@host:port/db) in `file`, for any database; returns the file. */
export async function rememberLocalPassword(databaseUrl: string, file = join(homedir(), ".pgpass")): Promise<string | undefined> {
  const url = new URL(databaseUrl);
  const password = decodeURIComponent(url.password);
  if (password === "") return undefined;
  const key = `${field(url.hostname)}:${field(url.port || "5432")}:*:${field(decodeURIComponent(url.username))}:`;
  const existing = await readFile(file, "utf8").catch((error: NodeJS.ErrnoException) => {
    if (error.code === "ENOENT") return "";
    throw error;
  });
  const kept = existing.split("\n").filter((line) => line !== "" && !line.startsWith(key));
  await writeFile(file, `${[`${key}${field(password)}`, ...kept].join("\n")}\n`, { mode: 0o600 });
  // An older file may have been created wider; libpq ignores it then.
  await chmod(file, 0o600);
  return file;
}
