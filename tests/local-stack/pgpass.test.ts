import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rememberLocalPassword } from "../../infra/local/pgpass.ts";

let folder: string;
beforeAll(async () => {
  folder = await mkdtemp(join(tmpdir(), "pgpass-"));
});
afterAll(async () => {
  await rm(folder, { recursive: true, force: true });
});

describe("the local cluster's password in ~/.pgpass", () => {
  it("keeps one line per host, port and user, replaced by a new cluster's password, others' lines kept, mode 0600", async () => {
    const file = join(folder, ".pgpass");
    await writeFile(file, "db.example.com:5432:*:app:secret\n", { mode: 0o644 });
    await rememberLocalPassword("postgres://postgres:first@127.0.0.1:54322/postgres", file);
    await rememberLocalPassword("postgres://postgres:second%3Apart@127.0.0.1:54322/postgres", file);
    expect((await readFile(file, "utf8")).split("\n")).toEqual(["127.0.0.1:54322:*:postgres:second\\:part", "db.example.com:5432:*:app:secret", ""]);
    // libpq ignores a password file others can read.
    expect((await stat(file)).mode & 0o777).toBe(0o600);
  });

  it("writes nothing for a URL without a password", async () => {
    const file = join(folder, "none");
    expect(await rememberLocalPassword("postgres://postgres@127.0.0.1:54322/postgres", file)).toBeUndefined();
    await expect(stat(file)).rejects.toThrow(/ENOENT/);
  });
});
