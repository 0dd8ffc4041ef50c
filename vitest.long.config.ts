import { defineConfig, mergeConfig } from "vitest/config";
import base from "./vitest.config.ts";

// `npm run test:long`: suites that run the whole pipeline for minutes (tests/**/*.long.ts), kept out of `npm test`.
export default mergeConfig(base, defineConfig({ test: { include: ["tests/**/*.long.ts"] } }));
