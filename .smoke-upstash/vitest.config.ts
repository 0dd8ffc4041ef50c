import { defineConfig } from "vitest/config";
export default defineConfig({ root: "/work/main", test: { include: ["tests/integration/upstash-rest-endpoint.test.ts"], globalSetup: [".smoke-upstash/setup.ts"], pool: "forks", testTimeout: 30_000 } });
