import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';

const { vpcFromEnvironment } = createRequire(import.meta.url)('../../scripts/serverless-vpc.cjs') as {
  vpcFromEnvironment: (env: Record<string, string | undefined>) => unknown;
};

describe('the VPC of the functions', () => {
  it('is none when neither list is given (or both are empty)', () => {
    expect(vpcFromEnvironment({})).toBeUndefined();
    expect(vpcFromEnvironment({ VPC_SUBNET_IDS: '', VPC_SECURITY_GROUP_IDS: ' ' })).toBeUndefined();
  });

  it('is the subnets and security groups given, comma-separated', () => {
    expect(
      vpcFromEnvironment({ VPC_SUBNET_IDS: 'subnet-0abc1234, subnet-0def5678', VPC_SECURITY_GROUP_IDS: 'sg-0123abcd' }),
    ).toEqual({ subnetIds: ['subnet-0abc1234', 'subnet-0def5678'], securityGroupIds: ['sg-0123abcd'] });
  });

  it('refuses one list without the other, and what is not an id', () => {
    expect(() => vpcFromEnvironment({ VPC_SUBNET_IDS: 'subnet-0abc1234' })).toThrow(/go together/);
    expect(() => vpcFromEnvironment({ VPC_SUBNET_IDS: 'private-a', VPC_SECURITY_GROUP_IDS: 'sg-0123abcd' })).toThrow(
      /expected ids such as subnet-0abc1234 and sg-0abc1234, not private-a/,
    );
  });
});
