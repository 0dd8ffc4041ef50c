import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { classifyFailure } from "../../runners/lifecycle/job-errors.ts";
import { createDocumentStorage } from "../../runners/storage/create-document-storage.ts";
import { parseStorageConfig, StorageObjectNotFoundError } from "../../runners/storage/document-storage.ts";
import { startStorageTestServer, type StorageTestServer } from "../helpers/storage-test-server.ts";

/**
 * The Storage credential of a project with only the new API keys: each
 * runner family signs in as its own Auth user (publishable key as apikey,
 * the user's JWT as bearer), refreshes the short-lived token itself, and
 * gets only what its policy allows: registre inserts, OCR reads.
 */
const PUBLISHABLE = "sb_publishable_test_0123456789abcdef";
const USERS = [
  { email: "registre-runner@runners.invalid", password: "registre-password-0123456789", family: "registre" },
  { email: "ocr-runner@runners.invalid", password: "ocr-password-0123456789abcdef", family: "ocr" },
] as const;
const clock = { now: Date.UTC(2027, 5, 1, 12) };
const pdf = new Uint8Array(Buffer.from("%PDF-1.7\n% runner session test\n%%EOF\n"));
let server: StorageTestServer;

beforeAll(async () => {
  server = await startStorageTestServer({ key: "legacy-storage-runner-jwt.aaaa.bbbb", publishableKey: PUBLISHABLE, users: USERS, accessTtlSeconds: 3600, now: () => clock.now });
});
afterAll(async () => {
  await server.close();
});

function storageOf(family: "registre" | "ocr", password?: string) {
  const user = USERS.find((candidate) => candidate.family === family);
  if (user === undefined) throw new Error(family);
  const config = parseStorageConfig({ SUPABASE_URL: server.url, SUPABASE_PUBLISHABLE_KEY: PUBLISHABLE, SUPABASE_RUNNER_EMAIL: user.email, SUPABASE_RUNNER_PASSWORD: password ?? user.password });
  expect(config.kind).toBe("supabase-user");
  return createDocumentStorage(config, { now: () => clock.now });
}

describe("the runner families' Storage sessions", () => {
  it("registre stores a PDF that OCR then reads; neither can do the other's part", async () => {
    const registre = storageOf("registre");
    const ocr = storageOf("ocr");
    await registre.upload("actes/acte-1.pdf", pdf, "application/pdf");
    expect(Buffer.from(await ocr.download("actes/acte-1.pdf")).equals(Buffer.from(pdf))).toBe(true);
    // Registre cannot read back (the policy hides the object); OCR cannot write.
    await expect(registre.download("actes/acte-1.pdf")).rejects.toBeInstanceOf(StorageObjectNotFoundError);
    const refused = await ocr.upload("actes/acte-2.pdf", pdf, "application/pdf").catch((error: unknown) => error);
    expect(classifyFailure(refused).message).toMatch(/row-level security/);
    expect(server.objects.has("actes/acte-2.pdf")).toBe(false);
  });

  it("registre never overwrites: a second upload of the same document keeps the first and counts as stored", async () => {
    const registre = storageOf("registre");
    await registre.upload("index/lot-9.pdf", pdf, "application/pdf");
    await registre.upload("index/lot-9.pdf", new Uint8Array([1, 2, 3]), "application/pdf");
    expect(Buffer.from(server.objects.get("index/lot-9.pdf")?.bytes ?? []).equals(Buffer.from(pdf))).toBe(true);
  });

  it("refreshes the short-lived token before it expires, with the single-use refresh token, and signs in once", async () => {
    const ocr = storageOf("ocr");
    const before = { ...server.grants };
    await ocr.download("actes/acte-1.pdf");
    clock.now += 3600_000 - 30_000; // inside the refresh margin
    await ocr.download("actes/acte-1.pdf");
    clock.now += 3600_000 - 30_000;
    await ocr.download("actes/acte-1.pdf");
    expect({ password: server.grants.password - before.password, refresh: server.grants.refresh_token - before.refresh_token }).toEqual({ password: 1, refresh: 2 });
  });

  it("a refused sign-in is infrastructure (no attempt spent), naming the variables and never the password", async () => {
    const failure = await storageOf("ocr", "wrong-password-0123456789").download("actes/acte-1.pdf").catch((error: unknown) => error);
    const classified = classifyFailure(failure);
    expect(classified.disposition).toBe("infrastructure");
    expect(classified.message).toMatch(/SUPABASE_RUNNER_EMAIL \/ SUPABASE_RUNNER_PASSWORD/);
    expect(classified.message).not.toContain("wrong-password");
  });

  it("names every missing variable of the session", () => {
    expect(() => parseStorageConfig({ SUPABASE_URL: server.url, SUPABASE_RUNNER_EMAIL: "x@runners.invalid" })).toThrow(/SUPABASE_PUBLISHABLE_KEY and SUPABASE_RUNNER_PASSWORD missing/);
  });
});
