import { defineConfig } from "vitest/config";
import base from "./vitest.config.ts";

// `npm run test:long`: suites that run the whole pipeline for minutes (tests/**/*.long.ts), kept out of `npm test`.
// Spread, not mergeConfig: merging would add this include to the base one and run every suite.
export default defineConfig({ ...base, test: { ...base.test, include: ["tests/**/*.long.ts"] } });
