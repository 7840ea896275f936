"""Deploys infra/barrage.yaml into the AWS emulator's CloudFormation (moto) and prints the stack's outputs as JSON.

Usage: deploy_stack.py TEMPLATE STACK_NAME

Three changes are made to the template first, both for gaps of moto 5.2.5, not of the template:
- ECR repositories get an explicit lowercase RepositoryName: moto generates one from the logical id with upper-case
  letters, which its own ECR then rejects;
- every optional parameter (KafkaSecretArn, KafkaSecretKmsKeyArn, MskClusterArn) is given, so no `!If` in a role's
  Policies resolves to AWS::NoValue: moto's IAM Role parser crashes on such an entry (moto/iam/models.py).
- each container gets `Memory: 512`: moto's RunTask adds up container-level memory and fails (a 500) on a Fargate
  task definition that sets memory at the task level only, which ECS itself accepts.
A VPC and a subnet are created for the VpcId / SubnetIds parameters."""
import json
import sys
import time

import boto3

template_path, name = sys.argv[1], sys.argv[2]
body = open(template_path).read()
marker = "    Type: AWS::ECR::Repository\n    Properties:\n"
parts = body.split(marker)
assert len(parts) == 3, "two ECR repositories expected"
body = (parts[0] + marker + f"      RepositoryName: {name}-controller\n" + parts[1]
        + marker + f"      RepositoryName: {name}-agent\n" + parts[2])
essential = "          Essential: true\n"
assert body.count(essential) == 2, "two containers expected"
body = body.replace(essential, essential + "          Memory: 512\n")

ec2 = boto3.client("ec2")
vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.1.0/24")["Subnet"]["SubnetId"]
account = "123456789012"
params = {
    "ImageTag": "test",
    "VpcId": vpc,
    "SubnetIds": subnet,
    "KafkaSecretArn": f"arn:aws:secretsmanager:us-east-1:{account}:secret:barrage-kafka-abcdef",
    "KafkaSecretKmsKeyArn": f"arn:aws:kms:us-east-1:{account}:key/00000000-0000-0000-0000-000000000000",
    "MskClusterArn": f"arn:aws:kafka:us-east-1:{account}:cluster/barrage/00000000-0000-0000-0000-000000000000-1",
}
cfn = boto3.client("cloudformation")
cfn.create_stack(
    StackName=name,
    TemplateBody=body,
    Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"],
    Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()],
)
deadline = time.time() + 60
while True:
    stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
    if not stack["StackStatus"].endswith("IN_PROGRESS") or time.time() > deadline:
        break
    time.sleep(0.5)
resources = cfn.list_stack_resources(StackName=name)["StackResourceSummaries"]
print(json.dumps({
    "status": stack["StackStatus"],
    "reason": stack.get("StackStatusReason"),
    "resources": {r["LogicalResourceId"]: [r["ResourceType"], r["ResourceStatus"]] for r in resources},
    "outputs": {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])},
    "subnet": subnet,
}))
