import { defineConfig } from "vitest/config";
import base from "./vitest.config.ts";

// `npm run test:load`: the queue under load on a private local stack (tests/**/*.load.ts), kept out of `npm test`.
// No global setup: the suite starts its own stack. LOAD_ROWS sets the row count (default 10,000).
export default defineConfig({ ...base, test: { ...base.test, include: ["tests/**/*.load.ts"], globalSetup: [], testTimeout: 60 * 60_000 } });
