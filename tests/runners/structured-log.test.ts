import { describe, expect, test } from "vitest";
import { createLogger, REDACTED, type LogLevel } from "../../runners/lifecycle/structured-log.ts";

function capture(options: { level?: LogLevel; secrets?: string[] } = {}) {
  const lines: string[] = [];
  const log = createLogger({
    base: { kind: "registre", environment: "prod", worker_id: "ip-10-0-1-7-42" },
    write: (line) => lines.push(line),
    now: () => new Date("2026-01-02T03:04:05.000Z"),
    ...options,
  });
  return { log, lines, records: () => lines.map((line) => JSON.parse(line) as Record<string, unknown>) };
}

describe("structured runner log", () => {
  test("writes one JSON object per line, led by time, level and msg, carrying the bound fields", () => {
    const { log, lines, records } = capture();
    log.child({ job_id: "7c0f…" }).info("job claimed", { attempt: 2 });

    expect(lines).toHaveLength(1);
    expect(lines[0]?.endsWith("\n")).toBe(true);
    expect(lines[0]?.trimEnd()).not.toContain("\n");
    expect(Object.keys(records()[0] ?? {}).slice(0, 3)).toEqual(["time", "level", "msg"]);
    expect(records()[0]).toEqual({
      time: "2026-01-02T03:04:05.000Z",
      level: "info",
      msg: "job claimed",
      kind: "registre",
      environment: "prod",
      worker_id: "ip-10-0-1-7-42",
      job_id: "7c0f…",
      attempt: 2,
    });
  });

  test("a caller's field cannot replace time, level or msg", () => {
    const { log, records } = capture();
    log.warn("real message", { msg: "forged", level: "debug", time: "yesterday" });
    expect(records()[0]).toMatchObject({ level: "warn", msg: "real message", time: "2026-01-02T03:04:05.000Z" });
  });

  test("drops lines below the configured level", () => {
    const { log, records } = capture({ level: "warn" });
    log.debug("noise");
    log.info("chatter");
    log.error("broken");
    expect(records().map((record) => record["msg"])).toEqual(["broken"]);
  });

  test("redacts fields named like credentials, at any depth", () => {
    const { log, lines, records } = capture();
    log.info("connecting", {
      password: "hunter2-hunter2",
      registry: { username: "agent-17", Mot_de_passe: "x", apiKey: "AIzaSy-example", accessToken: "abc.def.ghi" },
      headers: [{ Authorization: "Bearer abcdef" }],
      DB_SECRET: "s3cr3t!",
    });
    expect(records()[0]).toMatchObject({
      password: REDACTED,
      registry: { username: "agent-17", Mot_de_passe: REDACTED, apiKey: REDACTED, accessToken: REDACTED },
      headers: [{ Authorization: REDACTED }],
      DB_SECRET: REDACTED,
    });
    for (const value of ["hunter2-hunter2", "AIzaSy-example", "abc.def.ghi", "Bearer abcdef", "s3cr3t!"]) expect(lines[0]).not.toContain(value);
  });

  test("scrubs the configured secret values wherever they appear, plain or percent-encoded", () => {
    const password = "p@ss/w0rd:42";
    const { log, lines } = capture({ secrets: [password, "upstash-token-123"] });
    const error = new Error(`could not connect to postgres://runner:${encodeURIComponent(password)}@db:6543/postgres`, {
      cause: new Error("token upstash-token-123 refused"),
    });
    log.error(`login failed for ${password}`, { error, note: `retrying with upstash-token-123` });

    expect(lines[0]).not.toContain(password);
    expect(lines[0]).not.toContain(encodeURIComponent(password));
    expect(lines[0]).not.toContain("upstash-token-123");
    expect(lines[0]).toContain(REDACTED);
  });

  test("replaces document text by its length and cuts very long strings", () => {
    const { log, lines, records } = capture();
    const ocrText = "--- Page 1 ---\nLigne 1: Hydro-Québec | Servitude | 1987-03-02";
    log.info("job completed", { fileContent: ocrText, boosted_file_content: ocrText, dump: "x".repeat(10_000) });

    expect(lines[0]).not.toContain("Hydro-Québec");
    expect(records()[0]).toMatchObject({
      fileContent: `[document text: ${ocrText.length} characters]`,
      boosted_file_content: `[document text: ${ocrText.length} characters]`,
    });
    expect(String(records()[0]?.["dump"]).length).toBeLessThan(2_100);
  });

  test("logs errors with their name, message, SQLSTATE and cause", () => {
    const { log, records } = capture();
    const sqlError = Object.assign(new Error("heartbeat_job refused for job 1"), { name: "PostgresError", code: "QL001" });
    log.warn("job lease lost", { error: new Error("lease gone", { cause: sqlError }) });
    expect(records()[0]?.["error"]).toEqual({
      name: "Error",
      message: "lease gone",
      cause: { name: "PostgresError", message: "heartbeat_job refused for job 1", code: "QL001" },
    });
  });
});
