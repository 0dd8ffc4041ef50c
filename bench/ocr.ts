/**
 * `npm run bench -- ocr`: the OCR runner's numbers, asserting nothing.
 *
 * 1. The page paths, on a 10-page image-only ledger PDF (what a Gemini index
 *    page costs before any call), ms per page p50/p95 for each: the fast
 *    path (the page is one embedded scan: its JPEG goes as it is, through
 *    pdfimages) and the render path (pdftoppm at 300 DPI, no upscale, JPEG
 *    encode by sharp), the one a page that is not a single scan takes.
 * 2. The offline engine (Tesseract, fra+eng): seconds per page, after its
 *    one-time start.
 * 3. An OCR pool draining a backlog of actes and indexes against the Gemini
 *    test server with a scaled-down quota (per minute) and realistic
 *    latency, every call through the shared budget at 80 % of the quota:
 *    input tokens per window the server served while backlog remained, as a
 *    fraction of the budget's limit and of the server's quota, and the 429s
 *    received.
 * `--json` prints the numbers as one JSON object on the last line;
 * `--part=raster|offline|pool` runs one part only; `--budget=0.7` sets the
 * budget's share of the quota (default 0.8); `--admission=rolling` admits
 * against the rolling minute (gemini-minute-counters.ts) instead of fixed
 * slices; `--slices=N` cuts the window into N slices (default 8);
 * `--workers=N` sets the acte and the index workers (default 6 each);
 * `--window=10` sets the quota window in seconds (default 60).
 */
import { randomBytes } from "node:crypto";
import { spawnSync } from "node:child_process";
import { setMaxListeners } from "node:events";
import { loadavg } from "node:os";
import { Redis } from "@upstash/redis";
import { freePort } from "../infra/local/free-port.ts";
import { startRedisServer } from "../infra/local/redis-server.ts";
import { startUpstashRestServer } from "../infra/local/upstash-rest-server.ts";
import { GeminiRateBudget } from "../supabase/functions/_shared/gemini-rate-budget.ts";
import { createLogger } from "../runners/lifecycle/structured-log.ts";
import { runActePipeline } from "../runners/ocr/acte-pipeline.ts";
import { runIndexPipeline } from "../runners/ocr/index-pipeline.ts";
import { parseOcrSettings } from "../runners/ocr/ocr-config.ts";
import { DEFAULT_PDF_LIMITS, openPdf, rasterizePage } from "../runners/ocr/pdf-pages.ts";
import { GeminiOcrProvider } from "../runners/ocr/providers/gemini-provider.ts";
import { OfflineOcrProvider } from "../runners/ocr/providers/offline-provider.ts";
import { startGeminiTestServer } from "../tests/helpers/gemini-test-server.ts";
import { textPagesPdf } from "../tests/helpers/text-page-pdf.ts";
import { scriptedModel } from "../tests/ocr/scripted-model.ts";

/** Gemini 3 names, so the server counts images as Google does (a fixed budget per image by media resolution). */
const FAST = "gemini-3.5-flash-lite";
const STRONG = "gemini-3.8-flash";
const option = (name: string) => process.argv.find((arg) => arg.startsWith(`--${name}=`))?.slice(name.length + 3);
/**
 * The quota's window, s (`--window=10`): a real minute by default. The quota
 * scales with it, so calls and the token rate stay the same; only the
 * window's length changes. A 10 s window (a minute compressed six times, the
 * earlier default) made a slice of 8 admit 3,000 tokens against calls of
 * 2–3K, so one call filled a slice (0.601 of the budget), where production
 * slices hold hundreds of calls; it also made a fixed delay between admission
 * and arrival six times as costly.
 */
const WINDOW_MS = Number(option("window") ?? "60") * 1000;
/** Per model and window: a Tier-3-like shape scaled down so a few workers outrun it (400 requests and 30,000 tokens per 10 s). */
const QUOTA = { rpm: 40 * (WINDOW_MS / 1000), tpm: 3_000 * (WINDOW_MS / 1000), rpd: 1_000_000 };
/** The budget's share of the quota (`--budget=0.7` to try another; the defaults take 80 %). */
const BUDGET_FRACTION = Number(process.argv.find((arg) => arg.startsWith("--budget="))?.slice("--budget=".length) ?? "0.8");
const ADMISSION = option("admission") === "rolling" ? "rolling" : "slices";
const SLICES = Number(option("slices") ?? "8");
const ACTE_WORKERS = Number(option("workers") ?? "6");
const INDEX_WORKERS = ACTE_WORKERS;
const ACTES = 48;
const INDEXES = 36;
const INDEX_PAGES = 4;

