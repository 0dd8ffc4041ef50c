/// <reference path="./.sst/platform/config.d.ts" />

// The AWS side: where runner tasks run. One stage per Supabase project (dev,
// staging, prod). `npm run deploy:secrets` turns the outputs into the dispatch
// function's secrets; `npm run infra:check` evaluates all of this offline
// under Pulumi's mocks (infra/check/).
export default $config({
  app(input) {
    return {
      name: "registre-extraction",
      removal: input?.stage === "production" || input?.stage === "prod" ? "retain" : "remove",
      home: "aws",
      // The provider version is pinned so `sst install` (and infra:check on a
      // fresh clone) installs what was checked, not whatever is latest.
      providers: { aws: { region: "ca-central-1", version: "7.20.0" } },
    };
  },
  async run() {
    // infra/dispatch-access.ts imports the rest: secrets, network, cluster, tasks.
    const { dispatchSecrets, dispatchUser } = await import("./infra/dispatch-access.ts");
    // Stage lets deploy:secrets refuse the outputs of another stage's deploy.
    return { ...dispatchSecrets, DispatchIamUser: dispatchUser.name, Stage: $app.stage };
  },
});
