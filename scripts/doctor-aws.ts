/**
 * The doctor's look at the stage's AWS resources with the deployer's own
 * credentials (the dispatch key may only run, watch and stop tasks): the
 * cluster is ACTIVE with FARGATE and FARGATE_SPOT, both task definitions
 * exist and are ACTIVE, and the subnets dispatch starts tasks in exist.
 *
 * ECS speaks JSON 1.1 (`X-Amz-Target: AmazonEC2ContainerServiceV20141113.<Action>`,
 * the same protocol as supabase/functions/_shared/ecs-client.ts); EC2 speaks
 * the Query protocol (form-encoded `Action=DescribeSubnets&Version=2016-11-15`,
 * XML answer: https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeSubnets.html).
 */
import { AwsClient } from "aws4fetch";
import { z } from "zod";
import type { EcsConfig } from "../supabase/functions/_shared/ecs-client.ts";

export interface AwsCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
}

export interface AwsEndpoints {
  /** @default https://ecs.<region>.amazonaws.com */
  readonly ecs?: string;
  /** @default https://ec2.<region>.amazonaws.com */
  readonly ec2?: string;
}

const clustersSchema = z.object({
  clusters: z.array(z.object({ clusterArn: z.string(), status: z.string(), capacityProviders: z.array(z.string()).default([]) })).default([]),
  failures: z.array(z.object({ arn: z.string().optional(), reason: z.string().optional() })).default([]),
});
const taskDefinitionSchema = z.object({ taskDefinition: z.object({ taskDefinitionArn: z.string(), status: z.string() }) });

/** Problems with the stage's cluster, task definitions and subnets; empty when all exist as dispatch needs them. */
export async function awsResourceProblems(ecs: EcsConfig, credentials: AwsCredentials, endpoints: AwsEndpoints = {}): Promise<string[]> {
  const aws = (service: "ecs" | "ec2") => new AwsClient({ ...credentials, service, region: ecs.region, retries: 1 });
  const ecsEndpoint = endpoints.ecs ?? `https://ecs.${ecs.region}.amazonaws.com`;
  const ecsCall = async (action: string, body: unknown): Promise<unknown> => {
    const response = await aws("ecs").fetch(ecsEndpoint, {
      method: "POST",
      headers: { "content-type": "application/x-amz-json-1.1", "x-amz-target": `AmazonEC2ContainerServiceV20141113.${action}` },
      body: JSON.stringify(body),
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`ECS ${action} answered ${response.status}: ${text.slice(0, 200)}`);
    return JSON.parse(text);
  };
  const problems: string[] = [];
  const clusters = clustersSchema.parse(await ecsCall("DescribeClusters", { clusters: [ecs.cluster] }));
  const cluster = clusters.clusters[0];
  if (cluster === undefined || cluster.status !== "ACTIVE") problems.push(`cluster ${ecs.cluster} is ${cluster?.status ?? clusters.failures[0]?.reason ?? "missing"}`);
  else for (const provider of ["FARGATE", "FARGATE_SPOT"]) if (!cluster.capacityProviders.includes(provider)) problems.push(`cluster lacks capacity provider ${provider}`);
  for (const family of [ecs.taskDefinitions.registre, ecs.taskDefinitions.ocr]) {
    try {
      const definition = taskDefinitionSchema.parse(await ecsCall("DescribeTaskDefinition", { taskDefinition: family }));
      if (definition.taskDefinition.status !== "ACTIVE") problems.push(`task definition ${family} is ${definition.taskDefinition.status}`);
    } catch (error) {
      problems.push(`task definition ${family}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  const form = new URLSearchParams({ Action: "DescribeSubnets", Version: "2016-11-15" });
  ecs.subnets.forEach((subnet, index) => form.set(`SubnetId.${index + 1}`, subnet));
  const subnets = await aws("ec2").fetch(endpoints.ec2 ?? `https://ec2.${ecs.region}.amazonaws.com`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded; charset=utf-8" },
    body: form.toString(),
  });
  const xml = await subnets.text();
  if (!subnets.ok) problems.push(`subnets ${ecs.subnets.join(", ")}: EC2 answered ${subnets.status} (${/<Code>([^<]+)<\/Code>/.exec(xml)?.[1] ?? "?"})`);
  else {
    const found = [...xml.matchAll(/<subnetId>([^<]+)<\/subnetId>/g)].map((match) => match[1]);
    const missing = ecs.subnets.filter((subnet) => !found.includes(subnet));
    if (missing.length > 0) problems.push(`subnets not found: ${missing.join(", ")}`);
  }
  return problems;
}
