import { errors as upstashErrors } from "@upstash/redis";
import { describe, expect, test } from "vitest";
import {
  GeminiBudgetTimeoutError,
  GeminiDailyBudgetExhaustedError,
  GeminiRateLimitedError,
} from "../../supabase/functions/_shared/gemini-call.ts";
import {
  classifyFailure,
  ConfigurationError,
  ERROR_KINDS,
  FinalJobError,
  InfrastructureError,
  MAX_FAILURE_MESSAGE_LENGTH,
  RetryableJobError,
  type ErrorKind,
  type FailureDisposition,
} from "../../runners/lifecycle/job-errors.ts";

describe("classifyFailure", () => {
  test.each<[string, unknown, FailureDisposition, ErrorKind, string]>([
    [
      "a document the registry says does not exist",
      new FinalJobError("Le document demandé est inexistant", { kind: "document_not_found" }),
      "final",
      "document_not_found",
      "Le document demandé est inexistant",
    ],
    ["a request that can never succeed", new FinalJobError("an acte request needs its acte_type"), "final", "invalid_input", "an acte request needs its acte_type"],
    ["a registry timeout", new RetryableJobError("navigation timed out after 30000 ms"), "retryable", "document_retryable", "navigation timed out after 30000 ms"],
    ["a browser that could not start", new InfrastructureError("chromium exited with code 127"), "infrastructure", "infrastructure", "chromium exited with code 127"],
    ["the registry in maintenance", new InfrastructureError("the registry is in maintenance", { kind: "registry_unavailable" }), "infrastructure", "registry_unavailable", "the registry is in maintenance"],
    ["a refused login", new InfrastructureError("the registry refused the login", { kind: "account" }), "infrastructure", "account", "the registry refused the login"],
    ["a bad Gemini key", new ConfigurationError("Gemini refused the key: API_KEY_INVALID"), "configuration", "configuration", "Gemini refused the key: API_KEY_INVALID"],
    [
      "one of ours wrapped as another error's cause",
      new Error("upload failed", { cause: new InfrastructureError("storage unreachable") }),
      "infrastructure",
      "infrastructure",
      "storage unreachable",
    ],
    ["an unknown error, kept with its class name, for staff to look at", new TypeError("cannot read properties of undefined"), "retryable", "needs_attention", "TypeError: cannot read properties of undefined"],
    ["a thrown non-error", "boom", "retryable", "needs_attention", "thrown value: boom"],
  ])("%s", (_, error, disposition, kind, message) => {
    expect(classifyFailure(error)).toEqual({ disposition, kind, message });
  });

  test("every kind goes with the disposition the error classes give it", () => {
    expect(ERROR_KINDS.document_not_found).toBe("final");
    expect(ERROR_KINDS.account).toBe("infrastructure");
    expect(ERROR_KINDS.configuration).toBe("configuration");
  });

  test("cuts a long message to what a row needs", () => {
    const { message } = classifyFailure(new RetryableJobError("call log: ".repeat(1_000)));
    expect(message.length).toBe(MAX_FAILURE_MESSAGE_LENGTH);
  });

  test("survives a cause chain that loops", () => {
    const a = new Error("a");
    const b = new Error("b", { cause: a });
    a.cause = b;
    expect(classifyFailure(a).disposition).toBe("retryable");
  });
});

/** An instance of `type` whatever its constructor takes: classification looks at the class, not at how it was built. */
function instanceOf<T extends Error>(type: abstract new (...args: never[]) => T, message: string): T {
  return Object.assign(Object.create(type.prototype) as T, { message });
}

/** What Node's fetch throws when the peer cannot be reached: TypeError("fetch failed") with the socket error as cause. */
function fetchFailed(code: string): TypeError {
  return new TypeError("fetch failed", { cause: Object.assign(new Error(`connect ${code} 10.0.0.7:443`), { code }) });
}

