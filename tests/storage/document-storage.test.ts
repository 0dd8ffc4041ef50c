import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { classifyFailure } from "../../runners/lifecycle/job-errors.ts";
import { documentObjectPath } from "../../runners/storage/document-object-path.ts";
import { createDocumentStorage } from "../../runners/storage/create-document-storage.ts";
import {
  parseStorageConfig,
  StorageObjectNotFoundError,
  type DocumentStorage,
} from "../../runners/storage/document-storage.ts";
import { freePort } from "../../infra/local/free-port.ts";
import { startStorageTestServer, type StorageTestServer } from "../helpers/storage-test-server.ts";

const pdf = new Uint8Array(randomBytes(4096));
const key = `eyJ${randomBytes(24).toString("base64url")}`;

describe("document object names", () => {
  it("follow the domain brief's scheme, one bucket per source, unsafe characters as _", () => {
    const at = new Date("2026-11-29T12:00:00.000Z");
    expect(documentObjectPath({ documentSource: "acte", documentNumber: "12345678", circonscription: "Montréal", cadastre: null }, at)).toBe(
      `actes/12345678-Montr_al-${at.getTime()}.pdf`,
    );
    expect(documentObjectPath({ documentSource: "index", documentNumber: "1234567", circonscription: "Montréal", cadastre: "Cadastre du Québec" }, at)).toBe(
      `index/1234567-Montr_al-Cadastre_du_Qu_bec-${at.getTime()}.pdf`,
    );
    expect(documentObjectPath({ documentSource: "plan_cadastraux", documentNumber: "2345678", circonscription: "Québec", cadastre: "Cadastre du Québec" }, at)).toBe(
      `plans-cadastraux/2345678-Qu_bec-Cadastre_du_Qu_bec-${at.getTime()}.pdf`,
    );
  });

  it("refuse an index without its cadastre", () => {
    expect(() => documentObjectPath({ documentSource: "index", documentNumber: "1", circonscription: "Laval", cadastre: null })).toThrow(/cadastre/);
  });
});

describe("storage configuration", () => {
  it("prefers a local directory, else needs both Supabase variables, naming what is missing", () => {
    expect(parseStorageConfig({ STORAGE_LOCAL_DIR: "/tmp/s", SUPABASE_URL: "https://x.supabase.co" })).toEqual({ kind: "local-directory", root: "/tmp/s" });
    expect(() => parseStorageConfig({ SUPABASE_URL: "https://x.supabase.co" })).toThrow(/SUPABASE_STORAGE_KEY missing/);
    expect(() => parseStorageConfig({ STORAGE_LOCAL_DIR: "relative/dir" })).toThrow(/STORAGE_LOCAL_DIR must be an absolute path/);
  });

  it("never prints the key in its errors", () => {
    expect(() => parseStorageConfig({ SUPABASE_URL: "not a url", SUPABASE_STORAGE_KEY: key })).toThrow(/SUPABASE_URL/);
    try {
      parseStorageConfig({ SUPABASE_URL: "not a url", SUPABASE_STORAGE_KEY: key });
    } catch (error) {
      expect(String(error)).not.toContain(key);
    }
  });
});

/** What every implementation must do, run against each. */
function behavesAsDocumentStorage(name: string, make: () => DocumentStorage) {
  describe(name, () => {
    it("gives back the bytes it stored, replacing an earlier upload", async () => {
      const storage = make();
      await storage.upload("index/lot-1.pdf", new Uint8Array([1, 2, 3]), "application/pdf");
      await storage.upload("index/lot-1.pdf", pdf, "application/pdf");
      expect(Buffer.from(await storage.download("index/lot-1.pdf")).equals(Buffer.from(pdf))).toBe(true);
    });

    it("reports a missing object as not found, which the runners treat as retryable, not infrastructure", async () => {
      const failure = await make().download("actes/never-stored.pdf").catch((error: unknown) => error);
      expect(failure).toBeInstanceOf(StorageObjectNotFoundError);
      expect(classifyFailure(failure).disposition).not.toBe("infrastructure");
    });

    it("refuses a path outside the three buckets, naming it", async () => {
      await expect(make().upload("../etc/passwd", pdf, "application/pdf")).rejects.toThrow(/"\.\.\/etc\/passwd" must start with one of index, actes, plans-cadastraux/);
      await expect(make().download("index/../../x.pdf")).rejects.toThrow(/"\.\." segment/);
    });
  });
}

let root: string;
let server: StorageTestServer;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "document-storage-"));
  server = await startStorageTestServer({ key });
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
  await server.close();
});

behavesAsDocumentStorage("local directory storage", () => createDocumentStorage({ kind: "local-directory", root }));
behavesAsDocumentStorage("Supabase storage (supabase-js against the Storage protocol)", () => createDocumentStorage({ kind: "supabase", url: server.url, key }));

describe("local directory storage layout", () => {
  it("keeps each object at <root>/<supabase_path>", async () => {
    await createDocumentStorage({ kind: "local-directory", root }).upload("plans-cadastraux/p.pdf", pdf, "application/pdf");
    expect(Buffer.from(await readFile(join(root, "plans-cadastraux", "p.pdf"))).equals(Buffer.from(pdf))).toBe(true);
  });
});

describe("Supabase storage failures", () => {
  it("stores with the content type and the narrow key it was given", async () => {
    await createDocumentStorage({ kind: "supabase", url: server.url, key }).upload("actes/a.pdf", pdf, "application/pdf");
    expect(server.objects.get("actes/a.pdf")?.contentType).toBe("application/pdf");
    const wrongKey = createDocumentStorage({ kind: "supabase", url: server.url, key: `${key}x` });
    expect(classifyFailure(await wrongKey.download("actes/a.pdf").catch((error: unknown) => error)).disposition).toBe("infrastructure");
  });

  it("a 503 or an unreachable Storage is infrastructure: no attempt is spent on the document", async () => {
    server.failWith = 503;
    try {
      const failure = await createDocumentStorage({ kind: "supabase", url: server.url, key }).download("actes/a.pdf").catch((error: unknown) => error);
      expect(classifyFailure(failure)).toMatchObject({ disposition: "infrastructure", message: expect.stringContaining("503") });
    } finally {
      server.failWith = undefined;
    }
    const closed = createDocumentStorage({ kind: "supabase", url: `http://127.0.0.1:${await freePort()}`, key });
    expect(classifyFailure(await closed.upload("index/x.pdf", pdf, "application/pdf").catch((error: unknown) => error)).disposition).toBe("infrastructure");
  });
});
