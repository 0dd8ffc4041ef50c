/**
 * The ECS settings a local stack's dispatch function runs with: its local
 * ECS endpoint, signed with the dispatch secret as the access key's secret,
 * and the two local task definitions. `npm run doctor -- --local` checks
 * that endpoint with the same settings, so both read them from here.
 */
export function localEcsEnvironment(ecsUrl: string, dispatchSecret: string): Record<string, string> {
  return {
    AWS_ENDPOINT_URL_ECS: ecsUrl,
    AWS_REGION: "ca-central-1",
    AWS_ACCESS_KEY_ID: "local",
    AWS_SECRET_ACCESS_KEY: dispatchSecret,
    ECS_CLUSTER: "local",
    ECS_TASK_DEFINITION_REGISTRE: "registre-runner",
    ECS_TASK_DEFINITION_OCR: "ocr-runner",
    ECS_CONTAINER_NAME_REGISTRE: "registre",
    ECS_CONTAINER_NAME_OCR: "ocr",
    ECS_SUBNETS: "subnet-local",
  };
}
