import type { TestProject } from "vitest/node";
import { startTestStack, type TestStack } from "../infra/local/test-stack.ts";

/**
 * Starts one private stack (PostgreSQL, redis-server, the Upstash REST
 * endpoint) for the whole test run, on free ports, and stops it afterwards.
 * Each test file then gets a fresh database cloned from a migrated template.
 */
let stack: TestStack | undefined;

export async function setup(project: TestProject): Promise<void> {
  stack = await startTestStack();
  project.provide("adminDatabaseUrl", stack.adminDatabaseUrl);
  project.provide("templateDatabase", stack.templateDatabase);
  project.provide("redisUrl", stack.redisUrl);
  project.provide("upstashUrl", stack.upstashUrl);
  project.provide("upstashToken", stack.upstashToken);
}

export async function teardown(): Promise<void> {
  await stack?.stop();
}

declare module "vitest" {
  export interface ProvidedContext {
    adminDatabaseUrl: string;
    templateDatabase: string;
    redisUrl: string;
    upstashUrl: string;
    upstashToken: string;
  }
}