const ledger = (page: number) =>
  Array.from({ length: 22 }, (_, index) => `Tremblay, Jean ; Banque Nationale | Hypothèque | 1987-03-${String(1 + index).padStart(2, "0")} | ${page} 234 5${String(index).padStart(2, "0")} |  | 45 000,00 $`);

/** CPU time (user + system) pdftoppm spends rendering one page at 300 DPI, as /usr/bin/time reports it. */
function pdftoppmCpuMs(path: string, page: number): number {
  const run = spawnSync("/usr/bin/time", ["-f", "%U %S", "pdftoppm", "-r", "300", "-gray", "-f", String(page), "-l", String(page), path], { maxBuffer: 256 * 2 ** 20 });
  const [user = "0", system = "0"] = run.stderr.toString("utf8").trim().split("\n").at(-1)?.split(" ") ?? [];
  return (Number(user) + Number(system)) * 1000;
}

function percentile(sorted: readonly number[], fraction: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(fraction * sorted.length))] ?? Number.NaN;
}

export async function runOcrBench(): Promise<void> {
  const json = process.argv.includes("--json");
  const part = process.argv.find((arg) => arg.startsWith("--part="))?.slice("--part=".length);
  const runs = (name: "raster" | "offline" | "pool") => part === undefined || part === name;
  let raster: Record<string, number> | undefined;
  let offlineResult: Record<string, number> | undefined;
  const say = (line: string) => (json ? process.stderr.write(`${line}\n`) : console.log(line));
  const log = createLogger({ base: { bench: "ocr" }, level: "error" });
  const signal = new AbortController().signal;
  setMaxListeners(0, signal); // One signal for every call in flight, as a job's is.
  const context = { signal, log };

  // 1. The page paths.
  if (runs("raster")) {
    say("ocr bench 1/3: page paths on a 10-page ledger of scans: fast (embedded JPEG as it is) and render (300 DPI, no upscale, JPEG)…");
    const tenPages = await openPdf(await textPagesPdf(Array.from({ length: 10 }, (_, index) => ({ lines: ledger(index + 1), fontSizePx: 30 }))), undefined, { limits: DEFAULT_PDF_LIMITS, dpi: 300 });
    const paths = { fast: [] as number[], render: [] as number[], renderCpu: [] as number[] };
    try {
      for (let page = 1; page <= 10; page += 1) {
        let startedAt = performance.now();
        await rasterizePage(tenPages, page, { dpi: 300, upscale: 1, format: "jpeg", embedded: true });
        paths.fast.push(performance.now() - startedAt);
        // CPU time as well as wall time: on a shared machine the wall time mostly measures the neighbours.
        const renderCpu = pdftoppmCpuMs(tenPages.path, page);
        const cpuBefore = process.cpuUsage();
        startedAt = performance.now();
        await rasterizePage(tenPages, page, { dpi: 300, upscale: 1, format: "jpeg" });
        paths.render.push(performance.now() - startedAt);
        const cpu = process.cpuUsage(cpuBefore);
        paths.renderCpu.push(renderCpu + (cpu.user + cpu.system) / 1000);
        say(`  page ${page}: fast ${Math.round(paths.fast.at(-1) ?? 0)} ms, render ${Math.round(paths.render.at(-1) ?? 0)} ms wall (${Math.round(paths.renderCpu.at(-1) ?? 0)} ms CPU)`);
      }
    } finally {
      await tenPages.dispose();
    }
    const sorted = (values: number[]) => [...values].sort((x, y) => x - y);
    raster = {
      pages: 10,
      fastP50Ms: Math.round(percentile(sorted(paths.fast), 0.5)),
      fastP95Ms: Math.round(percentile(sorted(paths.fast), 0.95)),
      renderP50Ms: Math.round(percentile(sorted(paths.render), 0.5)),
      renderP95Ms: Math.round(percentile(sorted(paths.render), 0.95)),
      renderCpuP50Ms: Math.round(percentile(sorted(paths.renderCpu), 0.5)),
      loadAverage: round(loadavg()[0] ?? 0, 1),
      targetP50Ms: 100,
    };
    say(`  per page: fast path p50 ${raster.fastP50Ms} ms, p95 ${raster.fastP95Ms} ms; render path p50 ${raster.renderP50Ms} ms, p95 ${raster.renderP95Ms} ms (CPU p50 ${raster.renderCpuP50Ms} ms); load average ${raster.loadAverage}; target p50 ≤ 100 ms`);
  }

  // 2. Offline engine.
  if (runs("offline")) {
    say("ocr bench 2/3: offline engine (Tesseract fra+eng), 3 ledger pages…");
    const offline = new OfflineOcrProvider(300);
    const threePages = await openPdf(await textPagesPdf([1, 2, 3].map((page) => ({ lines: ledger(page), fontSizePx: 30 }))));
    const offlineSeconds: number[] = [];
    const offlineCpuSeconds: number[] = [];
    let offlineStartSeconds = 0;
    try {
      const warm = performance.now();
      await offline.countIndexLines(await rasterizePage(threePages, 1, { dpi: 300, ...offline.raster }), 3, context);
      offlineStartSeconds = (performance.now() - warm) / 1000;
      for (let page = 2; page <= 3; page += 1) {
        const startedAt = performance.now();
        const cpuBefore = process.cpuUsage(); // Tesseract's worker thread is in this process.
        const image = await rasterizePage(threePages, page, { dpi: 300, ...offline.raster });
        await offline.extractIndexPage(image, 3, context);
        offlineSeconds.push((performance.now() - startedAt) / 1000);
        const cpu = process.cpuUsage(cpuBefore);
        offlineCpuSeconds.push((cpu.user + cpu.system) / 1e6);
      }
    } finally {
      await threePages.dispose();
      await offline.close();
    }
    offlineResult = {
      firstPageWithStartSeconds: round(offlineStartSeconds, 1),
      secondsPerPage: round(offlineSeconds.reduce((sum, s) => sum + s, 0) / offlineSeconds.length, 1),
      cpuSecondsPerPage: round(offlineCpuSeconds.reduce((sum, s) => sum + s, 0) / offlineCpuSeconds.length, 1),
    };
    say(`  offline engine: ${offlineResult.secondsPerPage} s per page wall, ${offlineResult.cpuSecondsPerPage} s CPU (first page with the engine's start: ${offlineResult.firstPageWithStartSeconds} s)`);
  }
  if (!runs("pool")) {
    if (json) process.stdout.write(`${JSON.stringify({ raster, offline: offlineResult })}\n`);
    return;
  }

  // 3. The pool against the quota.
  say(`ocr bench 3/3: ${ACTE_WORKERS} acte + ${INDEX_WORKERS} index workers drain ${ACTES} actes and ${INDEXES} ${INDEX_PAGES}-page indexes; quota per ${WINDOW_MS / 1000} s window and model ${JSON.stringify(QUOTA)}, budget at ${BUDGET_FRACTION * 100} %, admission ${ADMISSION} over ${SLICES} slices…`);
  const redisServer = await startRedisServer({ port: await freePort() });
  const token = randomBytes(24).toString("base64url");
  const endpoint = await startUpstashRestServer({ redisUrl: redisServer.url, token, port: 0 });
  const indexPages = Array.from({ length: INDEX_PAGES }, (_, index) => ledger(index + 1));
  const acteText = "EN-TÊTE : Vente\nPARTIES : François Gagné ; Société immobilière Ça va inc.\nMONTANTS : 245 000,00 $\n".repeat(20);
  const model = scriptedModel({ indexPages, acteText });
  // Latency grows with the answer, as a model's decoding does: 0.6 s plus 1 s per 1,000 characters written.
  const server = await startGeminiTestServer({
    windowMs: WINDOW_MS,
    quotas: { [FAST]: QUOTA, [STRONG]: QUOTA },
    fileProcessingMs: 500,
    latencyMs: (request) => (request === undefined ? 50 : 600 + Math.min(4_000, request.text.length / 2)),
    respond: model,
  });
  try {
    const limit = { rpm: QUOTA.rpm * BUDGET_FRACTION, tpm: QUOTA.tpm * BUDGET_FRACTION, rpd: QUOTA.rpd };
    const keyPrefix = `bench:ocr:${randomBytes(6).toString("hex")}`;
    const settings = parseOcrSettings({ GEMINI_API_KEY: "bench-key", GEMINI_BASE_URL: server.url, GEMINI_FILE_POLL_MS: "100", GEMINI_BUDGET_MAX_WAIT_MS: "600000" }).gemini;
    if (settings === undefined) throw new Error("no Gemini settings");
    const provider = () =>
      new GeminiOcrProvider(settings, { fast: FAST, boost: STRONG }, new GeminiRateBudget(new Redis({ url: endpoint.url, token, enableTelemetry: false }), { limits: { [FAST]: limit, [STRONG]: limit } }, { keyPrefix, windowMs: WINDOW_MS, slicesPerWindow: SLICES, minuteAdmission: ADMISSION }), { upscale: 1 });
    // Small pages keep the CPU out of it: this part measures the budget, not the rasterizer.
    const indexPdf = await textPagesPdf(indexPages.map((lines) => ({ lines, fontSizePx: 30 })));
    const actePdf = await textPagesPdf([{ lines: ["Acte de vente"] }, { lines: ["Signé à Montréal"] }, { lines: ["Annexe"] }]);
    const actes = Array.from({ length: ACTES }, (_, index) => index);
    const indexes = Array.from({ length: INDEXES }, (_, index) => index);
    let backlogEmptyAt = 0;
    const markEmpty = () => {
      if (actes.length === 0 && indexes.length === 0 && backlogEmptyAt === 0) backlogEmptyAt = Date.now();
    };
    let done = 0;
    const startedAt = Date.now();
    const progress = setInterval(() => say(`  ${done}/${ACTES + INDEXES} documents, ${server.rateLimitedCount()} 429s, ${Math.round((Date.now() - startedAt) / 1000)} s`), 10_000);
    const worker = async (queue: number[], kind: "acte" | "index") => {
      const ocr = provider();
      while (queue.length > 0) {
        queue.pop();
        markEmpty();
        const pdf = await openPdf(kind === "acte" ? actePdf : indexPdf, undefined, { limits: DEFAULT_PDF_LIMITS, dpi: 300 });
        try {
          if (kind === "acte") await runActePipeline(pdf, ocr, context);
          else await runIndexPipeline(pdf, ocr, { dpi: 72, pageConcurrency: 6 }, context);
        } finally {
          await pdf.dispose();
        }
        done += 1;
      }
    };
    await Promise.all([
      ...Array.from({ length: ACTE_WORKERS }, () => worker(actes, "acte")),
      ...Array.from({ length: INDEX_WORKERS }, () => worker(indexes, "index")),
    ]);
    clearInterval(progress);
    const finishedAt = Date.now();
    // While backlog remained: from the first call to the moment the last document was taken.
    const served = server.requests.filter((request) => request.kind === "generateContent" && request.status === 200);
    const firstAt = served[0]?.receivedAt ?? startedAt;
    const until = backlogEmptyAt || finishedAt;
    const windows: number[] = [];
    for (let start = firstAt; start + WINDOW_MS <= until; start += WINDOW_MS / 10) {
      windows.push(served.filter((request) => request.model === FAST && request.receivedAt >= start && request.receivedAt < start + WINDOW_MS).reduce((sum, request) => sum + request.promptTokenCount, 0));
    }
    const meanTokens = windows.reduce((sum, tokens) => sum + tokens, 0) / Math.max(1, windows.length);
    const pool = {
      documents: ACTES + INDEXES,
      seconds: round((finishedAt - startedAt) / 1000, 1),
      backlogSeconds: round((until - firstAt) / 1000, 1),
      windowsMeasured: windows.length,
      fastModelTokensPerWindow: Math.round(meanTokens),
      tpmFractionOfBudget: round(meanTokens / limit.tpm, 3),
      tpmFractionOfQuota: round(meanTokens / QUOTA.tpm, 3),
      busiestWindowFractionOfQuota: round(Math.max(0, ...windows) / QUOTA.tpm, 3),
      budgetFractionOfQuota: BUDGET_FRACTION,
      admission: ADMISSION,
      slices: SLICES,
      rateLimited429s: server.rateLimitedCount(),
      rateLimitedByModel: Object.fromEntries([FAST, STRONG].map((name) => [name, server.requests.filter((request) => request.status === 429 && request.model === name).length])),
      calls: served.length,
    };
    say(
      `  pool: ${pool.documents} documents in ${pool.seconds} s; while backlog remained (${pool.backlogSeconds} s, ${pool.windowsMeasured} rolling windows) the fast model used ${pool.fastModelTokensPerWindow} input tokens per window = ${pool.tpmFractionOfBudget} of the budget (target ≥ 0.90), ${pool.tpmFractionOfQuota} of the quota; busiest window ${pool.busiestWindowFractionOfQuota} of the quota; 429s: ${pool.rateLimited429s} (target 0)`,
    );
    if (json) process.stdout.write(`${JSON.stringify({ raster, offline: offlineResult, pool })}\n`);
  } finally {
    await server.close();
    await endpoint.close();
    await redisServer.stop();
  }
}

function round(value: number, digits: number): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}
