"""Deploys infra/barrage.yaml into a private AWS emulator (moto server) and prepares one set of credentials per
Barrage binary, each carrying only the policies the template gives it. Prints one JSON object (see the end).

Usage: iam_stack.py TEMPLATE STACK_NAME KAFKA_USERNAME KAFKA_PASSWORD
(the emulator is AWS_ENDPOINT_URL; it must not enforce IAM yet: everything here runs unauthenticated)
Runs on the emulator's own virtualenv (BARRAGE_AWS_PYTHON): boto3, and PyYAML, which moto[server] installs.

What it does:
1. A customer-managed KMS key and a Secrets Manager secret encrypted with it, holding the Kafka SCRAM user, so that
   the stack's KafkaSecretArn / KafkaSecretKmsKeyArn are real objects the binaries use.
2. The stack, created in the emulator's CloudFormation with the same three changes tests/python/deploy_stack.py makes
   for moto's gaps (ECR repository names, every optional parameter given, container-level memory).
3. The policy documents of the three principals the binaries run as, resolved here from the template itself
   (parameters, conditions, Ref, GetAtt, Sub, If, Select, Split, Join, AWS::NoValue) against the deployed
   resources: the controller task role (ControllerTaskRole), the agent task role (AgentTaskRole) and the CLI's
   managed policy (ClientPolicy, attached to a role made here for the CLI, as a CI job's role would have it).
   Not moto's own copy, because moto 5.2.5 stores a role's inline policies as Python text (not JSON) and resolves
   an `!If` nested inside a Statement list to null (it loses DecryptKafkaSecret); `moto_differences` lists where
   its copy differs from ours, as a check of this resolver.
4. The resolved documents put on the roles (PutRolePolicy under their template names, replacing moto's copy), and
   one more inline policy per role, `emulator-wildcard-resources`, for a gap of moto's enforcement: moto compares
   every non-S3 action with the resource "*", so a statement scoped to a table, stream, task or secret never
   matches there. That policy repeats the template's non-S3 actions on Resource "*" without conditions (plus
   dynamodb:TransactWriteItems / TransactGetItems, which moto checks as actions while IAM authorizes their items'
   actions), so moto still refuses every action the template does not name, and S3 is enforced by moto on the
   template's own statements (Action and Resource; moto evaluates no Condition). The exact evaluation of every call
   is the test's (tests/src/iam.rs), on the documents from step 3 only.
5. One AssumeRole session per principal: distinct access keys, so each recorded request names its binary.

Printed: the stack's outputs; the resolved policies per principal (`controller`, `agent`, `client`); the session
credentials per principal; moto_differences; the Kafka secret and its KMS key; the roles a RunTask of the agent
task definition passes (TaskRoleArn, ExecutionRoleArn as the template sets them: moto's CloudFormation keeps neither
on the task definition it registers); the controller task definition's environment (what the ECS launcher runs on).
"""
import json
import sys
import time

import boto3
import yaml

ACCOUNT = "123456789012"
REGION = "us-east-1"
PRINCIPALS = {"controller": "ControllerTaskRole", "agent": "AgentTaskRole", "client": "ClientPolicy"}
WILDCARD_POLICY = "emulator-wildcard-resources"


def cfn_loader():
    """A YAML loader that reads CloudFormation's short forms (!Ref X, !GetAtt A.B, !Sub …) as their long forms."""

    class Loader(yaml.SafeLoader):
        pass

    def construct(loader, suffix, node):
        name = "Ref" if suffix == "Ref" else "Condition" if suffix == "Condition" else "Fn::" + suffix
        if isinstance(node, yaml.ScalarNode):
            value = loader.construct_scalar(node)
            if suffix == "GetAtt":
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return {name: value}

    Loader.add_multi_constructor("!", construct)
    return Loader


