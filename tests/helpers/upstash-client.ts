import { randomBytes } from "node:crypto";
import { Redis } from "@upstash/redis";
import { inject } from "vitest";

/**
 * A real `@upstash/redis` client on the run's local Upstash endpoint. Each
 * call makes a new client, as each dispatcher or runner has its own.
 */
export function upstashClient(): Redis {
  return new Redis({ url: inject("upstashUrl"), token: inject("upstashToken"), enableTelemetry: false });
}

/** Keys of one test never meet another's, even when test files share the Redis. */
export function randomKeyPrefix(name: string): string {
  return `test:${name}:${randomBytes(6).toString("hex")}`;
}
