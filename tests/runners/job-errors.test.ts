import { describe, expect, test } from "vitest";
import {
  classifyFailure,
  FinalJobError,
  InfrastructureError,
  MAX_FAILURE_MESSAGE_LENGTH,
  RetryableJobError,
  type FailureDisposition,
} from "../../runners/lifecycle/job-errors.ts";

describe("classifyFailure", () => {
  test.each<[string, unknown, FailureDisposition, string]>([
    ["a document the registry says does not exist", new FinalJobError("Le document demandé est inexistant"), "final", "Le document demandé est inexistant"],
    ["a registry timeout", new RetryableJobError("navigation timed out after 30000 ms"), "retryable", "navigation timed out after 30000 ms"],
    ["a browser that could not start", new InfrastructureError("chromium exited with code 127"), "infrastructure", "chromium exited with code 127"],
    [
      "one of ours wrapped as another error's cause",
      new Error("upload failed", { cause: new InfrastructureError("storage unreachable") }),
      "infrastructure",
      "storage unreachable",
    ],
    ["an unknown error, kept with its class name", new TypeError("cannot read properties of undefined"), "retryable", "TypeError: cannot read properties of undefined"],
    ["a thrown non-error", "boom", "retryable", "thrown value: boom"],
  ])("%s", (_, error, disposition, message) => {
    expect(classifyFailure(error)).toEqual({ disposition, message });
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
