import { describe, expect, it } from "vitest";
import { ConfigurationError } from "../../runners/lifecycle/job-errors.ts";
import { enforceProductionEndpoints } from "../../runners/lifecycle/production-endpoints.ts";
import { parseRegistreConfig } from "../../runners/registre/registre-config.ts";

/**
 * A runner from the production image given hostile RunTask environment
 * overrides: endpoint overrides are dropped (the registry's real address is
 * used), other hosts for Supabase, Upstash or the pooler are refused naming
 * the variable and never its value; outside the image nothing changes.
 */
const REF = "abcdefghijklmnopqrst";
const DEPLOYED = {
  DATABASE_URL: `postgresql://runner.${REF}:s3cret@aws-1-ca-central-1.pooler.supabase.com:6543/postgres`,
  SUPABASE_URL: `https://${REF}.supabase.co`,
  UPSTASH_REDIS_REST_URL: "https://shared-budget-12345.upstash.io",
};

function refusal(env: Record<string, string>): string {
  try {
    enforceProductionEndpoints({ ...env }, true);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigurationError);
    const message = (error as Error).message;
    expect(message).not.toContain("s3cret");
    return message;
  }
  return "accepted";
}

describe("a runner from the production image", () => {
  it("drops the endpoint overrides, so the registry's and Gemini's real addresses are used", () => {
    const env: Record<string, string | undefined> = { ...DEPLOYED, REGISTRY_BASE_URL: "https://attacker.example", GEMINI_BASE_URL: "https://attacker.example", STORAGE_LOCAL_DIR: "/tmp/x" };
    expect(enforceProductionEndpoints(env, true)).toEqual(["REGISTRY_BASE_URL", "GEMINI_BASE_URL", "STORAGE_LOCAL_DIR"]);
    expect(env).toEqual(DEPLOYED);
    expect(parseRegistreConfig(env).registryBaseUrl).toBe("https://www.registrefoncier.gouv.qc.ca");
  });

  it("accepts the deployed endpoints as they are", () => {
    expect(refusal(DEPLOYED)).toBe("accepted");
  });

  it.each([
    ["SUPABASE_URL", { SUPABASE_URL: "https://attacker.example" }, /SUPABASE_URL must be https:\/\/<project ref>\.supabase\.co/],
    ["UPSTASH_REDIS_REST_URL", { UPSTASH_REDIS_REST_URL: "https://upstash.io.attacker.example" }, /UPSTASH_REDIS_REST_URL must be/],
    ["DATABASE_URL", { DATABASE_URL: "postgresql://runner:s3cret@db.attacker.example:6543/postgres" }, /DATABASE_URL must be a Supabase pooler host/],
    ["another project's pooler", { DATABASE_URL: "postgresql://runner.zyxwvutsrqponmlkjihg:s3cret@aws-0-ca-central-1.pooler.supabase.com:6543/postgres" }, /of the project SUPABASE_URL names/],
  ])("refuses an override of %s", (_name, override, message) => {
    expect(refusal({ ...DEPLOYED, ...override })).toMatch(message);
  });

  it("changes nothing outside the image (the local stack's stand-ins)", () => {
    const env: Record<string, string | undefined> = { REGISTRY_BASE_URL: "http://127.0.0.1:54400", SUPABASE_URL: "http://127.0.0.1:54321", DATABASE_URL: "postgres://runner@127.0.0.1:54322/postgres" };
    expect(enforceProductionEndpoints(env, false)).toEqual([]);
    expect(env["REGISTRY_BASE_URL"]).toBe("http://127.0.0.1:54400");
  });
});
