import { runnerSecurityGroup, runnerSubnets, vpc } from "./network.ts";

/**
 * The ECS cluster every runner task starts in. The component registers the
 * FARGATE and FARGATE_SPOT capacity providers; dispatch picks one per
 * family on each RunTask (ECS_CAPACITY_PROVIDER_<FAMILY>, from
 * runner-placement.ts), so switching needs no deploy. The runners' SIGTERM
 * drain fits Spot's two-minute notice.
 *
 * The VPC is passed as plain ids rather than the Vpc component so the tasks
 * get the runners' security group and subnets from infra/network.ts instead
 * of the VPC's default group. Nothing here has a load balancer; the
 * component requires its subnets anyway.
 */
export const cluster = new sst.aws.Cluster("Cluster", {
  vpc: {
    id: vpc.id,
    securityGroups: [runnerSecurityGroup.id],
    containerSubnets: runnerSubnets,
    loadBalancerSubnets: vpc.publicSubnets,
  },
});
