import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseEcsConfig } from "../../supabase/functions/_shared/ecs-client.ts";
import { awsResourceProblems } from "../../scripts/doctor-aws.ts";

/**
 * The doctor's AWS resource check against a stand-in speaking ECS's JSON 1.1
 * protocol (DescribeClusters, DescribeTaskDefinition) and EC2's Query
 * protocol (DescribeSubnets, XML), signed with the deployer's credentials.
 */
const state = { clusterStatus: "ACTIVE", providers: ["FARGATE", "FARGATE_SPOT"], inactive: "", subnets: ["subnet-0a1b2c3d", "subnet-0e1f2a3b"] };
let server: Server;
let url: string;
const signed: boolean[] = [];

beforeAll(async () => {
  server = createServer((request, response) => {
    let text = "";
    request.on("data", (chunk: Buffer) => (text += chunk.toString("utf8")));
    request.on("end", () => {
      signed.push(String(request.headers.authorization).startsWith("AWS4-HMAC-SHA256 Credential=AKIADEPLOYER"));
      const target = String(request.headers["x-amz-target"] ?? "");
      if (target.endsWith(".DescribeClusters")) {
        response.setHeader("content-type", "application/x-amz-json-1.1");
        response.end(JSON.stringify({ clusters: [{ clusterArn: "arn:aws:ecs:ca-central-1:123456789012:cluster/c", status: state.clusterStatus, capacityProviders: state.providers }], failures: [] }));
      } else if (target.endsWith(".DescribeTaskDefinition")) {
        const family = String((JSON.parse(text) as { taskDefinition: string }).taskDefinition);
        response.setHeader("content-type", "application/x-amz-json-1.1");
        if (family === "missing-family") {
          response.statusCode = 400;
          response.end(JSON.stringify({ __type: "ClientException", message: "Unable to describe task definition." }));
          return;
        }
        response.end(JSON.stringify({ taskDefinition: { taskDefinitionArn: `arn:aws:ecs:ca-central-1:123456789012:task-definition/${family}:3`, status: family === state.inactive ? "INACTIVE" : "ACTIVE" } }));
      } else {
        const form = new URLSearchParams(text);
        const asked = [...form.entries()].filter(([name]) => name.startsWith("SubnetId.")).map(([, value]) => value);
        const found = asked.filter((subnet) => state.subnets.includes(subnet));
        response.setHeader("content-type", "text/xml");
        if (found.length < asked.length) {
          response.statusCode = 400;
          response.end(`<Response><Errors><Error><Code>InvalidSubnetID.NotFound</Code></Error></Errors></Response>`);
          return;
        }
        response.end(`<DescribeSubnetsResponse><subnetSet>${found.map((id) => `<item><subnetId>${id}</subnetId></item>`).join("")}</subnetSet></DescribeSubnetsResponse>`);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

function config(overrides: Record<string, string> = {}) {
  return parseEcsConfig({
    AWS_ACCESS_KEY_ID: "AKIADISPATCH",
    AWS_SECRET_ACCESS_KEY: "dispatch",
    AWS_REGION: "ca-central-1",
    ECS_CLUSTER: "arn:aws:ecs:ca-central-1:123456789012:cluster/c",
    ECS_TASK_DEFINITION_REGISTRE: "registre-family",
    ECS_TASK_DEFINITION_OCR: "ocr-family",
    ECS_CONTAINER_NAME_REGISTRE: "registre-runner",
    ECS_CONTAINER_NAME_OCR: "ocr-runner",
    ECS_SUBNETS: "subnet-0a1b2c3d,subnet-0e1f2a3b",
    ...overrides,
  });
}

const deployer = { accessKeyId: "AKIADEPLOYER", secretAccessKey: "deployer-secret" };

describe("the doctor's AWS resource check", () => {
  it("finds nothing wrong with an active cluster offering both providers, active task definitions and existing subnets, signing with the deployer's key", async () => {
    expect(await awsResourceProblems(config(), deployer, { ecs: url, ec2: url })).toEqual([]);
    expect(signed.every(Boolean)).toBe(true);
  });

  it("names each missing or inactive resource", async () => {
    state.providers = ["FARGATE"];
    state.inactive = "ocr-family";
    try {
      const problems = await awsResourceProblems(config({ ECS_TASK_DEFINITION_REGISTRE: "missing-family", ECS_SUBNETS: "subnet-0a1b2c3d,subnet-0badbad0" }), deployer, { ecs: url, ec2: url });
      expect(problems).toEqual([
        "cluster lacks capacity provider FARGATE_SPOT",
        expect.stringMatching(/^task definition missing-family: ECS DescribeTaskDefinition answered 400/),
        "task definition ocr-family is INACTIVE",
        "subnets subnet-0a1b2c3d, subnet-0badbad0: EC2 answered 400 (InvalidSubnetID.NotFound)",
      ]);
    } finally {
      state.providers = ["FARGATE", "FARGATE_SPOT"];
      state.inactive = "";
    }
  });
});