class Resolver:
    """CloudFormation's intrinsic functions over one deployed stack."""

    NO_VALUE = object()

    def __init__(self, template, stack_name, params, physical, attributes):
        self.template = template
        self.refs = {
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT,
            "AWS::Partition": "aws",
            "AWS::StackName": stack_name,
            "AWS::URLSuffix": "amazonaws.com",
        }
        for name, decl in template["Parameters"].items():
            value = params.get(name, decl.get("Default"))
            self.refs[name] = value.split(",") if decl["Type"].startswith("List<") else str(value)
        self.refs.update(physical)
        self.attributes = attributes
        self.conditions = {}

    def condition(self, name):
        if name not in self.conditions:
            self.conditions[name] = self.truth(self.template["Conditions"][name])
        return self.conditions[name]

    def truth(self, node):
        (fn, arg), = node.items()
        if fn == "Condition":
            return self.condition(arg)
        if fn == "Fn::Not":
            return not self.truth(arg[0])
        if fn == "Fn::And":
            return all(self.truth(a) for a in arg)
        if fn == "Fn::Or":
            return any(self.truth(a) for a in arg)
        if fn == "Fn::Equals":
            return self.value(arg[0]) == self.value(arg[1])
        raise ValueError(f"unknown condition function {fn}")

    def value(self, node):
        if isinstance(node, list):
            out = [self.value(v) for v in node]
            return [v for v in out if v is not Resolver.NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (fn, arg), = node.items()
            if fn == "Ref":
                return Resolver.NO_VALUE if arg == "AWS::NoValue" else self.refs[arg]
            if fn.startswith("Fn::"):
                return self.function(fn, arg)
        out = {k: self.value(v) for k, v in node.items()}
        return {k: v for k, v in out.items() if v is not Resolver.NO_VALUE}

    def function(self, fn, arg):
        if fn == "Fn::GetAtt":
            key = f"{arg[0]}.{arg[1]}"
            if key not in self.attributes:
                raise ValueError(f"no value for Fn::GetAtt {key}")
            return self.attributes[key]
        if fn == "Fn::If":
            return self.value(arg[1] if self.condition(arg[0]) else arg[2])
        if fn == "Fn::Sub":
            text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], self.value(arg[1]))
            return self.substitute(text, extra)
        if fn == "Fn::Select":
            return self.value(arg[1])[int(self.value(arg[0]))]
        if fn == "Fn::Split":
            return self.value(arg[1]).split(arg[0])
        if fn == "Fn::Join":
            return arg[0].join(self.value(arg[1]))
        raise ValueError(f"unknown function {fn}")

    def substitute(self, text, extra):
        out, rest = "", text
        while "${" in rest:
            before, _, after = rest.partition("${")
            name, _, rest = after.partition("}")
            if name in extra:
                value = extra[name]
            elif "." in name:
                value = self.function("Fn::GetAtt", name.split(".", 1))
            else:
                value = self.refs[name]
            out += before + str(value)
        return out + rest


def transformed(body, name):
    """The template with deploy_stack.py's three changes for moto's gaps."""
    marker = "    Type: AWS::ECR::Repository\n    Properties:\n"
    parts = body.split(marker)
    assert len(parts) == 3, "two ECR repositories expected"
    body = (parts[0] + marker + f"      RepositoryName: {name}-controller\n" + parts[1]
            + marker + f"      RepositoryName: {name}-agent\n" + parts[2])
    essential = "          Essential: true\n"
    assert body.count(essential) == 2, "two containers expected"
    return body.replace(essential, essential + "          Memory: 512\n")


def deploy(name, body, params):
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
    if stack["StackStatus"] != "CREATE_COMPLETE":
        sys.exit(f"stack {name}: {stack['StackStatus']} {stack.get('StackStatusReason')}")
    resources = cfn.list_stack_resources(StackName=name)["StackResourceSummaries"]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    return {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in resources}, outputs


def attributes(physical):
    """The Fn::GetAtt values the three principals' policies use, read from the deployed resources."""
    table = boto3.client("dynamodb").describe_table(TableName=physical["Table"])["Table"]
    cluster = boto3.client("ecs").describe_clusters(clusters=[physical["Cluster"]])["clusters"][0]
    repos = boto3.client("ecr").describe_repositories(repositoryNames=[physical["ControllerRepository"]])
    iam = boto3.client("iam")
    return {
        "Table.Arn": table["TableArn"],
        "Table.StreamArn": table["LatestStreamArn"],
        "Bucket.Arn": f"arn:aws:s3:::{physical['Bucket']}",
        "Cluster.Arn": cluster["clusterArn"],
        "ControllerRepository.Arn": repos["repositories"][0]["repositoryArn"],
        "AgentTaskRole.Arn": iam.get_role(RoleName=physical["AgentTaskRole"])["Role"]["Arn"],
        "AgentExecutionRole.Arn": iam.get_role(RoleName=physical["AgentExecutionRole"])["Role"]["Arn"],
    }


def principal_policies(template, resolver):
    """{principal: [(policy name, document)]} as the template gives them."""
    resources = template["Resources"]
    out = {}
    for principal, logical in PRINCIPALS.items():
        props = resources[logical]["Properties"]
        if "Policies" in props:
            policies = resolver.value(props["Policies"])
            out[principal] = [(p["PolicyName"], p["PolicyDocument"]) for p in policies]
        else:
            out[principal] = [(logical, resolver.value(props["PolicyDocument"]))]
    return out


def stored_document(iam, role, name, policy_arn):
    """moto's copy of a role's inline policy, or of a managed policy's default version."""
    import ast
    if policy_arn:
        policy = iam.get_policy(PolicyArn=policy_arn)["Policy"]
        return iam.get_policy_version(PolicyArn=policy_arn, VersionId=policy["DefaultVersionId"])[
            "PolicyVersion"]["Document"]
    stored = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
    return ast.literal_eval(stored) if isinstance(stored, str) else stored


