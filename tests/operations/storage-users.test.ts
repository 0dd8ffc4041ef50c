import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureStorageUsers } from "../../scripts/storage-users.ts";

/**
 * `npm run storage-users -- ensure` against a stand-in of Supabase Auth's
 * admin API (GET/POST /auth/v1/admin/users, PUT /auth/v1/admin/users/{id}):
 * one user per runner family with app_metadata.runner_family, the secret
 * key as apikey and never as a bearer, passwords printed only when set.
 */
interface StoredUser {
  id: string;
  email: string;
  password: string;
  app_metadata: Record<string, unknown>;
}

let server: Server;
let url: string;
const users: StoredUser[] = [];
const seenHeaders: { apikey: string | undefined; authorization: string | undefined }[] = [];
const SECRET = "sb_secret_test_0123456789abcdef";

beforeAll(async () => {
  server = createServer((request, response) => {
    let text = "";
    request.on("data", (chunk: Buffer) => (text += chunk.toString("utf8")));
    request.on("end", () => {
      seenHeaders.push({ apikey: request.headers.apikey as string | undefined, authorization: request.headers.authorization });
      response.setHeader("content-type", "application/json");
      if (request.headers.apikey !== SECRET) {
        response.statusCode = 401;
        response.end(JSON.stringify({ message: "Invalid API key" }));
        return;
      }
      const body = (text === "" ? {} : JSON.parse(text)) as Partial<StoredUser> & { email_confirm?: boolean };
      const path = request.url ?? "";
      if (request.method === "GET" && path.startsWith("/auth/v1/admin/users")) {
        response.end(JSON.stringify({ users: users.map(({ id, email }) => ({ id, email })) }));
      } else if (request.method === "POST" && path === "/auth/v1/admin/users") {
        const user = { id: `user-${users.length + 1}`, email: String(body.email), password: String(body.password), app_metadata: body.app_metadata ?? {} };
        users.push(user);
        response.end(JSON.stringify({ id: user.id, email: user.email }));
      } else if (request.method === "PUT") {
        const user = users.find((candidate) => path.endsWith(`/${candidate.id}`));
        if (user === undefined) {
          response.statusCode = 404;
          response.end("{}");
          return;
        }
        if (body.password !== undefined) user.password = body.password;
        if (body.app_metadata !== undefined) user.app_metadata = body.app_metadata;
        response.end(JSON.stringify({ id: user.id, email: user.email }));
      } else {
        response.statusCode = 404;
        response.end("{}");
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

describe("npm run storage-users -- ensure", () => {
  it("creates one user per family with its runner_family claim, keeps them, and rotates passwords on demand", async () => {
    const first = await ensureStorageUsers({ url, secretKey: SECRET, rotate: false, emailDomain: "runners.invalid" });
    expect(first.map((user) => [user.family, user.email, user.action])).toEqual([
      ["registre", "registre-runner@runners.invalid", "created"],
      ["ocr", "ocr-runner@runners.invalid", "created"],
    ]);
    expect(users.map((user) => user.app_metadata)).toEqual([{ runner_family: "registre" }, { runner_family: "ocr" }]);
    expect(users.map((user) => user.password)).toEqual(first.map((user) => user.password));
    expect(first.every((user) => (user.password ?? "").length >= 40)).toBe(true);

    const again = await ensureStorageUsers({ url, secretKey: SECRET, rotate: false, emailDomain: "runners.invalid" });
    expect(again.map((user) => [user.action, user.password])).toEqual([["kept", undefined], ["kept", undefined]]);
    expect(users).toHaveLength(2);

    const before = users.map((user) => user.password);
    const rotated = await ensureStorageUsers({ url, secretKey: SECRET, rotate: true, emailDomain: "runners.invalid" });
    expect(rotated.map((user) => user.action)).toEqual(["rotated", "rotated"]);
    expect(users.map((user) => user.password)).toEqual(rotated.map((user) => user.password));
    expect(users.map((user) => user.password)).not.toEqual(before);
    // The new secret key is an API key, not a JWT: never sent as a bearer.
    expect(seenHeaders.every((headers) => headers.apikey === SECRET && headers.authorization === undefined)).toBe(true);
  });

  it("reports Auth's refusal", async () => {
    await expect(ensureStorageUsers({ url, secretKey: "sb_secret_wrong_0000000000", rotate: false, emailDomain: "runners.invalid" })).rejects.toThrow(/answered 401/);
  });
});
