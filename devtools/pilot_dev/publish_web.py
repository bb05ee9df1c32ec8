"""Uploads the dashboard's files to the edge bucket and invalidates CloudFront's copy.

The step after `sam deploy` when the stack runs with EnableEdge=true (scripts/deploy.sh
calls it). The bucket holds what the web function serves, under the same URLs:
``index.html`` (the page, which the distribution's rewrite function answers for every
page path) and ``static/<file>`` for each file of web/ the web function would serve, with
the same Content-Type and Cache-Control (amazon_pilot.platform.web). Only changed files
are uploaded; files gone from web/ are deleted (the bucket is versioned, so a bad upload
can be undone from the previous versions).

    python -m pilot_dev.publish_web --stack amazon-pilot [--region us-east-1]
    python -m pilot_dev.publish_web --bucket NAME --distribution ID
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from amazon_pilot.platform.web import CONTENT_TYPES, asset_root, cache_control

MANAGED_PREFIX = "static/"
PAGE_KEY = "index.html"


class PublishError(RuntimeError):
    """The stack has no edge, or the upload could not be made."""


@dataclass(frozen=True)
class WebObject:
    key: str
    path: Path
    content_type: str
    cache_control: str

    @property
    def md5(self) -> str:
        return hashlib.md5(self.path.read_bytes(), usedforsecurity=False).hexdigest()


def plan(root: Path | None = None) -> list[WebObject]:
    """Every object the bucket should hold, from the files the web function serves."""
    root = (root or asset_root()).resolve()
    objects: list[WebObject] = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        relative = path.relative_to(root).as_posix()
        kind = CONTENT_TYPES.get(path.suffix.lower())
        if kind is None or any(part.startswith(".") for part in relative.split("/")):
            continue  # the web function answers 404 for these too
        objects.append(WebObject(MANAGED_PREFIX + relative, path, kind,
                                 cache_control(relative)))
        if relative == PAGE_KEY:
            objects.append(WebObject(PAGE_KEY, path, kind, cache_control(relative)))
    if not any(o.key == PAGE_KEY for o in objects):
        raise PublishError(f"{root} has no {PAGE_KEY}: nothing to publish")
    return objects


def stack_targets(cloudformation: Any, stack: str) -> tuple[str, str]:
    """(bucket, distribution id) from the stack's outputs."""
    try:
        found = cloudformation.describe_stacks(StackName=stack)["Stacks"][0]
    except Exception as exc:  # botocore's ClientError: the message names the problem
        raise PublishError(f"stack {stack}: {exc}") from exc
    outputs = {o["OutputKey"]: o["OutputValue"] for o in found.get("Outputs", [])}
    if "WebBucketName" not in outputs or "DistributionId" not in outputs:
        raise PublishError(f"stack {stack} has no edge (deploy it with EnableEdge=true); "
                           "the web function serves the dashboard instead")
    return outputs["WebBucketName"], outputs["DistributionId"]


def publish(s3: Any, cloudfront: Any | None, bucket: str, distribution: str | None,
            objects: list[WebObject]) -> dict[str, Any]:
    """Upload what changed, delete what is gone, invalidate if anything did."""
    existing: dict[str, str] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            existing[item["Key"]] = item["ETag"].strip('"')
    wanted = {o.key for o in objects}
    uploaded = []
    for obj in objects:
        if existing.get(obj.key) == obj.md5:
            continue
        s3.put_object(Bucket=bucket, Key=obj.key, Body=obj.path.read_bytes(),
                      ContentType=obj.content_type, CacheControl=obj.cache_control)
        uploaded.append(obj.key)
    # Only our own keys: anything else an operator put in the bucket stays.
    gone = sorted(k for k in existing
                  if k not in wanted and (k.startswith(MANAGED_PREFIX) or k == PAGE_KEY))
    for key in gone:
        s3.delete_object(Bucket=bucket, Key=key)
    invalidation = None
    if (uploaded or gone) and cloudfront is not None and distribution:
        # One wildcard path is one path of the monthly free 1,000; the API is never cached.
        invalidation = cloudfront.create_invalidation(
            DistributionId=distribution,
            InvalidationBatch={"Paths": {"Quantity": 1, "Items": ["/*"]},
                               "CallerReference": f"publish-web-{time.time_ns()}"},
        )["Invalidation"]["Id"]
    return {"uploaded": uploaded, "deleted": gone, "unchanged": len(objects) - len(uploaded),
            "invalidation": invalidation}


def main(argv: list[str] | None = None) -> int:
    import boto3

    parser = argparse.ArgumentParser(prog="publish-web", description=__doc__.splitlines()[0])
    parser.add_argument("--stack", help="read the bucket and distribution from its outputs")
    parser.add_argument("--bucket")
    parser.add_argument("--distribution")
    parser.add_argument("--region")
    args = parser.parse_args(argv)
    session = boto3.session.Session(region_name=args.region)
    try:
        if args.stack:
            bucket, distribution = stack_targets(session.client("cloudformation"), args.stack)
        elif args.bucket:
            bucket, distribution = args.bucket, args.distribution
        else:
            parser.error("give --stack, or --bucket (and --distribution)")
        result = publish(session.client("s3"), session.client("cloudfront"), bucket,
                         distribution, plan())
    except PublishError as exc:
        print(f"publish-web: {exc}", file=sys.stderr)
        return 1
    print(f"publish-web: s3://{bucket}: {len(result['uploaded'])} uploaded, "
          f"{len(result['deleted'])} deleted, {result['unchanged']} unchanged; "
          f"invalidation {result['invalidation'] or 'not needed'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