describe("classifyFailure: what is the infrastructure's fault, not the document's", () => {
  test.each<[string, unknown]>([
    ["Gemini answered 429", instanceOf(GeminiRateLimitedError, "Gemini answered 429 (quota exhausted)")],
    ["the Gemini budget stayed exhausted past the wait", instanceOf(GeminiBudgetTimeoutError, "Gemini tokens-per-minute budget still exhausted")],
    ["the day's Gemini requests are used up", instanceOf(GeminiDailyBudgetExhaustedError, "Gemini requests-per-day budget exhausted")],
    ["a 429 wrapped by the OCR pipeline", new Error("page 3 failed", { cause: instanceOf(GeminiRateLimitedError, "429") })],
    ["a raw HTTP 429 from a client library", Object.assign(new Error("Resource has been exhausted"), { status: 429 })],
    ["fetch failed (connection refused)", fetchFailed("ECONNREFUSED")],
    ["fetch failed (DNS lookup timed out)", fetchFailed("EAI_AGAIN")],
    ["a reset socket", Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" })],
    ["a socket timeout, wrapped by a storage upload", new Error("upload failed", { cause: Object.assign(new Error("connect ETIMEDOUT"), { code: "ETIMEDOUT" }) })],
    ["the registry unreachable from the browser", new Error("page.goto: net::ERR_CONNECTION_REFUSED at https://www.registrefoncier.gouv.qc.ca/")],
    ["the registry's name not resolved", new Error("page.goto: net::ERR_NAME_NOT_RESOLVED at https://www.registrefoncier.gouv.qc.ca/")],
    ["Upstash answered an error (its daily request limit)", new upstashErrors.UpstashError("ERR max daily request limit exceeded. Limit: 10000, Usage: 10000., command was: [\"evalsha\"]")],
    ["Upstash answered a body that is not JSON (a 502 page)", new upstashErrors.UpstashJSONParseError("<html>502 Bad Gateway</html>")],
    ["an Upstash error wrapped by the OCR pipeline's retryable catch-all", new RetryableJobError("page 1 failed", { cause: new upstashErrors.UpstashError("WRONGPASS invalid password") })],
    ["the browser would not launch", new Error("browserType.launch: Failed to launch the browser process!\n/usr/bin/chromium: error while loading shared libraries")],
  ])("%s → infrastructure, no attempt spent", (name, error) => {
    expect(classifyFailure(error).disposition).toBe("infrastructure");
    // Quota faults are told apart from the rest, so staff see Gemini's share.
    expect(classifyFailure(error).kind).toBe(/429|Gemini|Gemini budget/.test(name) ? "quota" : "infrastructure");
  });

  test.each<[string, unknown, FailureDisposition]>([
    ["a registry answering 503", new RetryableJobError("the registry answered 503"), "retryable"],
    ["a navigation timeout (the registry answered slowly)", Object.assign(new Error("page.goto: Timeout 30000ms exceeded."), { name: "TimeoutError" }), "retryable"],
    ["a Gemini 500", Object.assign(new Error("Internal error"), { status: 500 }), "retryable"],
    ["our own final verdict, even with a network error as cause", new FinalJobError("Le document demandé est inexistant", { cause: fetchFailed("ECONNRESET") }), "final"],
    ["our own retryable verdict wrapped around a network error (a handler's catch-all)", new RetryableJobError("gave up on page 2", { cause: fetchFailed("ECONNRESET") }), "infrastructure"],
    ["our own retryable verdict around a slow answer", new RetryableJobError("the registry did not answer in time", { cause: Object.assign(new Error("Timeout 30000ms exceeded."), { name: "TimeoutError" }) }), "retryable"],
  ])("%s → %s", (_, error, disposition) => {
    expect(classifyFailure(error).disposition).toBe(disposition);
  });

  test("the row says what failed underneath a fetch failure", () => {
    expect(classifyFailure(fetchFailed("ECONNREFUSED")).message).toBe("TypeError: fetch failed ← Error: connect ECONNREFUSED 10.0.0.7:443");
  });
});
