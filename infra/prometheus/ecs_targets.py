#!/usr/bin/env python3
"""Writes the running tasks of an ECS cluster as Prometheus file_sd targets (port 9464 of each task's address).

Usage: ecs_targets.py --cluster NAME --out FILE [--port 9464]
Needs boto3 and ecs:ListTasks / ecs:DescribeTasks. The file is replaced atomically, so Prometheus never reads half
of it. Labels: ecs_cluster, ecs_task_family, ecs_group (e.g. `service:barrage-controller` or the agents' group),
ecs_task_arn.
"""
import argparse
import json
import os
import tempfile

import boto3


def task_address(task):
    """The task's private IPv4 address (awsvpc), or None."""
    for attachment in task.get("attachments", []):
        for detail in attachment.get("details", []):
            if detail.get("name") == "privateIPv4Address":
                return detail.get("value")
    for container in task.get("containers", []):
        for interface in container.get("networkInterfaces", []):
            if interface.get("privateIpv4Address"):
                return interface["privateIpv4Address"]
    return None


def targets(ecs, cluster, port):
    groups = []
    arns = []
    for page in ecs.get_paginator("list_tasks").paginate(cluster=cluster, desiredStatus="RUNNING"):
        arns.extend(page["taskArns"])
    for i in range(0, len(arns), 100):
        for task in ecs.describe_tasks(cluster=cluster, tasks=arns[i:i + 100])["tasks"]:
            address = task_address(task)
            if address is None:
                continue
            family = task["taskDefinitionArn"].rsplit("/", 1)[-1].split(":")[0]
            groups.append({
                "targets": [f"{address}:{port}"],
                "labels": {
                    "ecs_cluster": cluster,
                    "ecs_task_family": family,
                    "ecs_group": task.get("group", ""),
                    "ecs_task_arn": task["taskArn"],
                },
            })
    return groups


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cluster", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--port", type=int, default=9464)
    args = parser.parse_args()
    groups = targets(boto3.client("ecs"), args.cluster, args.port)
    directory = os.path.dirname(os.path.abspath(args.out))
    with tempfile.NamedTemporaryFile("w", dir=directory, delete=False, suffix=".tmp") as f:
        json.dump(groups, f, indent=2)
        tmp = f.name
    os.replace(tmp, args.out)
    print(f"{len(groups)} targets written to {args.out}")


if __name__ == "__main__":
    main()
