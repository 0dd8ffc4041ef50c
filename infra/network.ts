/**
 * The network the runner tasks live in.
 *
 * Everything a runner talks to is on the internet: the registry's site,
 * Supabase (the pooler and Storage), Upstash, Gemini, and ECR for its image.
 * Nothing ever connects to a runner. So the tasks run in the public subnets
 * with a public IP, behind a security group that admits nothing, and the VPC
 * has no NAT:
 * - a managed NAT gateway costs about $65 a month per stage (two AZs) plus
 *   $0.045 per GB, and isolates nothing the closed security group does not;
 * - an EC2 NAT (`nat: "ec2"`, fck-nat on a t4g.nano) is cheap, but its small
 *   baseline bandwidth becomes the bottleneck when several tasks pull the
 *   Chromium image at once, and it is one more instance to keep alive.
 * A public IPv4 address costs $0.005 per task-hour, only while a task runs
 * (us-east-1 list prices; ca-central-1 is close).
 *
 * The price: a task's egress address changes with every task. If Supabase
 * network restrictions or the registry ever require a fixed address, set
 * `nat: "managed"` (one Elastic IP per AZ), set `runnerSubnets` below to
 * `vpc.privateSubnets` and `runnerAssignPublicIp` to "DISABLED".
 */
export const vpc = new sst.aws.Vpc("Vpc", { az: 2 });

/** Where dispatch starts runner tasks (its ECS_SUBNETS). */
export const runnerSubnets = vpc.publicSubnets;

/** Public subnets without NAT: a task without a public IP could not even pull its image. */
export const runnerAssignPublicIp = "ENABLED" as const;

/**
 * The runners' only security group: no inbound rule at all, outbound only
 * where the runners go. DNS and the ECS metadata endpoint are not filtered
 * by security groups, so they need no rule.
 */
export const runnerSecurityGroup = new aws.ec2.SecurityGroup("RunnerSecurityGroup", {
  vpcId: vpc.id,
  description: "Runner tasks: no inbound; outbound HTTPS and the Supabase pooler",
  ingress: [],
  egress: [
    {
      description: "HTTPS: registry site, Supabase Storage, Upstash, Gemini, ECR, CloudWatch Logs, SSM",
      protocol: "tcp",
      fromPort: 443,
      toPort: 443,
      cidrBlocks: ["0.0.0.0/0"],
    },
    {
      description: "Supabase pooler, transaction mode (what the runner role uses)",
      protocol: "tcp",
      fromPort: 6543,
      toPort: 6543,
      cidrBlocks: ["0.0.0.0/0"],
    },
    {
      description: "Supabase pooler, session mode",
      protocol: "tcp",
      fromPort: 5432,
      toPort: 5432,
      cidrBlocks: ["0.0.0.0/0"],
    },
  ],
});
