/**
 * Runs inside the bundle `mocked-evaluation.ts` builds, next to SST's
 * platform: Pulumi's runtime mocks stand in for the engine and AWS, so
 * `run()` of sst.config.ts executes the real components (sst.aws.Vpc,
 * Cluster, Task, the IAM documents, …) and every resource they register is
 * recorded with its inputs, without credentials or network.
 *
 * The mocks answer like AWS would in shape: ARNs in the account and region,
 * task definition families and revisions, and `getPolicyDocument` rendering
 * the statements into the IAM JSON the real provider produces, so the policy
 * checks read the same document AWS would receive.
 *
 * Imports `@pulumi/pulumi` from `.sst/platform/node_modules`: type-checked
 * with the infrastructure (typecheck-infra.ts), not by the project's tsc.
 */
import * as pulumi from "@pulumi/pulumi";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";

export const MOCK_ACCOUNT_ID = "123456789012";

export interface RecordedResource {
  readonly type: string;
  readonly name: string;
  readonly inputs: Record<string, unknown>;
  readonly state: Record<string, unknown>;
}

export interface MockedStackResult {
  readonly stage: string;
  readonly region: string;
  readonly resources: RecordedResource[];
  readonly invokes: string[];
  /** Names of the `sst.Secret`s the program read (SST_SECRET_<name>). */
  readonly secrets: string[];
  readonly outputs: Record<string, unknown>;
}

interface PolicyStatementInput {
  sid?: string;
  effect?: string;
  actions?: string[];
  resources?: string[];
  conditions?: { test: string; variable: string; values: string[] }[];
}

/** What aws.iam.getPolicyDocument renders: the statements as IAM policy JSON. */
function policyDocument(statements: readonly PolicyStatementInput[]): string {
  return JSON.stringify({
    Version: "2012-10-17",
    Statement: statements.map((statement) => {
      const condition: Record<string, Record<string, string[]>> = {};
      for (const { test, variable, values } of statement.conditions ?? []) {
        condition[test] = { ...(condition[test] ?? {}), [variable]: values };
      }
      return {
        ...(statement.sid ? { Sid: statement.sid } : {}),
        Effect: statement.effect ?? "Allow",
        ...(statement.actions ? { Action: statement.actions } : {}),
        ...(statement.resources ? { Resource: statement.resources } : {}),
        ...(Object.keys(condition).length > 0 ? { Condition: condition } : {}),
      };
    }),
  });
}

function stringInput(inputs: Record<string, unknown>, key: string): string | undefined {
  const value = inputs[key];
  return typeof value === "string" && value.length > 0 ? value : undefined;
}

/** Fake but well-formed hex ids, stable per resource name. */
function hexId(name: string, length: number): string {
  let hash = 2166136261;
  for (const char of name) hash = Math.imul(hash ^ char.charCodeAt(0), 16777619) >>> 0;
  return hash.toString(16).padStart(8, "0").repeat(Math.ceil(length / 8)).slice(0, length);
}

/** The attributes AWS would return for a created resource, as the components read them. */
function createdState(type: string, name: string, inputs: Record<string, unknown>, region: string): { id: string; state: Record<string, unknown> } {
  const arnPrefix = (service: string) => `arn:aws:${service}:${region}:${MOCK_ACCOUNT_ID}`;
  const physical = stringInput(inputs, "name") ?? name;
  switch (type) {
    case "aws:ecs/cluster:Cluster":
      return { id: physical, state: { name: physical, arn: `${arnPrefix("ecs")}:cluster/${physical}` } };
    case "aws:ecs/taskDefinition:TaskDefinition": {
      const family = stringInput(inputs, "family") ?? name;
      const arnWithoutRevision = `${arnPrefix("ecs")}:task-definition/${family}`;
      return { id: family, state: { family, revision: 1, arn: `${arnWithoutRevision}:1`, arnWithoutRevision } };
    }
    case "aws:iam/role:Role":
      return { id: physical, state: { name: physical, arn: `arn:aws:iam::${MOCK_ACCOUNT_ID}:role/${physical}`, uniqueId: `AROA${hexId(name, 17).toUpperCase()}` } };
    case "aws:iam/user:User": {
      const path = stringInput(inputs, "path") ?? "/";
      return { id: physical, state: { name: physical, arn: `arn:aws:iam::${MOCK_ACCOUNT_ID}:user${path}${physical}` } };
    }
    case "aws:ssm/parameter:Parameter":
      return { id: physical, state: { arn: `${arnPrefix("ssm")}:parameter${physical.startsWith("/") ? "" : "/"}${physical}` } };
    case "aws:ec2/vpc:Vpc":
      return { id: `vpc-${hexId(name, 17)}`, state: { arn: `${arnPrefix("ec2")}:vpc/vpc-${hexId(name, 17)}`, defaultSecurityGroupId: `sg-${hexId(`${name}-default`, 17)}` } };
    case "aws:ec2/subnet:Subnet":
      return { id: `subnet-${hexId(name, 17)}`, state: { arn: `${arnPrefix("ec2")}:subnet/subnet-${hexId(name, 17)}` } };
    case "aws:ec2/securityGroup:SecurityGroup":
      return { id: `sg-${hexId(name, 17)}`, state: { arn: `${arnPrefix("ec2")}:security-group/sg-${hexId(name, 17)}` } };
    case "aws:cloudwatch/logGroup:LogGroup":
      return { id: physical, state: { arn: `${arnPrefix("logs")}:log-group:${physical}` } };
    case "docker-build:index:Image":
      return { id: name, state: { digest: `sha256:${hexId(name, 64)}`, ref: `${name}@sha256:${hexId(name, 64)}` } };
    default:
      return { id: `${name}-id`, state: { arn: `${arnPrefix("mock")}:${type}/${name}` } };
  }
}

