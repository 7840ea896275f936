"""Runs infra/prometheus/ecs_targets.py's discovery on a fake ECS client (two pages of task ARNs, a Fargate task
with its ENI attachment, an EC2-awsvpc task with the address on its container, a task without an address) and
prints the file_sd groups it makes as JSON."""
import importlib.util
import json
import sys

spec = importlib.util.spec_from_file_location("ecs_targets", sys.argv[1])
ecs_targets = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ecs_targets)

TASKS = {
    "arn:task/1": {"taskArn": "arn:task/1", "taskDefinitionArn": "arn:task-definition/barrage-agent:7",
                   "group": "barrage:lt-a", "attachments": [{"details": [
                       {"name": "subnetId", "value": "subnet-1"}, {"name": "privateIPv4Address", "value": "10.0.1.5"}]}]},
    "arn:task/2": {"taskArn": "arn:task/2", "taskDefinitionArn": "arn:task-definition/barrage-controller:3",
                   "group": "service:barrage-controller", "containers": [{"networkInterfaces": [
                       {"privateIpv4Address": "10.0.1.9"}]}]},
    "arn:task/3": {"taskArn": "arn:task/3", "taskDefinitionArn": "arn:task-definition/barrage-agent:7",
                   "group": "barrage:lt-a"},
}


class Paginator:
    def paginate(self, cluster, desiredStatus):
        assert desiredStatus == "RUNNING"
        yield {"taskArns": ["arn:task/1"]}
        yield {"taskArns": ["arn:task/2", "arn:task/3"]}


class FakeEcs:
    def get_paginator(self, name):
        assert name == "list_tasks"
        return Paginator()

    def describe_tasks(self, cluster, tasks):
        return {"tasks": [TASKS[t] for t in tasks]}


print(json.dumps(ecs_targets.targets(FakeEcs(), "barrage", 9464), sort_keys=True))