def moto_differences(iam, role, policies, policy_arn=None):
    """Statements where moto's stored copy of a principal's policies differs from the resolved template."""
    diffs = []
    for name, doc in policies:
        stored = stored_document(iam, role, name, policy_arn)
        for ours, theirs in zip(doc["Statement"], stored["Statement"]):
            if ours != theirs:
                diffs.append({"policy": name, "sid": ours.get("Sid"), "moto": theirs})
        if len(doc["Statement"]) != len(stored["Statement"]):
            diffs.append({"policy": name, "statements": [len(doc["Statement"]), len(stored["Statement"])]})
    return diffs


def wildcard_policy(documents):
    """The template's non-S3 actions on Resource "*", for moto's resource-blind enforcement (see the module doc)."""
    actions = set()
    for _, doc in documents:
        for st in doc["Statement"]:
            listed = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
            actions.update(a for a in listed if not a.startswith("s3:"))
    if actions & {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:ConditionCheckItem"}:
        actions.add("dynamodb:TransactWriteItems")
    if "dynamodb:GetItem" in actions:
        actions.add("dynamodb:TransactGetItems")
    return {"Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": sorted(actions), "Resource": "*"}]}


def credentials_for(iam, sts, role_name, session):
    role = iam.get_role(RoleName=role_name)["Role"]
    c = sts.assume_role(RoleArn=role["Arn"], RoleSessionName=session, DurationSeconds=3600)["Credentials"]
    return {"access_key_id": c["AccessKeyId"], "secret_access_key": c["SecretAccessKey"],
            "session_token": c["SessionToken"], "role_arn": role["Arn"]}


def client_role(iam, name, policy_arn):
    """The role a CI job would run the CLI with: the stack's ClientPolicy attached, nothing else."""
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "sts:AssumeRole"}]}
    role = f"{name}-ci"
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(trust))
    iam.attach_role_policy(RoleName=role, PolicyArn=policy_arn)
    return role


def main():
    template_path, name, kafka_user, kafka_password = sys.argv[1:5]
    body = open(template_path).read()
    template = yaml.load(body, Loader=cfn_loader())
    kms_key = boto3.client("kms").create_key(Description=f"{name} Kafka secret")["KeyMetadata"]["Arn"]
    secret = boto3.client("secretsmanager").create_secret(
        Name=f"{name}/kafka", KmsKeyId=kms_key,
        SecretString=json.dumps({"username": kafka_user, "password": kafka_password}))["ARN"]
    ec2 = boto3.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.1.0/24")["Subnet"]["SubnetId"]
    params = {
        "ImageTag": "test", "VpcId": vpc, "SubnetIds": subnet,
        "KafkaSecretArn": secret, "KafkaSecretKmsKeyArn": kms_key,
        "MskClusterArn": f"arn:aws:kafka:{REGION}:{ACCOUNT}:cluster/barrage/00000000-0000-0000-0000-000000000000-1",
    }
    physical, outputs = deploy(name, transformed(body, name), params)
    resolver = Resolver(template, name, params, physical, attributes(physical))
    policies = principal_policies(template, resolver)

    iam, sts = boto3.client("iam"), boto3.client("sts")
    roles = {"controller": physical["ControllerTaskRole"], "agent": physical["AgentTaskRole"],
             "client": client_role(iam, name, outputs["ClientPolicyArn"])}
    differences = {"client": moto_differences(iam, None, policies["client"], outputs["ClientPolicyArn"])}
    for principal in ("controller", "agent"):
        differences[principal] = moto_differences(iam, roles[principal], policies[principal])
        for policy_name, doc in policies[principal]:
            iam.put_role_policy(RoleName=roles[principal], PolicyName=policy_name, PolicyDocument=json.dumps(doc))
    for principal, role in roles.items():
        iam.put_role_policy(RoleName=role, PolicyName=WILDCARD_POLICY,
                            PolicyDocument=json.dumps(wildcard_policy(policies[principal])))
    credentials = {p: credentials_for(iam, sts, r, f"barrage-{p}") for p, r in roles.items()}
    # The roles a RunTask of the agent task definition passes to ECS, as the template sets them (moto's
    # CloudFormation keeps neither on the task definition it registers).
    agent_td = template["Resources"]["AgentTaskDefinition"]["Properties"]
    passed = [resolver.value(agent_td[k]) for k in ("TaskRoleArn", "ExecutionRoleArn")]
    ecs = boto3.client("ecs")
    controller_td = ecs.list_task_definitions(familyPrefix=f"{name}-controller")["taskDefinitionArns"][0]
    container = ecs.describe_task_definition(taskDefinition=controller_td)["taskDefinition"]["containerDefinitions"][0]
    print(json.dumps({
        "outputs": outputs,
        "policies": {p: [{"name": n, "document": d} for n, d in docs] for p, docs in policies.items()},
        "credentials": credentials,
        "moto_differences": differences,
        "kafka_secret": {"arn": secret, "kms_key": kms_key},
        "agent_task_roles": passed,
        "controller_environment": {kv["name"]: kv["value"] for kv in container.get("environment", [])},
    }))


if __name__ == "__main__":
    main()
