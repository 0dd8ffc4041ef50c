import { describe, expect, it } from "vitest";
import { hasProjectApiKey, projectApiKeys } from "../../supabase/functions/_shared/api-key-check.ts";

/**
 * The health function's own key check (verify_jwt is off because the
 * gateway cannot validate the new API keys): the publishable key in
 * `apikey` passes, as do the secret keys and the legacy anon JWT; anything
 * else is refused; with no key configured (the local stack) every caller
 * passes.
 */
const ENV = {
  SUPABASE_PUBLISHABLE_KEYS: JSON.stringify({ default: "sb_publishable_aaaa1111", web: "sb_publishable_bbbb2222" }),
  SUPABASE_SECRET_KEYS: JSON.stringify({ default: "sb_secret_cccc3333" }),
  SUPABASE_ANON_KEY: "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoiYW5vbiJ9.legacy",
};

function request(headers: Record<string, string>): Request {
  return new Request("http://127.0.0.1/functions/v1/health", { headers });
}

describe("the project API key check", () => {
  it("reads every key of the dictionaries and the legacy anon key", () => {
    expect(projectApiKeys(ENV)).toEqual(["sb_publishable_aaaa1111", "sb_publishable_bbbb2222", "sb_secret_cccc3333", ENV.SUPABASE_ANON_KEY]);
  });

  it.each([
    ["a publishable key as apikey", { apikey: "sb_publishable_bbbb2222" }, true],
    ["the secret key as apikey", { apikey: "sb_secret_cccc3333" }, true],
    ["the legacy anon JWT as bearer", { authorization: `Bearer ${ENV.SUPABASE_ANON_KEY}` }, true],
    ["another key", { apikey: "sb_publishable_zzzz9999" }, false],
    ["no key", {}, false],
  ])("with %s: %s", async (_name, headers, allowed) => {
    expect(await hasProjectApiKey(request(headers), projectApiKeys(ENV))).toBe(allowed);
  });

  it("lets every caller through where no key is configured (the local stack)", async () => {
    expect(await hasProjectApiKey(request({}), projectApiKeys({}))).toBe(true);
  });
});