/** Answers the data sources (invokes) the components call. */
function invokeResult(token: string, inputs: Record<string, unknown>, region: string): Record<string, unknown> {
  switch (token) {
    case "aws:index/getRegion:getRegion":
      return { name: region, region, id: region, description: region, endpoint: `ec2.${region}.amazonaws.com` };
    case "aws:index/getPartition:getPartition":
      return { partition: "aws", dnsSuffix: "amazonaws.com", id: "aws" };
    case "aws:index/getCallerIdentity:getCallerIdentity":
      return { accountId: MOCK_ACCOUNT_ID, arn: `arn:aws:iam::${MOCK_ACCOUNT_ID}:user/deployer`, userId: "AIDAMOCK", id: MOCK_ACCOUNT_ID };
    case "aws:index/getAvailabilityZones:getAvailabilityZones":
      return { names: ["a", "b", "d"].map((suffix) => `${region}${suffix}`), zoneIds: ["cac1-az1", "cac1-az2", "cac1-az4"], id: region };
    case "aws:iam/getPolicyDocument:getPolicyDocument": {
      const statements = Array.isArray(inputs.statements) ? (inputs.statements as PolicyStatementInput[]) : [];
      return { json: policyDocument(statements), minifiedJson: policyDocument(statements), id: "policy" };
    }
    case "aws:ecr/getAuthorizationToken:getAuthorizationToken":
      return { proxyEndpoint: `https://${MOCK_ACCOUNT_ID}.dkr.ecr.${region}.amazonaws.com`, userName: "AWS", password: "mock", authorizationToken: "mock", id: "ecr" };
    default:
      return {};
  }
}

/**
 * `sst.Secret` reads `SST_SECRET_<name>` from the environment and stops the
 * deploy when it is missing. The mocked run answers every such read with a
 * marker value and records the name, so the check needs no real secret and
 * reports which ones a deploy needs.
 */
function answerSecretReads(secrets: Set<string>): void {
  const real = process.env;
  process.env = new Proxy(real, {
    get(target, key) {
      if (typeof key === "string" && key.startsWith("SST_SECRET_")) {
        const name = key.slice("SST_SECRET_".length);
        secrets.add(name);
        return `mock-secret-value-of-${name}`;
      }
      return Reflect.get(target, key);
    },
  });
}

/**
 * The SST CLI serves an RPC endpoint (SST_SERVER) that components call for
 * account facts; Task asks it for the bootstrap ECR repository its images
 * are pushed to. This stand-in answers that one call the way the CLI does.
 */
async function startSstRpcStandIn(region: string): Promise<() => void> {
  const server = createServer((request, response) => {
    let body = "";
    request.on("data", (chunk: Buffer) => (body += chunk.toString()));
    request.on("end", () => {
      const call = JSON.parse(body) as { method?: string };
      const result =
        call.method === "Provider.Aws.Bootstrap"
          ? {
              asset: `sst-asset-mock-${region}`,
              assetEcrRegistryId: MOCK_ACCOUNT_ID,
              assetEcrUrl: `${MOCK_ACCOUNT_ID}.dkr.ecr.${region}.amazonaws.com/sst-asset`,
              state: `sst-state-mock-${region}`,
              appsyncHttp: "",
              appsyncRealtime: "",
            }
          : undefined;
      response.writeHead(200, { "content-type": "application/json" });
      response.end(JSON.stringify(result === undefined ? { error: `rpc: can't find method ${call.method}` } : { result }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  process.env.SST_SERVER = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return () => server.close();
}

/**
 * Installs the mocks; `finish` resolves the program's outputs, waits for every
 * registration to complete and returns what was recorded.
 */
export async function startMockedStack(options: { project: string; stage: string; region: string }) {
  const resources: RecordedResource[] = [];
  const invokes: string[] = [];
  const secrets = new Set<string>();
  const stopRpc = await startSstRpcStandIn(options.region);
  answerSecretReads(secrets);
  pulumi.runtime.setMocks(
    {
      newResource(args) {
        const inputs = (args.inputs ?? {}) as Record<string, unknown>;
        const { id, state } = createdState(args.type, args.name, inputs, options.region);
        const fullState = { ...inputs, ...state };
        resources.push({ type: args.type, name: args.name, inputs, state: fullState });
        return { id, state: fullState };
      },
      call(args) {
        invokes.push(args.token);
        return invokeResult(args.token, (args.inputs ?? {}) as Record<string, unknown>, options.region);
      },
    },
    options.project,
    options.stage,
    // Not a preview: outputs resolve to the mocked values, so every apply runs.
    false,
  );

  return {
    /** Runs the program as the root stack does during a deploy (stack transformations need it). */
    async evaluate(program: () => Promise<Record<string, unknown>>): Promise<MockedStackResult> {
      let outputs: Record<string, unknown> = {};
      await pulumi.runtime.runInPulumiStack(async () => {
        outputs = await program();
        return outputs;
      });
      const resolved = await new Promise<Record<string, unknown>>((resolve) => {
        pulumi.output(outputs).apply((values) => {
          resolve(values as Record<string, unknown>);
          return values;
        });
      });
      // Registrations made inside applies finish after the outputs resolve.
      await pulumi.runtime.disconnect();
      stopRpc();
      return { stage: options.stage, region: options.region, resources, invokes, secrets: [...secrets].sort(), outputs: resolved };
    },
  };
}
