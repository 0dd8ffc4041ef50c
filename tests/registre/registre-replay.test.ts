/**
 * The go-live check against recordings of the replica: every path recorded
 * (login, refused login, index, expired session, acte, acte with the similar
 * list, plan, large document), scrubbed of the account's credentials, then
 * replayed through the runner's flows with the replica stopped (nothing
 * reaches the network); a recording whose page changed fails its path.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chromium, type Browser } from "playwright";
import { startRegistryReplica, type RegistryReplica } from "../../infra/local/registry-replica/replica-server.ts";
import { CHROMIUM_ARGS } from "../../runners/registre/registry-session.ts";
import type { DocumentRequest } from "../../runners/registre/document-flows.ts";
import { recordPath, replayPath, type RecordingPath } from "../../scripts/registre-recordings.ts";

const USERNAME = "99X9999";
const PASSWORD = "motdepasse-secret-42";
let replica: RegistryReplica;
let browser: Browser;
let folder: string;

const request = (source: DocumentRequest["documentSource"], number: string, circonscription: string, third: string): DocumentRequest => ({
  documentSource: source,
  documentNumber: number,
  documentNumberNormalized: number.replace(/\s+/g, ""),
  circonscriptionFonciere: circonscription,
  cadastre: source === "acte" ? null : third,
  designationSecondaire: null,
  acteType: source === "acte" ? third : null,
});

const PATHS: RecordingPath[] = [
  { name: "login" },
  { name: "refused-login" },
  { name: "index", request: request("index", "1 234 567", "Montréal", "Cadastre du Québec") },
  { name: "expired-session", request: request("acte", "12 345 678", "Montréal", "Acte") },
  { name: "acte", request: request("acte", "12 345 678", "Montréal", "Acte") },
  { name: "acte-similar", request: request("acte", "7 654 321", "Montréal", "Acte") },
  { name: "plan", request: request("plan_cadastraux", "2 345 678", "Québec", "Cadastre du Québec") },
  { name: "large", request: request("acte", "12 345 678", "Montréal", "Acte") },
];

beforeAll(async () => {
  replica = await startRegistryReplica({ accounts: { [USERNAME]: PASSWORD }, behaviour: { pdfDelivery: "inline" } });
  browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: [...CHROMIUM_ARGS] });
  folder = await mkdtemp(join(tmpdir(), "registre-recordings-"));
  for (const path of PATHS) {
    replica.setBehaviour({ largeDocuments: path.name === "large" });
    await recordPath(browser, folder, path, { baseUrl: replica.url, credentials: { username: USERNAME, password: PASSWORD }, timeoutMs: 20_000 });
  }
  await replica.stop();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await replica?.stop();
  await rm(folder, { recursive: true, force: true });
});

describe("registre record and replay", () => {
  it("records each path with what the runner got, and no credential in the HAR or the trace", async () => {
    const manifests = await Promise.all(PATHS.map(async (path) => JSON.parse(await readFile(join(folder, path.name, "manifest.json"), "utf8")) as { outcome: Record<string, string> }));
    expect(manifests.map((manifest) => manifest.outcome["kind"] ?? "pdf")).toEqual(["none", "account", "pdf", "document_retryable", "pdf", "pdf", "pdf", "pdf"]);
    for (const path of PATHS) {
      const har = await readFile(join(folder, path.name, "recording.har"), "utf8");
      expect(har).not.toContain(PASSWORD);
      expect(har).not.toContain(USERNAME);
      const trace = (await readFile(join(folder, path.name, "trace.zip"))).toString("latin1");
      expect(trace).not.toContain(PASSWORD);
    }
    expect(await readFile(join(folder, "login", "recording.har"), "utf8")).toContain("txtVaCodeUtils=SCRUBBED");
  });

  it("replays every path against its recording, with the registry gone, and each passes", async () => {
    for (const path of PATHS) {
      // Generous: a timeout only bites when something hangs, and a loaded machine is slow.
      const result = await replayPath(browser, join(folder, path.name), 20_000);
      expect(result, `${path.name}: ${JSON.stringify(result)}`).toMatchObject({ path: path.name, passed: true });
    }
  }, 120_000);

  it("fails a path whose recorded page no longer has what the runner looks for", async () => {
    const har = join(folder, "acte", "recording.har");
    await writeFile(har, (await readFile(har, "utf8")).replaceAll("txtNoReqst", "txtNumrReqst"));
    const result = await replayPath(browser, join(folder, "acte"), 2_000);
    expect(result.passed).toBe(false);
  }, 60_000);
});
