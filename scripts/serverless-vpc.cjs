'use strict';
/**
 * A local osls plugin: the functions run in a VPC only when VPC_SUBNET_IDS and VPC_SECURITY_GROUP_IDS
 * (comma-separated) are given, e.g. to reach a private RDS; unset, provider.vpc stays unset and no
 * function is in a VPC. A plugin, because serverless.yml cannot leave a key out when a variable is
 * empty (osls refuses an empty provider.vpc) nor split a string into the lists it wants. It runs
 * before the functions are compiled, so osls and serverless-iam-roles-per-function (which gives the
 * roles AWSLambdaVPCAccessExecutionRole for the network interfaces) see it as if written there.
 */
const list = (env, name) =>
  (env[name] ?? '')
    .split(',')
    .map((id) => id.trim())
    .filter(Boolean);

/** provider.vpc from the environment, or undefined (no VPC). */
function vpcFromEnvironment(env = process.env) {
  const subnetIds = list(env, 'VPC_SUBNET_IDS');
  const securityGroupIds = list(env, 'VPC_SECURITY_GROUP_IDS');
  if (subnetIds.length === 0 && securityGroupIds.length === 0) return undefined;
  if (subnetIds.length === 0 || securityGroupIds.length === 0)
    throw new Error('VPC_SUBNET_IDS and VPC_SECURITY_GROUP_IDS go together: give both, or neither (no VPC)');
  const malformed = [...subnetIds, ...securityGroupIds].filter((id) => !/^(subnet|sg)-[0-9a-f]{8,17}$/.test(id));
  if (malformed.length > 0)
    throw new Error(
      `VPC_SUBNET_IDS, VPC_SECURITY_GROUP_IDS: expected ids such as subnet-0abc1234 and sg-0abc1234, not ${malformed.join(', ')}`,
    );
  return { subnetIds, securityGroupIds };
}

class Vpc {
  constructor(serverless) {
    const vpc = vpcFromEnvironment();
    if (vpc) serverless.service.provider.vpc = vpc;
  }
}

module.exports = Vpc;
module.exports.vpcFromEnvironment = vpcFromEnvironment;
